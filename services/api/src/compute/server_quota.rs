//! How many servers of one `POST /servers` the project's compute quota
//! lets in, worked out before any server is built.
//!
//! Nova's semantics: a request for `min_count..=max_count` servers gets as
//! many as fit, and is refused only if fewer than `min_count` do. The
//! store still checks the limits atomically when it records the batch;
//! this is the cheap answer first, so that a request far over quota costs
//! one read of the project's use instead of one attempt per count between
//! `max_count` and what fits (issue 16, finding 8).

use crate::error::{ApiError, FaultKind};
use std::collections::BTreeMap;

/// What one server takes from the compute quota.
#[derive(Clone, Copy, Debug)]
pub struct PerServer {
    /// vCPUs (`cores`).
    pub cores: i64,
    /// RAM in MiB (`ram`).
    pub ram: i64,
}

/// The number of servers, between `min` and `max`, that fit in `limits`
/// (-1: unlimited) given the project's current `used`; if fewer than
/// `min` fit, Nova's 403 naming the first resource that runs out.
pub fn servers_that_fit(
    limits: &BTreeMap<String, i64>,
    used: &BTreeMap<String, i64>,
    each: PerServer,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let mut fit = max;
    for (resource, per) in [("instances", 1), ("cores", each.cores), ("ram", each.ram)] {
        let limit = limits.get(resource).copied().unwrap_or(-1);
        if limit < 0 || per <= 0 {
            continue;
        }
        let in_use = used.get(resource).copied().unwrap_or(0);
        let room = (limit - in_use).max(0) / per;
        if room < min {
            return Err(ApiError::new(
                FaultKind::OverQuota,
                format!(
                    "Quota exceeded for {resource}: Requested {}, but already used {in_use} of \
                     {limit} {resource}",
                    min * per
                ),
            ));
        }
        fit = fit.min(room);
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn max_count_is_lowered_to_what_fits() {
        let limits = map(&[("instances", 12), ("cores", 20), ("ram", -1)]);
        let each = PerServer { cores: 2, ram: 512 };
        let used = map(&[("instances", 3), ("cores", 6)]);
        // 9 instances left, but only 7 servers' worth of cores.
        assert_eq!(servers_that_fit(&limits, &used, each, 1, 1000).unwrap(), 7);
        assert_eq!(servers_that_fit(&limits, &used, each, 1, 5).unwrap(), 5);
        let e = servers_that_fit(&limits, &used, each, 8, 1000).unwrap_err();
        assert!(e.0.message.contains("cores"), "{}", e.0.message);
        let unlimited = map(&[("instances", -1), ("cores", -1), ("ram", -1)]);
        assert_eq!(
            servers_that_fit(&unlimited, &used, each, 1, 1000).unwrap(),
            1000
        );
    }
}
