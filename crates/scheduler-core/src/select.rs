//! Choosing hosts: run the filters over every host, weigh the survivors,
//! rank them, and return the best with its alternates, or explain why
//! none fits.

use crate::filters::{Prepared, host_passes};
use crate::host::HostState;
use crate::no_valid_host::{NoValidHost, Tally};
use crate::numa_fit::fit_numa;
use crate::request::RequestSpec;
use crate::weighers::{WeigherConfig, weigh};
use cloud_driver::NumaPlacement;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;

/// A host that passed every filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Host name.
    pub host: String,
    /// Where the guest goes on the host's NUMA cells (and which host CPUs
    /// it pins), when the request needs a NUMA placement.
    pub numa: Option<NumaPlacement>,
    /// Its weight (higher is better).
    pub weight: f64,
}

/// The chosen host first, then the alternates, best first. The caller
/// claims the first it can; when a build fails on the chosen host, the
/// alternates let it retry without asking again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Candidates, best first; never empty when returned by [`select`].
    pub candidates: Vec<Candidate>,
}

impl Selection {
    /// The chosen host.
    pub fn chosen(&self) -> Option<&Candidate> {
        self.candidates.first()
    }

    /// The alternates, best first.
    pub fn alternates(&self) -> &[Candidate] {
        self.candidates.get(1..).unwrap_or_default()
    }
}

/// Picks a host for one server of `spec` among `hosts`, with up to
/// `alternates` more, best first. Deterministic: the same input gives the
/// same answer (ties go to the smaller host name; with `host_subset_size`
/// above 1 the random pick among the best is drawn from `spec.seed`).
pub fn select(
    spec: &RequestSpec,
    hosts: &[HostState],
    cfg: &WeigherConfig,
    alternates: usize,
) -> Result<Selection, NoValidHost> {
    let p = Prepared::new(spec).map_err(|e| NoValidHost::invalid(hosts.len(), e.0))?;
    select_prepared(&p, hosts, cfg, alternates)
}

/// [`select`] for a request already read with [`Prepared::new`] (a caller
/// scheduling many times for one request reads it once).
pub fn select_prepared(
    p: &Prepared,
    hosts: &[HostState],
    cfg: &WeigherConfig,
    alternates: usize,
) -> Result<Selection, NoValidHost> {
    let mut tally = Tally::new();
    let mut passed: Vec<&HostState> = Vec::with_capacity(hosts.len());
    for h in hosts {
        match host_passes(p, h) {
            Ok(()) => passed.push(h),
            Err((filter, reject)) => tally.record(filter, &h.host, reject),
        }
    }
    if passed.is_empty() {
        return Err(tally.finish(hosts.len(), p));
    }
    let weights = weigh(p, &passed, cfg);
    let order = rank(
        &passed,
        &weights,
        cfg.host_subset_size,
        alternates.saturating_add(1),
        p.spec.seed,
    );
    let candidates = order
        .into_iter()
        .map(|i| Candidate {
            host: passed[i].host.clone(),
            // It fitted a moment ago; only the chosen few get a placement built.
            numa: p
                .numa
                .as_ref()
                .and_then(|req| fit_numa(req, passed[i]).ok()),
            weight: weights[i],
        })
        .collect();
    Ok(Selection { candidates })
}

/// Indexes of the `want` best hosts, best first: heaviest, then smallest
/// name. With `subset > 1`, the first is drawn from the `subset` best.
/// Only the top is sorted, so ranking 10,000 hosts stays linear.
fn rank(
    hosts: &[&HostState],
    weights: &[f64],
    subset: usize,
    want: usize,
    seed: u64,
) -> Vec<usize> {
    let cmp = |a: &usize, b: &usize| -> Ordering {
        weights[*b]
            .total_cmp(&weights[*a])
            .then_with(|| hosts[*a].host.cmp(&hosts[*b].host))
            .then_with(|| a.cmp(b))
    };
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    let subset = subset.max(1);
    let keep = want.max(subset).min(order.len());
    if keep == 0 {
        return Vec::new();
    }
    if keep < order.len() {
        order.select_nth_unstable_by(keep - 1, cmp);
        order.truncate(keep);
    }
    order.sort_unstable_by(cmp);
    if subset > 1 {
        let k = subset.min(order.len());
        let pick = (splitmix64(seed) % k as u64) as usize;
        let chosen = order.remove(pick);
        order.insert(0, chosen);
    }
    order.truncate(want);
    order
}

/// A well-mixed 64-bit value from a seed (SplitMix64), so neighbouring
/// seeds pick unrelated hosts without a random number generator.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Places every server of a multi-create request (`spec.num_instances`),
/// one after the other over the same snapshot: each choice consumes the
/// host's resources (and pins its CPUs) and joins the server group before
/// the next is placed, so anti-affinity and capacity hold within the
/// request. Fails as a whole when any server cannot be placed.
pub fn select_all(
    spec: &RequestSpec,
    hosts: &[HostState],
    cfg: &WeigherConfig,
    alternates: usize,
) -> Result<Vec<Selection>, NoValidHost> {
    let count = spec.num_instances.max(1) as usize;
    let mut spec = spec.clone();
    let base_seed = spec.seed;
    let mut hosts: Cow<'_, [HostState]> = Cow::Borrowed(hosts);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        spec.seed = base_seed.wrapping_add(i as u64);
        let selection = select(&spec, &hosts, cfg, alternates)?;
        if i + 1 < count
            && let Some(chosen) = selection.chosen()
        {
            if let Some(h) = hosts.to_mut().iter_mut().find(|h| h.host == chosen.host) {
                h.consume(&spec, chosen.numa.as_ref());
            }
            if let Some(g) = &mut spec.group {
                g.member_hosts.push(chosen.host.clone());
            }
        }
        out.push(selection);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
