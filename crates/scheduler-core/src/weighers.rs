//! Weighers: rank the hosts that passed the filters.
//!
//! Each weigher's raw values are normalised to 0..1 over the candidates
//! and multiplied by its multiplier, as Nova does: a positive RAM
//! multiplier spreads servers over hosts, a negative one stacks them.

use crate::host::{GroupPolicy, HostState, RequestSpec};
use serde::Deserialize;

/// Multipliers of the weighers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeigherConfig {
    /// Free RAM.
    pub ram_weight_multiplier: f64,
    /// Free vCPUs.
    pub cpu_weight_multiplier: f64,
    /// Free disk.
    pub disk_weight_multiplier: f64,
    /// Recent build failures (penalty).
    pub build_failure_weight_multiplier: f64,
    /// Soft affinity / anti-affinity.
    pub soft_affinity_weight_multiplier: f64,
    /// Pick randomly among this many best hosts (1: always the best).
    pub host_subset_size: usize,
}

impl Default for WeigherConfig {
    fn default() -> Self {
        WeigherConfig {
            ram_weight_multiplier: 1.0,
            cpu_weight_multiplier: 1.0,
            disk_weight_multiplier: 1.0,
            build_failure_weight_multiplier: 1_000_000.0,
            soft_affinity_weight_multiplier: 1.0,
            host_subset_size: 1,
        }
    }
}

fn normalise(values: &[f64]) -> Vec<f64> {
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if max.partial_cmp(&min) != Some(std::cmp::Ordering::Greater) {
        return vec![0.0; values.len()];
    }
    values.iter().map(|v| (v - min) / (max - min)).collect()
}

/// The weight of each host (same order as `hosts`).
pub fn weigh(spec: &RequestSpec, hosts: &[&HostState], cfg: &WeigherConfig) -> Vec<f64> {
    let mut total = vec![0.0; hosts.len()];
    let mut add = |raw: Vec<f64>, multiplier: f64| {
        if multiplier != 0.0 {
            for (t, v) in total.iter_mut().zip(normalise(&raw)) {
                *t += multiplier * v;
            }
        }
    };
    add(
        hosts.iter().map(|h| h.memory_mb.free() as f64).collect(),
        cfg.ram_weight_multiplier,
    );
    add(
        hosts.iter().map(|h| h.vcpu.free() as f64).collect(),
        cfg.cpu_weight_multiplier,
    );
    add(
        hosts.iter().map(|h| h.disk_gb.free() as f64).collect(),
        cfg.disk_weight_multiplier,
    );
    add(
        hosts
            .iter()
            .map(|h| -f64::from(h.recent_failures))
            .collect(),
        cfg.build_failure_weight_multiplier,
    );
    if let Some(g) = &spec.group {
        let members =
            |h: &HostState| g.member_hosts.iter().filter(|m| **m == h.host).count() as f64;
        match g.policy {
            GroupPolicy::SoftAffinity => add(
                hosts.iter().map(|h| members(h)).collect(),
                cfg.soft_affinity_weight_multiplier,
            ),
            GroupPolicy::SoftAntiAffinity => add(
                hosts.iter().map(|h| -members(h)).collect(),
                cfg.soft_affinity_weight_multiplier,
            ),
            _ => {}
        }
    }
    total
}
