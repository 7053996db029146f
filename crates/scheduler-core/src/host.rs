//! What the scheduler sees: the request and the hosts.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One resource class of a host.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Physical total.
    pub total: i64,
    /// Kept for the host.
    pub reserved: i64,
    /// Overcommit ratio.
    pub allocation_ratio: f64,
    /// Already allocated.
    pub used: i64,
}

impl Inventory {
    /// What can be allocated in all.
    pub fn capacity(&self) -> i64 {
        ((self.total - self.reserved) as f64 * self.allocation_ratio).floor() as i64
    }

    /// What is left.
    pub fn free(&self) -> i64 {
        self.capacity() - self.used
    }
}

/// One NUMA cell of a host, with what is already used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellState {
    /// Cell id.
    pub id: u32,
    /// Host CPUs of the cell.
    pub cpus: Vec<u32>,
    /// Host CPUs already pinned to instances.
    pub pinned: BTreeSet<u32>,
    /// Memory of the cell, MiB.
    pub memory_mb: u64,
    /// Memory used by NUMA-placed instances, MiB.
    pub memory_used_mb: u64,
    /// Huge pages: `(page size KiB, total, used)`.
    pub hugepages: Vec<(u64, u64, u64)>,
}

impl CellState {
    /// CPUs not pinned yet, in order.
    pub fn free_cpus(&self) -> Vec<u32> {
        self.cpus
            .iter()
            .copied()
            .filter(|c| !self.pinned.contains(c))
            .collect()
    }
}

/// A snapshot of one compute host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    /// Host name.
    pub host: String,
    /// Not disabled by an admin.
    pub enabled: bool,
    /// Heartbeat recent.
    pub up: bool,
    /// Forced down by an admin.
    pub forced_down: bool,
    /// Availability zone.
    pub availability_zone: String,
    /// `QEMU`, `KVM`, `fake`.
    pub hypervisor_type: String,
    /// `x86_64`, ...
    pub cpu_arch: String,
    /// VCPU inventory.
    pub vcpu: Inventory,
    /// MEMORY_MB inventory.
    pub memory_mb: Inventory,
    /// DISK_GB inventory.
    pub disk_gb: Inventory,
    /// NUMA cells.
    pub cells: Vec<CellState>,
    /// Recent build failures on this host.
    pub recent_failures: u32,
}

/// Server group policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupPolicy {
    /// Same host as the other members (hard).
    Affinity,
    /// Different host from every other member (hard).
    AntiAffinity,
    /// Prefer the same host.
    SoftAffinity,
    /// Prefer different hosts.
    SoftAntiAffinity,
}

/// The server group of the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// The policy.
    pub policy: GroupPolicy,
    /// Hosts of the other members.
    pub member_hosts: Vec<String>,
}

/// What the server needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// vCPUs.
    pub vcpus: i64,
    /// Memory, MiB.
    pub memory_mb: i64,
    /// Disk, GiB.
    pub disk_gb: i64,
    /// Flavor extra specs.
    pub extra_specs: BTreeMap<String, String>,
    /// Image properties.
    pub image_properties: BTreeMap<String, String>,
    /// Requested availability zone.
    pub availability_zone: Option<String>,
    /// Server group.
    pub group: Option<GroupSpec>,
    /// Hosts that already failed this build.
    pub ignore_hosts: Vec<String>,
}
