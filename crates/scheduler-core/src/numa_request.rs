//! Reading a request's NUMA needs (`hw:numa_nodes`, `hw:numa_cpus.N`,
//! `hw:numa_mem.N`, `hw:cpu_policy`, `hw:mem_page_size`) once, before any
//! host is looked at.

use crate::request::RequestSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A request the scheduler can never satisfy because its flavor or image
/// settings are malformed or contradictory. The message names the setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

fn invalid(msg: impl Into<String>) -> InvalidRequest {
    InvalidRequest(msg.into())
}

/// The memory page size a guest asks for (`hw:mem_page_size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageRequest {
    /// Small (4 KiB) pages: no huge pages.
    Small,
    /// The largest huge page size that fits; never small pages.
    Large,
    /// The largest huge page size that fits, else small pages.
    Any,
    /// Exactly this huge page size, KiB.
    Kb(u64),
}

/// One guest NUMA cell: which guest vCPUs and how much memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestCell {
    /// Guest vCPU indexes, ascending.
    pub cpus: Vec<u32>,
    /// Memory, MiB.
    pub memory_mb: u64,
}

/// What a request asks of a host's NUMA topology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaRequest {
    /// Guest cells; each goes on its own host cell.
    pub cells: Vec<GuestCell>,
    /// Pin each vCPU to its own, otherwise unused host CPU
    /// (`hw:cpu_policy=dedicated`).
    pub dedicated: bool,
    /// Memory backing; `None` when unspecified (small pages).
    pub pages: Option<PageRequest>,
}

/// Most guest NUMA cells a request may have: the fitting code tracks host
/// cells in a 64-bit mask.
pub const MAX_NUMA_NODES: u32 = 64;

impl NumaRequest {
    /// Reads the NUMA settings of `spec` (flavor extra specs, else image
    /// `hw_*` properties). `Ok(None)` when the request needs no NUMA
    /// placement; `Err` names the malformed setting.
    pub fn from_spec(spec: &RequestSpec) -> Result<Option<NumaRequest>, InvalidRequest> {
        let nodes = match spec.hw_setting("hw:numa_nodes") {
            Some(raw) => Some(
                raw.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_NUMA_NODES).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "hw:numa_nodes must be an integer from 1 to {MAX_NUMA_NODES}, not '{raw}'"
                        ))
                    })?,
            ),
            None => None,
        };
        let dedicated = match spec
            .hw_setting("hw:cpu_policy")
            .map(|p| p.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("shared") => false,
            Some("dedicated") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "hw:cpu_policy must be 'shared' or 'dedicated', not '{other}'"
                )));
            }
        };
        let pages = spec
            .hw_setting("hw:mem_page_size")
            .map(parse_page_size)
            .transpose()?;
        let manual = manual_indexes(spec)?;
        if nodes.is_none() && !dedicated && pages.is_none() && manual.is_empty() {
            return Ok(None);
        }
        let nodes = nodes.unwrap_or_else(|| manual.last().map_or(1, |i| i + 1));
        let vcpus = u32::try_from(spec.vcpus)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                invalid(format!(
                    "a NUMA placement needs at least 1 vCPU, not {}",
                    spec.vcpus
                ))
            })?;
        let memory_mb = u64::try_from(spec.memory_mb)
            .map_err(|_| invalid(format!("memory {} MiB is negative", spec.memory_mb)))?;
        if vcpus < nodes {
            return Err(invalid(format!(
                "{vcpus} vCPU(s) cannot be spread over hw:numa_nodes={nodes} NUMA nodes"
            )));
        }
        let cells = if manual.is_empty() {
            even_cells(vcpus, memory_mb, nodes)?
        } else {
            manual_cells(spec, vcpus, memory_mb, nodes, &manual)?
        };
        Ok(Some(NumaRequest {
            cells,
            dedicated,
            pages,
        }))
    }

    /// vCPUs over all guest cells.
    pub fn vcpus(&self) -> usize {
        self.cells.iter().map(|c| c.cpus.len()).sum()
    }
}

/// Parses `hw:mem_page_size`: `small`, `large`, `any`, or a size in KiB
/// with an optional unit (`2048`, `2MB`, `1GB`, `1048576KiB`).
pub fn parse_page_size(raw: &str) -> Result<PageRequest, InvalidRequest> {
    let v = raw.trim().to_ascii_lowercase();
    let bad = || {
        invalid(format!(
            "hw:mem_page_size must be small, large, any or a size such as 2048 or 1GB, not '{raw}'"
        ))
    };
    match v.as_str() {
        "small" => return Ok(PageRequest::Small),
        "large" => return Ok(PageRequest::Large),
        "any" => return Ok(PageRequest::Any),
        _ => {}
    }
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 1024,
        "g" | "gb" | "gib" => 1024 * 1024,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(0) | None => Err(bad()),
        Some(4) => Ok(PageRequest::Small),
        Some(kb) => Ok(PageRequest::Kb(kb)),
    }
}

/// Parses a Nova CPU list such as `0-3,^2,6`: ranges and single CPUs,
/// then `^n` exclusions.
pub fn parse_cpu_list(raw: &str) -> Result<BTreeSet<u32>, InvalidRequest> {
    let bad = |part: &str| {
        invalid(format!(
            "'{part}' in CPU list '{raw}' is not a CPU or range"
        ))
    };
    let num = |s: &str, part: &str| s.trim().parse::<u32>().map_err(|_| bad(part));
    let mut cpus = BTreeSet::new();
    let mut excluded = BTreeSet::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(x) = part.strip_prefix('^') {
            excluded.insert(num(x, part)?);
        } else if let Some((lo, hi)) = part.split_once('-') {
            let (lo, hi) = (num(lo, part)?, num(hi, part)?);
            if lo > hi {
                return Err(bad(part));
            }
            cpus.extend(lo..=hi);
        } else {
            cpus.insert(num(part, part)?);
        }
    }
    Ok(cpus.difference(&excluded).copied().collect())
}

/// Indexes `N` that have a `hw:numa_cpus.N` or `hw:numa_mem.N` setting,
/// ascending and unique.
fn manual_indexes(spec: &RequestSpec) -> Result<Vec<u32>, InvalidRequest> {
    let flavor = spec
        .extra_specs
        .keys()
        .filter_map(|k| k.strip_prefix("hw:"));
    let image = spec
        .image_properties
        .keys()
        .filter_map(|k| k.strip_prefix("hw_"));
    let mut out = BTreeSet::new();
    for key in flavor.chain(image) {
        let Some(index) = key
            .strip_prefix("numa_cpus.")
            .or_else(|| key.strip_prefix("numa_mem."))
        else {
            continue;
        };
        let i = index
            .parse::<u32>()
            .map_err(|_| invalid(format!("'{key}' must end with a NUMA node number")))?;
        out.insert(i);
    }
    Ok(out.into_iter().collect())
}

/// `nodes` equal cells, as Nova splits a flavor: both vCPUs and memory
/// must divide evenly (otherwise the flavor must say how, per node).
fn even_cells(vcpus: u32, memory_mb: u64, nodes: u32) -> Result<Vec<GuestCell>, InvalidRequest> {
    if !vcpus.is_multiple_of(nodes) || !memory_mb.is_multiple_of(u64::from(nodes)) {
        return Err(invalid(format!(
            "{vcpus} vCPU(s) and {memory_mb} MiB cannot be split evenly over {nodes} NUMA nodes; \
             set hw:numa_cpus.N and hw:numa_mem.N for each node"
        )));
    }
    let per = vcpus / nodes;
    Ok((0..nodes)
        .map(|n| GuestCell {
            cpus: (n * per..(n + 1) * per).collect(),
            memory_mb: memory_mb / u64::from(nodes),
        })
        .collect())
}

/// Cells from `hw:numa_cpus.N` / `hw:numa_mem.N`: every node needs both,
/// every vCPU must be in exactly one node and the memory must add up.
fn manual_cells(
    spec: &RequestSpec,
    vcpus: u32,
    memory_mb: u64,
    nodes: u32,
    indexes: &[u32],
) -> Result<Vec<GuestCell>, InvalidRequest> {
    if let Some(i) = indexes.iter().find(|i| **i >= nodes) {
        return Err(invalid(format!(
            "hw:numa_cpus.{i}/hw:numa_mem.{i} name a node beyond hw:numa_nodes={nodes}"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut cells = Vec::with_capacity(nodes as usize);
    for n in 0..nodes {
        let cpus_key = format!("hw:numa_cpus.{n}");
        let mem_key = format!("hw:numa_mem.{n}");
        let (Some(cpus), Some(mem)) = (spec.hw_setting(&cpus_key), spec.hw_setting(&mem_key))
        else {
            return Err(invalid(format!(
                "{cpus_key} and {mem_key} must both be set for every one of the {nodes} NUMA nodes"
            )));
        };
        let cpus = parse_cpu_list(cpus)?;
        if cpus.is_empty() {
            return Err(invalid(format!("{cpus_key} has no vCPU")));
        }
        if let Some(c) = cpus.iter().find(|c| **c >= vcpus) {
            return Err(invalid(format!(
                "{cpus_key} names vCPU {c}, but the flavor has {vcpus} (0-{})",
                vcpus - 1
            )));
        }
        if let Some(c) = cpus.iter().find(|c| seen.contains(*c)) {
            return Err(invalid(format!("vCPU {c} is in more than one NUMA node")));
        }
        seen.extend(cpus.iter().copied());
        let mem = mem
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|m| *m > 0)
            .ok_or_else(|| {
                invalid(format!(
                    "{mem_key} must be a positive number of MiB, not '{mem}'"
                ))
            })?;
        cells.push(GuestCell {
            cpus: cpus.into_iter().collect(),
            memory_mb: mem,
        });
    }
    if seen.len() != vcpus as usize {
        let missing: Vec<String> = (0..vcpus)
            .filter(|c| !seen.contains(c))
            .map(|c| c.to_string())
            .collect();
        return Err(invalid(format!(
            "vCPU(s) {} are in no NUMA node (hw:numa_cpus.N)",
            missing.join(",")
        )));
    }
    let total: u64 = cells.iter().map(|c| c.memory_mb).sum();
    if total != memory_mb {
        return Err(invalid(format!(
            "hw:numa_mem.N add up to {total} MiB, but the flavor has {memory_mb} MiB"
        )));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::spec;

    fn with(vcpus: i64, ram: i64, specs: &[(&str, &str)]) -> RequestSpec {
        let mut s = spec(vcpus, ram);
        for (k, v) in specs {
            s.extra_specs.insert((*k).into(), (*v).into());
        }
        s
    }

    fn parse(vcpus: i64, ram: i64, specs: &[(&str, &str)]) -> Result<Option<NumaRequest>, String> {
        NumaRequest::from_spec(&with(vcpus, ram, specs)).map_err(|e| e.to_string())
    }

    #[test]
    fn no_numa_settings_means_no_numa_request() {
        assert_eq!(parse(4, 4096, &[]), Ok(None));
        assert_eq!(parse(4, 4096, &[("hw:cpu_policy", "shared")]), Ok(None));
        assert_eq!(parse(4, 4096, &[("quota:cpu_shares", "10")]), Ok(None));
    }

    #[test]
    fn dedicated_without_nodes_is_one_cell() {
        let r = parse(4, 2048, &[("hw:cpu_policy", "dedicated")])
            .unwrap()
            .unwrap();
        assert!(r.dedicated);
        assert_eq!(
            r.cells,
            [GuestCell {
                cpus: vec![0, 1, 2, 3],
                memory_mb: 2048
            }]
        );
        assert_eq!(r.pages, None);
        assert_eq!(r.vcpus(), 4);
    }

    #[test]
    fn nodes_split_evenly_or_not_at_all() {
        let r = parse(4, 2048, &[("hw:numa_nodes", "2")]).unwrap().unwrap();
        assert_eq!(r.cells.len(), 2);
        assert_eq!(r.cells[0].cpus, [0, 1]);
        assert_eq!(r.cells[1].cpus, [2, 3]);
        assert_eq!(r.cells[1].memory_mb, 1024);
        assert_eq!(
            parse(3, 2048, &[("hw:numa_nodes", "2")]).unwrap_err(),
            "3 vCPU(s) and 2048 MiB cannot be split evenly over 2 NUMA nodes; \
             set hw:numa_cpus.N and hw:numa_mem.N for each node"
        );
        assert_eq!(
            parse(1, 2048, &[("hw:numa_nodes", "2")]).unwrap_err(),
            "1 vCPU(s) cannot be spread over hw:numa_nodes=2 NUMA nodes"
        );
        for bad in ["0", "-1", "two", "65"] {
            let err = parse(4, 2048, &[("hw:numa_nodes", bad)]).unwrap_err();
            assert!(err.starts_with("hw:numa_nodes must be"), "{err}");
        }
    }

    #[test]
    fn manual_cells_from_numa_cpus_and_mem() {
        let r = parse(
            4,
            3072,
            &[
                ("hw:numa_nodes", "2"),
                ("hw:numa_cpus.0", "0"),
                ("hw:numa_cpus.1", "1-3"),
                ("hw:numa_mem.0", "1024"),
                ("hw:numa_mem.1", "2048"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.cells[0].cpus, [0]);
        assert_eq!(r.cells[1].cpus, [1, 2, 3]);
        assert_eq!(r.cells[0].memory_mb, 1024);
        assert_eq!(r.cells[1].memory_mb, 2048);
        // The node count follows from the indexes when hw:numa_nodes is absent.
        let r = parse(
            2,
            512,
            &[
                ("hw:numa_cpus.0", "0"),
                ("hw:numa_cpus.1", "1"),
                ("hw:numa_mem.0", "256"),
                ("hw:numa_mem.1", "256"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.cells.len(), 2);
    }

    #[test]
    fn manual_cells_are_validated() {
        let base = [
            ("hw:numa_nodes", "2"),
            ("hw:numa_mem.0", "1024"),
            ("hw:numa_mem.1", "1024"),
        ];
        let case = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            parse(4, 2048, &all).unwrap_err()
        };
        assert_eq!(
            case(&[("hw:numa_cpus.0", "0-1")]),
            "hw:numa_cpus.1 and hw:numa_mem.1 must both be set for every one of the 2 NUMA nodes"
        );
        assert_eq!(
            case(&[("hw:numa_cpus.0", "0-2"), ("hw:numa_cpus.1", "2-3")]),
            "vCPU 2 is in more than one NUMA node"
        );
        assert_eq!(
            case(&[("hw:numa_cpus.0", "0"), ("hw:numa_cpus.1", "1")]),
            "vCPU(s) 2,3 are in no NUMA node (hw:numa_cpus.N)"
        );
        assert_eq!(
            case(&[("hw:numa_cpus.0", "0-1"), ("hw:numa_cpus.1", "2-4")]),
            "hw:numa_cpus.1 names vCPU 4, but the flavor has 4 (0-3)"
        );
        assert_eq!(
            case(&[
                ("hw:numa_cpus.0", "0-1"),
                ("hw:numa_cpus.1", "2-3"),
                ("hw:numa_cpus.2", "3")
            ]),
            "hw:numa_cpus.2/hw:numa_mem.2 name a node beyond hw:numa_nodes=2"
        );
        let err = parse(
            4,
            4096,
            &[
                ("hw:numa_nodes", "2"),
                ("hw:numa_cpus.0", "0-1"),
                ("hw:numa_cpus.1", "2-3"),
                ("hw:numa_mem.0", "1024"),
                ("hw:numa_mem.1", "1024"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "hw:numa_mem.N add up to 2048 MiB, but the flavor has 4096 MiB"
        );
        assert_eq!(
            parse(2, 512, &[("hw:numa_cpus.x", "0")]).unwrap_err(),
            "'numa_cpus.x' must end with a NUMA node number"
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,^2,6").unwrap(), [0, 1, 3, 6].into());
        assert_eq!(parse_cpu_list(" 1 , 0 ").unwrap(), [0, 1].into());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn page_sizes() {
        use PageRequest::*;
        for (raw, want) in [
            ("small", Small),
            ("LARGE", Large),
            ("any", Any),
            ("2048", Kb(2048)),
            ("2MB", Kb(2048)),
            ("2MiB", Kb(2048)),
            ("1GB", Kb(1_048_576)),
            ("1048576", Kb(1_048_576)),
            ("4", Small),
            ("4KB", Small),
        ] {
            assert_eq!(parse_page_size(raw), Ok(want), "{raw}");
        }
        for raw in ["0", "huge", "2TB", ""] {
            assert!(parse_page_size(raw).is_err(), "{raw}");
        }
        // A page size alone asks for a NUMA placement, as in Nova.
        let r = parse(1, 512, &[("hw:mem_page_size", "2MB")])
            .unwrap()
            .unwrap();
        assert_eq!(r.pages, Some(Kb(2048)));
        assert_eq!(r.cells.len(), 1);
    }

    #[test]
    fn image_properties_count_when_the_flavor_is_silent() {
        let mut s = spec(2, 1024);
        s.image_properties
            .insert("hw_cpu_policy".into(), "dedicated".into());
        assert!(NumaRequest::from_spec(&s).unwrap().unwrap().dedicated);
        s.extra_specs
            .insert("hw:cpu_policy".into(), "shared".into());
        assert_eq!(NumaRequest::from_spec(&s), Ok(None));
        let err = parse(2, 512, &[("hw:cpu_policy", "mixed")]).unwrap_err();
        assert_eq!(
            err,
            "hw:cpu_policy must be 'shared' or 'dedicated', not 'mixed'"
        );
    }
}
