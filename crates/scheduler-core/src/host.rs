//! What the scheduler knows about one compute host: a snapshot taken by
//! the scheduler service just before it decides.

use crate::request::RequestSpec;
use cloud_driver::NumaPlacement;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One resource class of a host (placement's VCPU, MEMORY_MB or DISK_GB
/// inventory plus its usage), so overcommit and reserved amounts are
/// handled the way placement handles them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Physical total.
    pub total: i64,
    /// Kept back for the host itself.
    pub reserved: i64,
    /// Overcommit ratio (1.0: none).
    pub allocation_ratio: f64,
    /// Already allocated to instances.
    pub used: i64,
}

impl Inventory {
    /// An inventory without reservation or overcommit, handy for callers
    /// that only know a total.
    pub fn plain(total: i64, used: i64) -> Self {
        Inventory {
            total,
            reserved: 0,
            allocation_ratio: 1.0,
            used,
        }
    }

    /// What can be allocated in all: `(total - reserved) * ratio`, rounded
    /// down as placement does.
    pub fn capacity(&self) -> i64 {
        ((self.total - self.reserved) as f64 * self.allocation_ratio).floor() as i64
    }

    /// What is left to allocate (negative when a ratio was lowered below
    /// current usage).
    pub fn free(&self) -> i64 {
        self.capacity() - self.used
    }
}

/// One NUMA cell of a host, with what instances already use of it, so the
/// NUMA filter can pin CPUs no other instance holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellState {
    /// Cell id (as the host reports it).
    pub id: u32,
    /// Host CPUs of the cell.
    pub cpus: Vec<u32>,
    /// Host CPUs already pinned to instances.
    pub pinned: BTreeSet<u32>,
    /// Memory of the cell, MiB.
    pub memory_mb: u64,
    /// Memory used by NUMA-placed instances on small pages, MiB.
    pub memory_used_mb: u64,
    /// Huge pages: `(page size KiB, total pages, used pages)`.
    pub hugepages: Vec<(u64, u64, u64)>,
}

impl CellState {
    /// Host CPUs not pinned yet, in the cell's order.
    pub fn free_cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.cpus
            .iter()
            .copied()
            .filter(|c| !self.pinned.contains(c))
    }

    /// How many host CPUs are not pinned yet. Cheap (it runs for every
    /// cell of every host): constant time when the cell's CPUs are a
    /// sorted range holding every pinned CPU (as hosts report them), a
    /// binary search per pinned CPU when they are sorted.
    pub fn free_cpu_count(&self) -> usize {
        let (Some(first), Some(last)) = (self.pinned.first(), self.pinned.last()) else {
            return self.cpus.len();
        };
        if !self.cpus.is_sorted() {
            return self.free_cpus().count();
        }
        let (lo, hi) = match (self.cpus.first(), self.cpus.last()) {
            (Some(lo), Some(hi)) => (*lo, *hi),
            _ => return 0,
        };
        let contiguous = (hi - lo) as usize + 1 == self.cpus.len();
        if contiguous && lo <= *first && *last <= hi {
            self.cpus.len() - self.pinned.len()
        } else {
            let taken = self
                .pinned
                .iter()
                .filter(|c| self.cpus.binary_search(c).is_ok())
                .count();
            self.cpus.len() - taken
        }
    }

    /// Small-page memory not used yet, MiB.
    pub fn free_memory_mb(&self) -> u64 {
        self.memory_mb.saturating_sub(self.memory_used_mb)
    }

    /// Free huge pages of `page_kb` (0 when the cell has none of that size).
    pub fn free_pages(&self, page_kb: u64) -> u64 {
        self.hugepages
            .iter()
            .find(|(size, _, _)| *size == page_kb)
            .map_or(0, |(_, total, used)| total.saturating_sub(*used))
    }
}

/// A snapshot of one compute host: its service state, inventories, NUMA
/// topology and recent failures. Everything a filter or weigher reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    /// Host name (also the tie-breaker between equal weights).
    pub host: String,
    /// The compute service is not disabled by an admin.
    pub enabled: bool,
    /// The heartbeat is recent.
    pub up: bool,
    /// An admin forced the service down.
    pub forced_down: bool,
    /// Availability zone of the host.
    pub availability_zone: String,
    /// `QEMU`, `KVM` or `fake`.
    pub hypervisor_type: String,
    /// `x86_64`, `aarch64`, ...
    pub cpu_arch: String,
    /// VCPU inventory.
    pub vcpu: Inventory,
    /// MEMORY_MB inventory.
    pub memory_mb: Inventory,
    /// DISK_GB inventory.
    pub disk_gb: Inventory,
    /// NUMA cells (may be empty when the request needs no NUMA placement:
    /// the scheduler service only reads them when they matter).
    pub cells: Vec<CellState>,
    /// Build failures on this host within the failure window.
    pub recent_failures: u32,
}

impl HostState {
    /// Records that one instance of `spec` was placed here with `numa`, so
    /// the next instance of a multi-create request sees the host as it will
    /// be (resources used, CPUs pinned, huge pages taken).
    pub fn consume(&mut self, spec: &RequestSpec, numa: Option<&NumaPlacement>) {
        self.vcpu.used += spec.vcpus;
        self.memory_mb.used += spec.memory_mb;
        self.disk_gb.used += spec.disk_gb;
        let Some(numa) = numa else { return };
        for placed in &numa.cells {
            let Some(cell) = self.cells.iter_mut().find(|c| c.id == placed.host_cell) else {
                continue;
            };
            cell.pinned.extend(placed.host_cpus.iter().copied());
            match numa.page_size_kb {
                Some(kb) => {
                    let pages = placed.memory_mb.saturating_mul(1024).div_ceil(kb.max(1));
                    if let Some(entry) = cell.hugepages.iter_mut().find(|(size, _, _)| *size == kb)
                    {
                        entry.2 += pages;
                    }
                }
                None => cell.memory_used_mb += placed.memory_mb,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{host, spec};
    use cloud_driver::NumaCellPlacement;

    #[test]
    fn capacity_applies_reserved_then_ratio() {
        let inv = Inventory {
            total: 16,
            reserved: 2,
            allocation_ratio: 4.0,
            used: 10,
        };
        assert_eq!(inv.capacity(), 56);
        assert_eq!(inv.free(), 46);
        let ram = Inventory {
            total: 8192,
            reserved: 512,
            allocation_ratio: 1.5,
            used: 0,
        };
        assert_eq!(ram.capacity(), 11520);
        let fractional = Inventory {
            total: 3,
            reserved: 0,
            allocation_ratio: 1.5,
            used: 0,
        };
        assert_eq!(fractional.capacity(), 4, "rounded down");
        let over = Inventory {
            total: 4,
            reserved: 0,
            allocation_ratio: 1.0,
            used: 6,
        };
        assert_eq!(
            over.free(),
            -2,
            "a lowered ratio can leave usage above capacity"
        );
    }

    #[test]
    fn cell_free_resources() {
        let h = host("a");
        let mut cell = h.cells[0].clone();
        cell.pinned = [1, 3].into();
        assert_eq!(cell.free_cpus().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(cell.free_cpu_count(), 2);
        cell.pinned.insert(9);
        assert_eq!(cell.free_cpu_count(), 2, "a pinned CPU of another cell");
        cell.cpus = vec![0, 2, 4, 6];
        cell.pinned = [2, 3].into();
        assert_eq!(cell.free_cpu_count(), 3, "sorted, not a range");
        cell.cpus = vec![3, 2, 1, 0];
        cell.pinned = [1, 3, 9].into();
        assert_eq!(cell.free_cpu_count(), 2, "unsorted CPUs");
        assert_eq!(cell.free_cpus().collect::<Vec<_>>(), [2, 0]);
        cell.memory_used_mb = 1000;
        assert_eq!(cell.free_memory_mb(), 3096);
        assert_eq!(cell.free_pages(2048), 512);
        assert_eq!(cell.free_pages(1_048_576), 0);
    }

    #[test]
    fn consume_takes_resources_pins_and_pages() {
        let mut h = host("a");
        let s = spec(2, 1024);
        let numa = NumaPlacement {
            cells: vec![NumaCellPlacement {
                guest_cell: 0,
                host_cell: 0,
                guest_cpus: vec![0, 1],
                host_cpus: vec![0, 1],
                memory_mb: 1024,
            }],
            page_size_kb: Some(2048),
        };
        h.consume(&s, Some(&numa));
        assert_eq!(h.vcpu.used, 2);
        assert_eq!(h.memory_mb.used, 1024);
        assert_eq!(h.disk_gb.used, 1);
        assert_eq!(h.cells[0].pinned, [0, 1].into());
        assert_eq!(
            h.cells[0].free_pages(2048),
            0,
            "1024 MiB = 512 pages of 2 MiB"
        );
        assert_eq!(h.cells[0].memory_used_mb, 0, "huge pages, not small memory");
        let small = NumaPlacement {
            page_size_kb: None,
            ..numa
        };
        h.consume(&s, Some(&small));
        assert_eq!(h.cells[0].memory_used_mb, 1024);
    }
}
