//! Test fixtures shared by the unit tests: a typical two-cell host and a
//! plain request.

use crate::host::{CellState, HostState, Inventory};
use crate::request::RequestSpec;
use std::collections::BTreeSet;

/// A host with 8 vCPUs, 8192 MiB and 100 GiB, nothing used, in zone
/// `nova`, and two NUMA cells of 4 CPUs and 4096 MiB: cell 0 (CPUs 0-3)
/// has 512 pages of 2 MiB, cell 1 (CPUs 4-7) has 2 pages of 1 GiB.
pub(crate) fn host(name: &str) -> HostState {
    HostState {
        host: name.into(),
        enabled: true,
        up: true,
        forced_down: false,
        availability_zone: "nova".into(),
        hypervisor_type: "QEMU".into(),
        cpu_arch: "x86_64".into(),
        vcpu: Inventory::plain(8, 0),
        memory_mb: Inventory::plain(8192, 0),
        disk_gb: Inventory::plain(100, 0),
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
                hugepages: vec![(1_048_576, 2, 0)],
            },
        ],
        recent_failures: 0,
    }
}

/// [`host`] with `free` MiB of RAM left.
pub(crate) fn host_with_ram(name: &str, free: i64) -> HostState {
    let mut h = host(name);
    h.memory_mb.used = h.memory_mb.total - free;
    h
}

/// A request for `vcpus` and `ram` MiB and 1 GiB of disk.
pub(crate) fn spec(vcpus: i64, ram: i64) -> RequestSpec {
    RequestSpec {
        vcpus,
        memory_mb: ram,
        disk_gb: 1,
        ..RequestSpec::default()
    }
}

/// `s` with the flavor extra specs `specs` added.
pub(crate) fn with_specs(mut s: RequestSpec, specs: &[(&str, &str)]) -> RequestSpec {
    for (k, v) in specs {
        s.extra_specs.insert((*k).into(), (*v).into());
    }
    s
}
