//! Weighers: rank the hosts that passed the filters.
//!
//! As in Nova, each weigher's raw values are normalised to 0..1 over the
//! candidates (all equal: 0), multiplied by the weigher's multiplier and
//! summed. A positive RAM multiplier prefers free RAM (spreads servers
//! over hosts); a negative one prefers full hosts (stacks them).

use crate::filters::Prepared;
use crate::host::HostState;
use crate::request::GroupPolicy;
use serde::{Deserialize, Serialize};

/// Weigher multipliers and the random pick among the best hosts, with
/// Nova's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeigherConfig {
    /// Free RAM (RAMWeigher).
    pub ram_weight_multiplier: f64,
    /// Free vCPUs (CPUWeigher).
    pub cpu_weight_multiplier: f64,
    /// Free disk (DiskWeigher).
    pub disk_weight_multiplier: f64,
    /// Recent build failures, as a penalty (BuildFailureWeigher). Large by
    /// default so a failing host is only used when nothing else fits.
    pub build_failure_weight_multiplier: f64,
    /// Members of a soft-affinity group on the host.
    pub soft_affinity_weight_multiplier: f64,
    /// Members of a soft-anti-affinity group on the host, as a penalty.
    pub soft_anti_affinity_weight_multiplier: f64,
    /// Pick the host at random among this many best ones (1: always the
    /// best). Larger values make concurrent schedulers collide less.
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
            soft_anti_affinity_weight_multiplier: 1.0,
            host_subset_size: 1,
        }
    }
}

/// RAMWeigher's raw value: free RAM, MiB.
pub fn ram_weight(h: &HostState) -> f64 {
    h.memory_mb.free() as f64
}

/// CPUWeigher's raw value: free vCPUs.
pub fn cpu_weight(h: &HostState) -> f64 {
    h.vcpu.free() as f64
}

/// DiskWeigher's raw value: free disk, GiB.
pub fn disk_weight(h: &HostState) -> f64 {
    h.disk_gb.free() as f64
}

/// BuildFailureWeigher's raw value: minus the recent failures.
pub fn build_failure_weight(h: &HostState) -> f64 {
    -f64::from(h.recent_failures)
}

/// Adds `multiplier * normalised(raw)` to each host's total, without
/// allocating: one pass for the range, one for the sum.
fn add(total: &mut [f64], hosts: &[&HostState], multiplier: f64, raw: impl Fn(&HostState) -> f64) {
    if multiplier == 0.0 {
        return;
    }
    let (min, max) = hosts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), h| {
            let v = raw(h);
            (lo.min(v), hi.max(v))
        });
    let range = max - min;
    if range.is_nan() || range <= 0.0 {
        return;
    }
    for (t, h) in total.iter_mut().zip(hosts) {
        *t += multiplier * (raw(h) - min) / range;
    }
}

/// The weight of each host, in the order of `hosts` (higher is better).
pub fn weigh(p: &Prepared, hosts: &[&HostState], cfg: &WeigherConfig) -> Vec<f64> {
    let mut total = vec![0.0; hosts.len()];
    add(&mut total, hosts, cfg.ram_weight_multiplier, ram_weight);
    add(&mut total, hosts, cfg.cpu_weight_multiplier, cpu_weight);
    add(&mut total, hosts, cfg.disk_weight_multiplier, disk_weight);
    add(
        &mut total,
        hosts,
        cfg.build_failure_weight_multiplier,
        build_failure_weight,
    );
    match p.spec.group.as_ref().map(|g| g.policy) {
        Some(GroupPolicy::SoftAffinity) => add(
            &mut total,
            hosts,
            cfg.soft_affinity_weight_multiplier,
            |h| p.members_on(&h.host) as f64,
        ),
        Some(GroupPolicy::SoftAntiAffinity) => add(
            &mut total,
            hosts,
            cfg.soft_anti_affinity_weight_multiplier,
            |h| -(p.members_on(&h.host) as f64),
        ),
        _ => {}
    }
    // -0.0 + 0.0 is 0.0: equal weights must compare equal in a total order.
    total.iter_mut().for_each(|t| *t += 0.0);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{GroupSpec, RequestSpec};
    use crate::testing::{host, host_with_ram, spec};
    use cloud_model::ServerGroupId;

    fn weights(s: &RequestSpec, hosts: &[HostState], cfg: &WeigherConfig) -> Vec<f64> {
        let refs: Vec<&HostState> = hosts.iter().collect();
        weigh(&Prepared::new(s).unwrap(), &refs, cfg)
    }

    fn only(f: impl FnOnce(&mut WeigherConfig)) -> WeigherConfig {
        let mut cfg = WeigherConfig {
            ram_weight_multiplier: 0.0,
            cpu_weight_multiplier: 0.0,
            disk_weight_multiplier: 0.0,
            build_failure_weight_multiplier: 0.0,
            soft_affinity_weight_multiplier: 0.0,
            soft_anti_affinity_weight_multiplier: 0.0,
            host_subset_size: 1,
        };
        f(&mut cfg);
        cfg
    }

    #[test]
    fn defaults_are_novas() {
        let d = WeigherConfig::default();
        assert_eq!(d.ram_weight_multiplier, 1.0);
        assert_eq!(d.cpu_weight_multiplier, 1.0);
        assert_eq!(d.disk_weight_multiplier, 1.0);
        assert_eq!(d.build_failure_weight_multiplier, 1_000_000.0);
        assert_eq!(d.soft_affinity_weight_multiplier, 1.0);
        assert_eq!(d.soft_anti_affinity_weight_multiplier, 1.0);
        assert_eq!(d.host_subset_size, 1);
        let partial: WeigherConfig =
            serde_json::from_str(r#"{"ram_weight_multiplier": -1.0}"#).unwrap();
        assert_eq!(partial.ram_weight_multiplier, -1.0);
        assert_eq!(partial.build_failure_weight_multiplier, 1_000_000.0);
        assert!(serde_json::from_str::<WeigherConfig>(r#"{"ram": 1}"#).is_err());
    }

    #[test]
    fn ram_spreads_with_a_positive_multiplier_and_stacks_with_a_negative_one() {
        let hosts = [
            host_with_ram("a", 1024),
            host_with_ram("b", 4096),
            host_with_ram("c", 2048),
        ];
        let s = spec(1, 512);
        let spread = weights(&s, &hosts, &only(|c| c.ram_weight_multiplier = 1.0));
        assert_eq!(spread, [0.0, 1.0, 1.0 / 3.0]);
        let stack = weights(&s, &hosts, &only(|c| c.ram_weight_multiplier = -2.0));
        assert_eq!(stack, [0.0, -2.0, -2.0 / 3.0]);
    }

    #[test]
    fn cpu_and_disk_weighers() {
        let mut a = host("a");
        a.vcpu.used = 6;
        a.disk_gb.used = 10;
        let mut b = host("b");
        b.vcpu.used = 2;
        b.disk_gb.used = 90;
        let hosts = [a, b];
        let s = spec(1, 512);
        assert_eq!(
            weights(&s, &hosts, &only(|c| c.cpu_weight_multiplier = 1.0)),
            [0.0, 1.0]
        );
        assert_eq!(
            weights(&s, &hosts, &only(|c| c.disk_weight_multiplier = 1.0)),
            [1.0, 0.0]
        );
        assert_eq!(
            weights(&s, &hosts, &only(|c| c.cpu_weight_multiplier = -1.0)),
            [0.0, -1.0]
        );
    }

    #[test]
    fn equal_values_weigh_nothing() {
        let hosts = [host("a"), host("b")];
        let w = weights(
            &spec(1, 1),
            &hosts,
            &only(|c| c.ram_weight_multiplier = -1.0),
        );
        assert_eq!(w, [0.0, 0.0]);
        assert!(w.iter().all(|x| x.is_sign_positive()), "no -0.0: {w:?}");
        assert!(weights(&spec(1, 1), &[], &WeigherConfig::default()).is_empty());
    }

    #[test]
    fn build_failures_outweigh_everything_else() {
        let mut failing = host("a");
        failing.recent_failures = 1;
        let mut poor = host_with_ram("b", 100);
        poor.vcpu.used = 7;
        poor.disk_gb.used = 99;
        let hosts = [failing, poor];
        let w = weights(&spec(1, 1), &hosts, &WeigherConfig::default());
        assert!(w[1] > w[0], "{w:?}");
        assert_eq!(w[0], 3.0, "most RAM, CPU and disk, but it failed");
        assert_eq!(w[1], 1_000_000.0);
    }

    #[test]
    fn soft_group_policies() {
        let hosts = [host("a"), host("b"), host("c")];
        let mut s = spec(1, 1);
        let members = vec!["b".to_owned(), "b".to_owned(), "c".to_owned()];
        s.group = Some(GroupSpec {
            id: ServerGroupId::new(),
            policy: GroupPolicy::SoftAffinity,
            member_hosts: members.clone(),
        });
        let cfg = WeigherConfig::default();
        assert_eq!(weights(&s, &hosts, &cfg), [0.0, 1.0, 0.5]);
        s.group = Some(GroupSpec {
            id: ServerGroupId::new(),
            policy: GroupPolicy::SoftAntiAffinity,
            member_hosts: members,
        });
        assert_eq!(weights(&s, &hosts, &cfg), [1.0, 0.0, 0.5]);
        let off = WeigherConfig {
            soft_anti_affinity_weight_multiplier: 0.0,
            ..cfg
        };
        assert_eq!(weights(&s, &hosts, &off), [0.0, 0.0, 0.0]);
    }
}
