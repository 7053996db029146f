//! Running the filters and weighers, and explaining a failure.

use crate::filters::{Ctx, FILTERS};
use crate::host::{HostState, RequestSpec};
use crate::numa::NumaRequest;
use crate::weighers::{WeigherConfig, weigh};
use cloud_driver::NumaPlacement;
use std::fmt;

/// A host that passed every filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Host name.
    pub host: String,
    /// NUMA placement, when the request has NUMA needs.
    pub numa: Option<NumaPlacement>,
    /// Its weight.
    pub weight: f64,
}

/// The ranked hosts that fit, best first. The scheduler claims the first
/// one it can; the next ones are the alternates.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Candidates, best first.
    pub candidates: Vec<Candidate>,
}

/// Why no host fits, per filter.
#[derive(Clone, Debug, PartialEq)]
pub struct NoValidHost {
    /// Hosts considered.
    pub hosts: usize,
    /// `(filter, hosts removed, summary)` in the order the filters ran.
    pub removed: Vec<(&'static str, usize, String)>,
    /// A request that can never fit anywhere (bad extra specs).
    pub invalid: Option<String>,
}

impl fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.invalid {
            return write!(f, "No valid host was found: invalid request: {why}");
        }
        if self.hosts == 0 {
            return f.write_str("No valid host was found: there are no compute hosts");
        }
        write!(
            f,
            "No valid host was found: {} host{}; ",
            self.hosts,
            if self.hosts == 1 { "" } else { "s" }
        )?;
        let parts: Vec<String> = self
            .removed
            .iter()
            .map(|(name, n, why)| format!("{name} removed {n} ({why})"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Per-filter tally of rejections while filtering.
#[derive(Default)]
struct Tally {
    count: usize,
    reasons: Vec<(String, String)>,
    best_free: Option<i64>,
    need: Option<String>,
}

impl Tally {
    fn summary(&self) -> String {
        if let Some(need) = &self.need {
            let unit = need.rsplit_once(' ').map(|(_, u)| u).unwrap_or("");
            return match self.best_free {
                Some(best) => format!("{need}, best has {} {unit} free", best.max(0)),
                None => need.clone(),
            };
        }
        // Group hosts by reason: "down: host-a, host-b; disabled: host-c".
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (host, reason) in &self.reasons {
            match groups.iter_mut().find(|(r, _)| r == reason) {
                Some((_, hosts)) => hosts.push(host.clone()),
                None => groups.push((reason.clone(), vec![host.clone()])),
            }
        }
        groups
            .iter()
            .map(|(reason, hosts)| {
                let shown: Vec<&str> = hosts.iter().take(3).map(String::as_str).collect();
                let more = if hosts.len() > 3 {
                    format!(" and {} more", hosts.len() - 3)
                } else {
                    String::new()
                };
                format!("{reason}: {}{more}", shown.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Filters and weighs `hosts` for `spec`. Returns up to `limit` candidates,
/// best first (ties broken by host name, so the result is deterministic).
pub fn select(
    spec: &RequestSpec,
    hosts: &[HostState],
    cfg: &WeigherConfig,
    limit: usize,
) -> Result<Selection, NoValidHost> {
    let numa = NumaRequest::from_spec(spec).map_err(|why| NoValidHost {
        hosts: hosts.len(),
        removed: Vec::new(),
        invalid: Some(why),
    })?;
    let ctx = Ctx { spec, numa };
    let mut tallies: Vec<Tally> = FILTERS.iter().map(|_| Tally::default()).collect();
    let mut passed: Vec<(&HostState, Option<NumaPlacement>)> = Vec::new();
    'hosts: for h in hosts {
        let mut placement = None;
        for (i, f) in FILTERS.iter().enumerate() {
            match (f.check)(&ctx, h) {
                Ok(Some(p)) => placement = Some(p),
                Ok(None) => {}
                Err(r) => {
                    let t = &mut tallies[i];
                    t.count += 1;
                    if let Some(free) = r.free {
                        t.best_free = Some(t.best_free.map_or(free, |b: i64| b.max(free)));
                        t.need = Some(r.reason);
                    } else {
                        t.reasons.push((h.host.clone(), r.reason));
                    }
                    continue 'hosts;
                }
            }
        }
        passed.push((h, placement));
    }
    if passed.is_empty() {
        return Err(NoValidHost {
            hosts: hosts.len(),
            removed: FILTERS
                .iter()
                .zip(&tallies)
                .filter(|(_, t)| t.count > 0)
                .map(|(f, t)| (f.name, t.count, t.summary()))
                .collect(),
            invalid: None,
        });
    }
    let refs: Vec<&HostState> = passed.iter().map(|(h, _)| *h).collect();
    let weights = weigh(spec, &refs, cfg);
    let mut ranked: Vec<Candidate> = passed
        .into_iter()
        .zip(weights)
        .map(|((h, numa), weight)| Candidate {
            host: h.host.clone(),
            numa,
            weight,
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.weight
            .partial_cmp(&a.weight)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.host.cmp(&b.host))
    });
    ranked.truncate(limit.max(1));
    Ok(Selection { candidates: ranked })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{CellState, GroupPolicy, GroupSpec, Inventory};
    use std::collections::BTreeSet;

    fn inv(total: i64, used: i64) -> Inventory {
        Inventory {
            total,
            reserved: 0,
            allocation_ratio: 1.0,
            used,
        }
    }

    fn host(name: &str, ram_free: i64) -> HostState {
        HostState {
            host: name.into(),
            enabled: true,
            up: true,
            forced_down: false,
            availability_zone: "nova".into(),
            hypervisor_type: "fake".into(),
            cpu_arch: "x86_64".into(),
            vcpu: inv(8, 0),
            memory_mb: inv(8192, 8192 - ram_free),
            disk_gb: inv(100, 0),
            cells: vec![
                CellState {
                    id: 0,
                    cpus: vec![0, 1, 2, 3],
                    pinned: BTreeSet::new(),
                    memory_mb: 4096,
                    memory_used_mb: 0,
                    hugepages: vec![(2048, 512, 0)],
                },
                CellState {
                    id: 1,
                    cpus: vec![4, 5, 6, 7],
                    pinned: BTreeSet::new(),
                    memory_mb: 4096,
                    memory_used_mb: 0,
                    hugepages: vec![],
                },
            ],
            recent_failures: 0,
        }
    }

    fn spec(vcpus: i64, ram: i64) -> RequestSpec {
        RequestSpec {
            vcpus,
            memory_mb: ram,
            disk_gb: 1,
            ..Default::default()
        }
    }

    #[test]
    fn no_valid_host_names_each_filter() {
        let mut down = host("host-c", 8192);
        down.up = false;
        let hosts = vec![host("host-a", 2048), host("host-b", 1024), down];
        let err = select(&spec(1, 4096), &hosts, &WeigherConfig::default(), 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No valid host was found: 3 hosts; ComputeFilter removed 1 (down: host-c), \
             RamFilter removed 2 (needs 4096 MiB, best has 2048 MiB free)"
        );
        let none = select(&spec(1, 1), &[], &WeigherConfig::default(), 3).unwrap_err();
        assert_eq!(
            none.to_string(),
            "No valid host was found: there are no compute hosts"
        );
    }

    #[test]
    fn ram_weigher_spreads_or_stacks() {
        let hosts = vec![host("a", 2048), host("b", 6144)];
        let spread = select(&spec(1, 512), &hosts, &WeigherConfig::default(), 2).unwrap();
        assert_eq!(spread.candidates[0].host, "b");
        let stack = WeigherConfig {
            ram_weight_multiplier: -1.0,
            ..Default::default()
        };
        let s = select(&spec(1, 512), &hosts, &stack, 2).unwrap();
        assert_eq!(s.candidates[0].host, "a");
    }

    #[test]
    fn build_failures_push_a_host_last() {
        let mut bad = host("a", 8192);
        bad.recent_failures = 2;
        let hosts = vec![bad, host("b", 1024)];
        let s = select(&spec(1, 512), &hosts, &WeigherConfig::default(), 2).unwrap();
        assert_eq!(s.candidates[0].host, "b");
        assert_eq!(s.candidates[1].host, "a");
    }

    #[test]
    fn dedicated_cpus_pin_to_free_cpus_of_one_cell() {
        let mut h = host("a", 8192);
        h.cells[0].pinned = [0].into_iter().collect();
        let mut s = spec(4, 1024);
        s.extra_specs
            .insert("hw:cpu_policy".into(), "dedicated".into());
        s.extra_specs.insert("hw:numa_nodes".into(), "1".into());
        let sel = select(&s, std::slice::from_ref(&h), &WeigherConfig::default(), 1).unwrap();
        let numa = sel.candidates[0].numa.clone().unwrap();
        assert_eq!(numa.cells.len(), 1);
        assert_eq!(numa.cells[0].host_cell, 1);
        assert_eq!(numa.cells[0].host_cpus, vec![4, 5, 6, 7]);
        h.cells[1].pinned = [7].into_iter().collect();
        let err = select(&s, &[h], &WeigherConfig::default(), 1).unwrap_err();
        assert!(
            err.to_string().contains("NUMATopologyFilter removed 1"),
            "{err}"
        );
        assert!(err.to_string().contains("best cell has 3"), "{err}");
    }

    #[test]
    fn numa_nodes_split_and_hugepages() {
        let h = host("a", 8192);
        let mut s = spec(4, 2048);
        s.extra_specs.insert("hw:numa_nodes".into(), "2".into());
        let numa = select(&s, std::slice::from_ref(&h), &WeigherConfig::default(), 1)
            .unwrap()
            .candidates[0]
            .numa
            .clone()
            .unwrap();
        assert_eq!(numa.cells.len(), 2);
        assert_eq!(numa.cells[0].guest_cpus, vec![0, 1]);
        assert_eq!(numa.cells[1].guest_cpus, vec![2, 3]);
        assert_eq!(numa.cells[0].memory_mb, 1024);
        let mut hp = spec(1, 512);
        hp.extra_specs
            .insert("hw:mem_page_size".into(), "2MB".into());
        let numa = select(&hp, std::slice::from_ref(&h), &WeigherConfig::default(), 1)
            .unwrap()
            .candidates[0]
            .numa
            .clone()
            .unwrap();
        assert_eq!(numa.page_size_kb, Some(2048));
        assert_eq!(numa.cells[0].host_cell, 0);
        let mut big = spec(1, 2048);
        big.extra_specs
            .insert("hw:mem_page_size".into(), "large".into());
        assert!(select(&big, &[h], &WeigherConfig::default(), 1).is_err());
    }

    #[test]
    fn anti_affinity_and_affinity() {
        let hosts = vec![host("a", 4096), host("b", 4096)];
        let mut s = spec(1, 512);
        s.group = Some(GroupSpec {
            policy: GroupPolicy::AntiAffinity,
            member_hosts: vec!["a".into()],
        });
        let sel = select(&s, &hosts, &WeigherConfig::default(), 2).unwrap();
        assert_eq!(sel.candidates.len(), 1);
        assert_eq!(sel.candidates[0].host, "b");
        s.group = Some(GroupSpec {
            policy: GroupPolicy::AntiAffinity,
            member_hosts: vec!["a".into(), "b".into()],
        });
        let err = select(&s, &hosts, &WeigherConfig::default(), 2).unwrap_err();
        assert!(
            err.to_string()
                .contains("ServerGroupAntiAffinityFilter removed 2"),
            "{err}"
        );
        s.group = Some(GroupSpec {
            policy: GroupPolicy::Affinity,
            member_hosts: vec!["b".into()],
        });
        let sel = select(&s, &hosts, &WeigherConfig::default(), 2).unwrap();
        assert_eq!(
            sel.candidates
                .iter()
                .map(|c| c.host.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn invalid_extra_specs_say_so() {
        let mut s = spec(1, 512);
        s.extra_specs.insert("hw:cpu_policy".into(), "weird".into());
        let err = select(&s, &[host("a", 4096)], &WeigherConfig::default(), 1).unwrap_err();
        assert!(err.to_string().contains("hw:cpu_policy"), "{err}");
    }
}
