//! NUMA fitting: splitting a guest over host cells, pinning dedicated
//! vCPUs to free host CPUs, and backing memory with huge pages.

use crate::host::{HostState, RequestSpec};
use cloud_driver::{NumaCellPlacement, NumaPlacement};

/// What a flavor asks of the host's NUMA topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumaRequest {
    /// Guest NUMA cells.
    pub nodes: u32,
    /// Pin each vCPU to its own host CPU (`hw:cpu_policy=dedicated`).
    pub dedicated: bool,
    /// Huge page size in KiB; `Some(0)` means "any large size".
    pub page_kb: Option<u64>,
    /// vCPUs in all.
    pub vcpus: u32,
    /// Memory in all, MiB.
    pub memory_mb: u64,
}

impl NumaRequest {
    /// Reads `hw:numa_nodes`, `hw:cpu_policy` and `hw:mem_page_size` from
    /// the flavor (image properties `hw_*` too). `Ok(None)` when the
    /// request has no NUMA needs; `Err` when the extra specs are invalid.
    pub fn from_spec(spec: &RequestSpec) -> Result<Option<NumaRequest>, String> {
        let get = |flavor_key: &str, image_key: &str| {
            spec.extra_specs
                .get(flavor_key)
                .or_else(|| spec.image_properties.get(image_key))
                .map(|s| s.trim().to_ascii_lowercase())
        };
        let nodes =
            match get("hw:numa_nodes", "hw_numa_nodes") {
                Some(n) => Some(n.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!("hw:numa_nodes must be a positive integer, not '{n}'")
                })?),
                None => None,
            };
        let dedicated = match get("hw:cpu_policy", "hw_cpu_policy").as_deref() {
            None | Some("shared") => false,
            Some("dedicated") => true,
            Some(other) => {
                return Err(format!(
                    "hw:cpu_policy must be shared or dedicated, not '{other}'"
                ));
            }
        };
        let page_kb = match get("hw:mem_page_size", "hw_mem_page_size").as_deref() {
            None | Some("small") | Some("any") => None,
            Some("large") => Some(0),
            Some("2mb") | Some("2048") => Some(2048),
            Some("1gb") | Some("1048576") => Some(1_048_576),
            Some(other) => match other.trim_end_matches("kb").parse::<u64>() {
                Ok(kb) if kb > 0 => Some(kb),
                _ => return Err(format!("hw:mem_page_size '{other}' is not a page size")),
            },
        };
        if nodes.is_none() && !dedicated && page_kb.is_none() {
            return Ok(None);
        }
        let nodes = nodes.unwrap_or(1);
        let vcpus = u32::try_from(spec.vcpus).unwrap_or(0);
        if vcpus < nodes {
            return Err(format!(
                "{vcpus} vCPU(s) cannot be split over {nodes} NUMA nodes"
            ));
        }
        Ok(Some(NumaRequest {
            nodes,
            dedicated,
            page_kb,
            vcpus,
            memory_mb: u64::try_from(spec.memory_mb).unwrap_or(0),
        }))
    }
}

/// Places `req` on `host`'s cells, or says why it does not fit.
pub fn fit_numa(req: &NumaRequest, host: &HostState) -> Result<NumaPlacement, String> {
    let n = req.nodes as usize;
    if host.cells.len() < n {
        return Err(format!(
            "needs {n} NUMA cell(s), host has {}",
            host.cells.len()
        ));
    }
    let mut used_cells: Vec<usize> = Vec::with_capacity(n);
    let mut cells = Vec::with_capacity(n);
    let mut next_guest_cpu = 0u32;
    let mut best_free_cpus = 0usize;
    let mut page_used: Option<u64> = None;
    for g in 0..n {
        let cpus = req.vcpus / req.nodes + u32::from((g as u32) < req.vcpus % req.nodes);
        let mem = req.memory_mb / u64::from(req.nodes)
            + u64::from((g as u64) < req.memory_mb % u64::from(req.nodes));
        let mut placed = None;
        for (i, cell) in host.cells.iter().enumerate() {
            if used_cells.contains(&i) {
                continue;
            }
            let free = cell.free_cpus();
            best_free_cpus = best_free_cpus.max(free.len());
            if req.dedicated && free.len() < cpus as usize {
                continue;
            }
            if !req.dedicated && cell.cpus.len() < cpus as usize && host.cells.len() > 1 {
                continue;
            }
            let page = match req.page_kb {
                None => {
                    if cell.memory_mb.saturating_sub(cell.memory_used_mb) < mem {
                        continue;
                    }
                    None
                }
                Some(want) => {
                    let fit = cell.hugepages.iter().find(|(size, total, used)| {
                        (want == 0 || *size == want) && (total - used) * size >= mem * 1024
                    });
                    match fit {
                        Some((size, _, _)) => Some(*size),
                        None => continue,
                    }
                }
            };
            let host_cpus = if req.dedicated {
                free[..cpus as usize].to_vec()
            } else {
                Vec::new()
            };
            placed = Some((i, cell.id, host_cpus, page));
            break;
        }
        let Some((i, host_cell, host_cpus, page)) = placed else {
            return Err(if req.dedicated {
                format!(
                    "needs {cpus} free pinnable CPU(s) in each of {n} NUMA cell(s), best cell has {best_free_cpus}"
                )
            } else if req.page_kb.is_some() {
                format!("needs {mem} MiB of free huge pages in each of {n} NUMA cell(s)")
            } else {
                format!("needs {n} NUMA cell(s) with {cpus} CPU(s) and {mem} MiB each")
            });
        };
        if page.is_some() {
            page_used = page;
        }
        used_cells.push(i);
        cells.push(NumaCellPlacement {
            guest_cell: g as u32,
            host_cell,
            guest_cpus: (next_guest_cpu..next_guest_cpu + cpus).collect(),
            host_cpus,
            memory_mb: mem,
        });
        next_guest_cpu += cpus;
    }
    Ok(NumaPlacement {
        cells,
        page_size_kb: page_used,
    })
}
