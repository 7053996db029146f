//! Compute API microversion negotiation.
//!
//! The compute version document (`GET {compute endpoint}`) advertises the
//! range the server serves; the client speaks its own range and uses the
//! newest version both know. Responses change shape between versions, so
//! [`CLIENT_MAX`] only grows when every helper of this crate reads the new
//! shapes.

use crate::error::{Error, Result};
use std::fmt;

/// A compute API version `major.minor`, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    /// Major version (2).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl Microversion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Microversion { major, minor }
    }

    /// Parses `X.Y`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.trim().split_once('.')?;
        Some(Microversion::new(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest version this client speaks.
pub const CLIENT_MIN: Microversion = Microversion::new(2, 1);

/// The newest version whose response shapes this client reads (embedded
/// flavors from 2.47, keypair types from 2.2, ... are not read yet).
pub const CLIENT_MAX: Microversion = Microversion::new(2, 1);

/// The version to use with a server serving `server_min..=server_max`
/// (both `None` when the server has no microversions: then no header is
/// sent and the server's only version is used).
pub fn negotiate(
    server_min: Option<Microversion>,
    server_max: Option<Microversion>,
    client_min: Microversion,
    client_max: Microversion,
) -> Result<Option<Microversion>> {
    let (Some(smin), Some(smax)) = (server_min, server_max) else {
        return Ok(None);
    };
    let chosen = smax.min(client_max);
    if chosen < smin || chosen < client_min {
        return Err(Error::Microversion {
            server_min: smin.to_string(),
            server_max: smax.to_string(),
            client_min: client_min.to_string(),
            client_max: client_max.to_string(),
        });
    }
    Ok(Some(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Microversion {
        Microversion::parse(s).unwrap()
    }

    #[test]
    fn picks_the_newest_common_version() {
        let n = |a, b, c, d| negotiate(Some(v(a)), Some(v(b)), v(c), v(d));
        assert_eq!(n("2.1", "2.1", "2.1", "2.1").unwrap(), Some(v("2.1")));
        assert_eq!(n("2.1", "2.96", "2.1", "2.60").unwrap(), Some(v("2.60")));
        assert_eq!(n("2.1", "2.20", "2.1", "2.60").unwrap(), Some(v("2.20")));
        assert!(n("2.50", "2.96", "2.1", "2.20").is_err());
        assert!(n("2.1", "2.10", "2.20", "2.60").is_err());
        assert_eq!(negotiate(None, None, v("2.1"), v("2.1")).unwrap(), None);
        assert!(v("2.10") > v("2.9"));
    }
}
