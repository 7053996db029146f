//! Fitting a NUMA request onto one host: each guest cell on its own host
//! cell, dedicated vCPUs pinned to host CPUs nobody else holds, memory on
//! small pages or on free huge pages of one size.

use crate::host::{CellState, HostState};
use crate::numa_request::{GuestCell, MAX_NUMA_NODES, NumaRequest, PageRequest};
use cloud_driver::{NumaCellPlacement, NumaPlacement};
use serde::{Deserialize, Serialize};

/// Why a host's NUMA topology cannot take a request. Amounts are those of
/// the host's best cell, so the scheduler can report the best over hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NumaReject {
    /// The host has fewer cells than the guest.
    Cells {
        /// Guest cells.
        need: u32,
        /// Host cells.
        have: u32,
    },
    /// No cell has enough unpinned CPUs for a guest cell.
    PinnableCpus {
        /// vCPUs of the guest cell.
        need: u32,
        /// Most unpinned CPUs in one cell.
        best: u32,
    },
    /// No cell has as many CPUs as a guest cell has vCPUs.
    CellCpus {
        /// vCPUs of the guest cell.
        need: u32,
        /// Most CPUs in one cell.
        best: u32,
    },
    /// No cell has enough free small-page memory for a guest cell.
    Memory {
        /// Memory of the guest cell, MiB.
        need_mb: u64,
        /// Most free memory in one cell, MiB.
        best_mb: u64,
    },
    /// No cell has enough free huge pages for a guest cell.
    HugePages {
        /// Page size, KiB; `None` for "any large size".
        page_kb: Option<u64>,
        /// Memory of the guest cell, MiB.
        need_mb: u64,
        /// Most free huge page memory in one cell, MiB.
        best_mb: u64,
    },
    /// Every guest cell fits some host cell, but not all of them on
    /// distinct cells at once.
    Combination {
        /// Guest cells.
        need: u32,
        /// Most guest cells placed at once.
        fit: u32,
    },
}

impl NumaReject {
    /// The same rejection without the host's own amount: hosts rejected
    /// for the same kind of reason share this key.
    pub fn kind(self) -> Self {
        match self {
            NumaReject::Cells { need, .. } => NumaReject::Cells { need, have: 0 },
            NumaReject::PinnableCpus { need, .. } => NumaReject::PinnableCpus { need, best: 0 },
            NumaReject::CellCpus { need, .. } => NumaReject::CellCpus { need, best: 0 },
            NumaReject::Memory { need_mb, .. } => NumaReject::Memory {
                need_mb,
                best_mb: 0,
            },
            NumaReject::HugePages {
                page_kb, need_mb, ..
            } => NumaReject::HugePages {
                page_kb,
                need_mb,
                best_mb: 0,
            },
            NumaReject::Combination { need, .. } => NumaReject::Combination { need, fit: 0 },
        }
    }

    /// The host's own amount (what its best cell has).
    pub fn best(self) -> u64 {
        match self {
            NumaReject::Cells { have: b, .. }
            | NumaReject::PinnableCpus { best: b, .. }
            | NumaReject::CellCpus { best: b, .. }
            | NumaReject::Combination { fit: b, .. } => u64::from(b),
            NumaReject::Memory { best_mb, .. } | NumaReject::HugePages { best_mb, .. } => best_mb,
        }
    }
}

/// How guest memory is backed on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backing {
    Small,
    Huge(u64),
}

fn pages_for(memory_mb: u64, page_kb: u64) -> u64 {
    memory_mb.saturating_mul(1024).div_ceil(page_kb.max(1))
}

/// What the NUMA filter decides for one host, before any allocation:
/// which host cell (index into `host.cells`) each guest cell goes on, and
/// how memory is backed. [`place`] turns it into a [`NumaPlacement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NumaMatch {
    host_of: [u8; MAX_NUMA_NODES as usize],
    backing: Backing,
}

/// Per-cell amounts of one host, computed once per host.
type PerCell<T> = [T; MAX_NUMA_NODES as usize];

/// Places `req` on `host`'s cells, or says why it cannot. Only the first
/// [`MAX_NUMA_NODES`] host cells are considered.
pub fn fit_numa(req: &NumaRequest, host: &HostState) -> Result<NumaPlacement, NumaReject> {
    check_numa(req, host).map(|m| place(req, host, &m))
}

/// [`fit_numa`] without building the placement: what the scheduler runs
/// on every host, so 10,000 hosts cost no allocation.
pub(crate) fn check_numa(req: &NumaRequest, host: &HostState) -> Result<NumaMatch, NumaReject> {
    let need = req.cells.len() as u32;
    if host.cells.len() < req.cells.len() {
        return Err(NumaReject::Cells {
            need,
            have: host.cells.len() as u32,
        });
    }
    let cells = &host.cells[..host.cells.len().min(MAX_NUMA_NODES as usize)];
    let mut cpus: PerCell<u32> = [0; MAX_NUMA_NODES as usize];
    for (h, cell) in cells.iter().enumerate() {
        cpus[h] = if req.dedicated {
            cell.free_cpu_count()
        } else {
            cell.cpus.len()
        } as u32;
    }
    let try_with = |backing| match_with(req, cells, &cpus, backing);
    match req.pages {
        None | Some(PageRequest::Small) => try_with(Backing::Small),
        Some(PageRequest::Kb(kb)) => try_with(Backing::Huge(kb)),
        Some(any_or_large) => {
            // Largest page size first, as Nova does.
            let mut first_err: Option<NumaReject> = None;
            let mut pages_err: Option<NumaReject> = None;
            let mut below = u64::MAX;
            while let Some(kb) = largest_page_below(cells, below) {
                match try_with(Backing::Huge(kb)) {
                    Ok(m) => return Ok(m),
                    Err(
                        e @ NumaReject::HugePages {
                            need_mb, best_mb, ..
                        },
                    ) => {
                        first_err.get_or_insert(e);
                        let prev = pages_err.map_or(0, NumaReject::best);
                        pages_err = Some(NumaReject::HugePages {
                            page_kb: None,
                            need_mb,
                            best_mb: best_mb.max(prev),
                        });
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
                below = kb;
            }
            if any_or_large == PageRequest::Any {
                return try_with(Backing::Small);
            }
            // Pages short for every size: say so without naming one size.
            Err(match first_err {
                Some(e) if !matches!(e, NumaReject::HugePages { .. }) => e,
                _ => pages_err.unwrap_or(NumaReject::HugePages {
                    page_kb: None,
                    need_mb: req.cells.iter().map(|c| c.memory_mb).max().unwrap_or(0),
                    best_mb: 0,
                }),
            })
        }
    }
}

/// The largest huge page size of any of `cells` smaller than `below`.
fn largest_page_below(cells: &[CellState], below: u64) -> Option<u64> {
    cells
        .iter()
        .flat_map(|c| c.hugepages.iter().map(|(kb, _, _)| *kb))
        .filter(|kb| *kb < below)
        .max()
}

const NONE: usize = usize::MAX;

/// Memory a guest cell needs in the unit of `backing` (MiB or pages).
fn memory_need(guest: &GuestCell, backing: Backing) -> u64 {
    match backing {
        Backing::Small => guest.memory_mb,
        Backing::Huge(kb) => pages_for(guest.memory_mb, kb),
    }
}

fn match_with(
    req: &NumaRequest,
    cells: &[CellState],
    cpus: &PerCell<u32>,
    backing: Backing,
) -> Result<NumaMatch, NumaReject> {
    let mut memory: PerCell<u64> = [0; MAX_NUMA_NODES as usize];
    for (h, cell) in cells.iter().enumerate() {
        memory[h] = match backing {
            Backing::Small => cell.free_memory_mb(),
            Backing::Huge(kb) => cell.free_pages(kb),
        };
    }
    let n = req.cells.len().min(MAX_NUMA_NODES as usize);
    let mut masks = [0u64; MAX_NUMA_NODES as usize];
    for (g, guest) in req.cells.iter().take(n).enumerate() {
        let (need_cpus, need_mem) = (guest.cpus.len() as u32, memory_need(guest, backing));
        for h in 0..cells.len() {
            if cpus[h] >= need_cpus && memory[h] >= need_mem {
                masks[g] |= 1 << h;
            }
        }
        if masks[g] == 0 {
            return Err(explain(
                req,
                &cpus[..cells.len()],
                &memory[..cells.len()],
                guest,
                backing,
            ));
        }
    }
    // Each guest cell on a distinct host cell: a bipartite matching
    // (augmenting paths), trying host cells in order so the result is
    // deterministic and prefers low cells.
    let mut owner = [NONE; MAX_NUMA_NODES as usize];
    let mut placed = 0u32;
    for g in 0..n {
        let mut seen = 0u64;
        if augment(g, &masks[..n], &mut seen, &mut owner) {
            placed += 1;
        }
    }
    if placed < n as u32 {
        return Err(NumaReject::Combination {
            need: n as u32,
            fit: placed,
        });
    }
    let mut host_of = [0u8; MAX_NUMA_NODES as usize];
    for (h, g) in owner.iter().enumerate() {
        if *g != NONE {
            host_of[*g] = h as u8;
        }
    }
    Ok(NumaMatch { host_of, backing })
}

/// The placement a match stands for: guest cells with their memory, and
/// for dedicated CPUs the first free host CPUs of each chosen cell.
pub(crate) fn place(req: &NumaRequest, host: &HostState, m: &NumaMatch) -> NumaPlacement {
    let cells = req
        .cells
        .iter()
        .take(MAX_NUMA_NODES as usize)
        .enumerate()
        .filter_map(|(g, guest)| {
            let cell = host.cells.get(usize::from(m.host_of[g]))?;
            Some(NumaCellPlacement {
                guest_cell: g as u32,
                host_cell: cell.id,
                guest_cpus: guest.cpus.clone(),
                host_cpus: if req.dedicated {
                    cell.free_cpus().take(guest.cpus.len()).collect()
                } else {
                    Vec::new()
                },
                memory_mb: guest.memory_mb,
            })
        })
        .collect();
    NumaPlacement {
        cells,
        page_size_kb: match m.backing {
            Backing::Small => None,
            Backing::Huge(kb) => Some(kb),
        },
    }
}

/// Finds a host cell for guest cell `g`: a free one if any (so earlier
/// guest cells keep their cells), else one whose guest can move.
fn augment(g: usize, masks: &[u64], seen: &mut u64, owner: &mut [usize]) -> bool {
    let candidates = masks[g] & !*seen;
    let mut rest = candidates;
    while rest != 0 {
        let h = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        if owner[h] == NONE {
            *seen |= 1 << h;
            owner[h] = g;
            return true;
        }
    }
    let mut rest = candidates;
    while rest != 0 {
        let h = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        if *seen & (1 << h) != 0 {
            continue;
        }
        *seen |= 1 << h;
        if augment(owner[h], masks, seen, owner) {
            owner[h] = g;
            return true;
        }
    }
    false
}

/// Why no cell of the host fits `guest`, from the per-cell amounts: CPUs
/// first, then memory, then the two not meeting in one cell.
fn explain(
    req: &NumaRequest,
    cpus: &[u32],
    memory: &[u64],
    guest: &GuestCell,
    backing: Backing,
) -> NumaReject {
    let need = guest.cpus.len() as u32;
    let best_cpus = cpus.iter().copied().max().unwrap_or(0);
    if best_cpus < need {
        return if req.dedicated {
            NumaReject::PinnableCpus {
                need,
                best: best_cpus,
            }
        } else {
            NumaReject::CellCpus {
                need,
                best: best_cpus,
            }
        };
    }
    let best_memory = memory.iter().copied().max().unwrap_or(0);
    if best_memory < memory_need(guest, backing) {
        return match backing {
            Backing::Small => NumaReject::Memory {
                need_mb: guest.memory_mb,
                best_mb: best_memory,
            },
            Backing::Huge(kb) => NumaReject::HugePages {
                page_kb: Some(kb),
                need_mb: guest.memory_mb,
                best_mb: best_memory.saturating_mul(kb) / 1024,
            },
        };
    }
    NumaReject::Combination {
        need: req.cells.len() as u32,
        fit: 0,
    }
}

/// The host CPUs a placement pins, ascending. The caller records them per
/// host (and its claim refuses CPUs already recorded), so no two instances
/// ever share a pinned CPU.
pub fn pinned_cpus(placement: &NumaPlacement) -> Vec<u32> {
    let mut cpus: Vec<u32> = placement
        .cells
        .iter()
        .flat_map(|c| c.host_cpus.iter().copied())
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The huge pages a placement takes: `(host cell, page size KiB, pages)`
/// per cell, empty for small pages.
pub fn hugepages_used(placement: &NumaPlacement) -> Vec<(u32, u64, u64)> {
    match placement.page_size_kb {
        None => Vec::new(),
        Some(kb) => placement
            .cells
            .iter()
            .map(|c| (c.host_cell, kb, pages_for(c.memory_mb, kb)))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
