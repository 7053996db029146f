//! The fault message users see, exactly, for the usual scenarios.

use super::*;
use crate::host::HostState;
use crate::request::{GroupPolicy, GroupSpec, RequestSpec};
use crate::select::select;
use crate::testing::{host, host_with_ram, spec, with_specs};
use crate::weighers::WeigherConfig;
use cloud_model::ServerGroupId;

fn message(s: &RequestSpec, hosts: &[HostState]) -> String {
    select(s, hosts, &WeigherConfig::default(), 2)
        .unwrap_err()
        .to_string()
}

fn in_group(mut s: RequestSpec, policy: GroupPolicy, members: &[&str]) -> RequestSpec {
    s.group = Some(GroupSpec {
        id: ServerGroupId::new(),
        policy,
        member_hosts: members.iter().map(|m| (*m).to_owned()).collect(),
    });
    s
}

#[test]
fn down_host_and_short_ram() {
    let mut down = host("host-c");
    down.up = false;
    let hosts = [
        host_with_ram("host-a", 2048),
        host_with_ram("host-b", 1024),
        down,
    ];
    assert_eq!(
        message(&spec(1, 4096), &hosts),
        "No valid host was found: 3 hosts; ComputeFilter removed 1 (down: host-c), \
         RamFilter removed 2 (needs 4096 MiB, best has 2048 MiB free)"
    );
}

#[test]
fn no_hosts_at_all() {
    assert_eq!(
        message(&spec(1, 512), &[]),
        "No valid host was found: there are no compute hosts"
    );
}

#[test]
fn one_host_short_of_cpus_and_disk() {
    let mut s = spec(16, 512);
    assert_eq!(
        message(&s, &[host("a")]),
        "No valid host was found: 1 host; CoreFilter removed 1 (needs 16 vCPU(s), best has 8 vCPU(s) free)"
    );
    s.vcpus = 1;
    s.disk_gb = 500;
    assert_eq!(
        message(&s, &[host("a")]),
        "No valid host was found: 1 host; DiskFilter removed 1 (needs 500 GiB, best has 100 GiB free)"
    );
}

#[test]
fn over_committed_hosts_report_zero_free() {
    let mut h = host("a");
    h.memory_mb.used = 9000;
    assert_eq!(
        message(&spec(1, 512), &[h]),
        "No valid host was found: 1 host; RamFilter removed 1 (needs 512 MiB, best has 0 MiB free)"
    );
}

#[test]
fn compute_filter_groups_hosts_by_reason_smallest_names_first() {
    let mut hosts = Vec::new();
    for (name, enabled, forced, up) in [
        ("h6", true, false, false),
        ("h1", false, false, true),
        ("h5", true, false, false),
        ("h2", true, true, false),
        ("h4", true, false, false),
        ("h3", true, false, false),
    ] {
        let mut h = host(name);
        h.enabled = enabled;
        h.forced_down = forced;
        h.up = up;
        hosts.push(h);
    }
    assert_eq!(
        message(&spec(1, 512), &hosts),
        "No valid host was found: 6 hosts; ComputeFilter removed 6 \
         (disabled: h1; forced down: h2; down: h3, h4, h5 and 1 more)"
    );
}

#[test]
fn every_filter_in_the_order_it_ran() {
    let mut down = host("h-down");
    down.up = false;
    let failed = host("h-failed");
    let mut elsewhere = host("h-az2");
    elsewhere.availability_zone = "az2".into();
    let small = host_with_ram("h-small", 256);
    let mut arm = host("h-arm");
    arm.cpu_arch = "aarch64".into();
    let member = host("h-member");
    let mut pinned = host("h-pinned");
    pinned.cells[0].pinned = [0].into();
    pinned.cells[1].pinned = [4].into();
    let hosts = [down, failed, elsewhere, small, arm, member, pinned];
    let mut s = with_specs(spec(4, 1024), &[("hw:cpu_policy", "dedicated")]);
    s.availability_zone = Some("nova".into());
    s.ignore_hosts = vec!["h-failed".into()];
    s.image_properties
        .insert("architecture".into(), "x86_64".into());
    let s = in_group(s, GroupPolicy::AntiAffinity, &["h-member"]);
    assert_eq!(
        message(&s, &hosts),
        "No valid host was found: 7 hosts; \
         ComputeFilter removed 1 (down: h-down), \
         RetryFilter removed 1 (already failed this build: h-failed), \
         AvailabilityZoneFilter removed 1 (not in availability zone nova: h-az2), \
         RamFilter removed 1 (needs 1024 MiB, best has 256 MiB free), \
         ImagePropertiesFilter removed 1 (image needs architecture x86_64: h-arm), \
         ServerGroupAntiAffinityFilter removed 1 (anti-affinity: a group member is already on h-member), \
         NUMATopologyFilter removed 1 (needs 4 free CPU(s) to pin in one NUMA cell, best cell has 3: h-pinned)"
    );
}

#[test]
fn numa_reasons_report_the_best_cell_over_hosts() {
    let mut a = host("host-1");
    a.cells[0].pinned = [0, 1].into();
    a.cells[1].pinned = [4, 5].into();
    let mut b = host("host-2");
    b.cells[0].pinned = [0].into();
    b.cells[1].pinned = [4].into();
    let s = with_specs(
        spec(4, 1024),
        &[("hw:cpu_policy", "dedicated"), ("hw:numa_nodes", "1")],
    );
    assert_eq!(
        message(&s, &[a, b]),
        "No valid host was found: 2 hosts; NUMATopologyFilter removed 2 \
         (needs 4 free CPU(s) to pin in one NUMA cell, best cell has 3: host-1, host-2)"
    );
}

#[test]
fn numa_cells_memory_and_pages() {
    let hosts = [host("a")];
    assert_eq!(
        message(
            &with_specs(spec(6, 3072), &[("hw:numa_nodes", "3")]),
            &hosts
        ),
        "No valid host was found: 1 host; NUMATopologyFilter removed 1 (needs 3 NUMA cell(s), best has 2: a)"
    );
    assert_eq!(
        message(
            &with_specs(spec(2, 6000), &[("hw:numa_nodes", "1")]),
            &hosts
        ),
        "No valid host was found: 1 host; NUMATopologyFilter removed 1 \
         (needs 6000 MiB in one NUMA cell, best cell has 4096 MiB free: a)"
    );
    assert_eq!(
        message(
            &with_specs(spec(2, 6000), &[("hw:numa_nodes", "1")]),
            &hosts
        ),
        message(
            &with_specs(spec(2, 6000), &[("hw:mem_page_size", "small")]),
            &hosts
        ),
    );
    assert_eq!(
        message(
            &with_specs(spec(1, 2048), &[("hw:mem_page_size", "2MB")]),
            &hosts
        ),
        "No valid host was found: 1 host; NUMATopologyFilter removed 1 \
         (needs 2048 MiB of 2 MiB pages in one NUMA cell, best cell has 1024 MiB free: a)"
    );
    assert_eq!(
        message(
            &with_specs(spec(1, 4096), &[("hw:mem_page_size", "large")]),
            &hosts
        ),
        "No valid host was found: 1 host; NUMATopologyFilter removed 1 \
         (needs 4096 MiB of huge pages in one NUMA cell, best cell has 2048 MiB free: a)"
    );
    let mut pinned = host("b");
    pinned.cells[0].pinned = [0, 1, 2].into();
    assert_eq!(
        message(
            &with_specs(
                spec(4, 2048),
                &[("hw:numa_nodes", "2"), ("hw:cpu_policy", "dedicated")]
            ),
            &[pinned]
        ),
        "No valid host was found: 1 host; NUMATopologyFilter removed 1 \
         (needs 2 NUMA cell(s) each holding a guest cell's CPUs and memory, best has 1: b)"
    );
}

#[test]
fn numa_reasons_of_different_kinds_are_listed_apart() {
    let mut few = host("few");
    few.cells.truncate(1);
    let mut busy = host("busy");
    busy.cells[0].pinned = [0, 1, 2].into();
    busy.cells[1].pinned = [4, 5].into();
    let s = with_specs(
        spec(4, 2048),
        &[("hw:numa_nodes", "2"), ("hw:cpu_policy", "dedicated")],
    );
    assert_eq!(
        message(&s, &[few, busy]),
        "No valid host was found: 2 hosts; NUMATopologyFilter removed 2 \
         (needs 2 NUMA cell(s), best has 1: few; \
         needs 2 NUMA cell(s) each holding a guest cell's CPUs and memory, best has 1: busy)"
    );
}

#[test]
fn group_image_and_host_requests() {
    let hosts = [host("a"), host("b")];
    assert_eq!(
        message(
            &in_group(spec(1, 512), GroupPolicy::Affinity, &["c"]),
            &hosts
        ),
        "No valid host was found: 2 hosts; ServerGroupAffinityFilter removed 2 \
         (affinity: the group's members are on c)"
    );
    let mut s = spec(1, 512);
    s.image_properties
        .insert("img_hv_type".into(), "xen".into());
    assert_eq!(
        message(&s, &hosts),
        "No valid host was found: 2 hosts; ImagePropertiesFilter removed 2 \
         (image needs hypervisor type xen: a, b)"
    );
    let mut s = spec(1, 512);
    s.availability_zone = Some("nova:c".into());
    assert_eq!(
        message(&s, &hosts),
        "No valid host was found: 2 hosts; AvailabilityZoneFilter removed 2 (not the requested host c)"
    );
}

#[test]
fn invalid_requests_say_which_setting() {
    let s = with_specs(spec(1, 512), &[("hw:cpu_policy", "weird")]);
    assert_eq!(
        message(&s, &[host("a")]),
        "No valid host was found: invalid request: \
         hw:cpu_policy must be 'shared' or 'dedicated', not 'weird'"
    );
    let err = select(&s, &[host("a")], &WeigherConfig::default(), 0).unwrap_err();
    assert_eq!(err.hosts, 1);
    assert!(err.removed.is_empty());
}

#[test]
fn counts_per_filter_and_json() {
    let mut down = host("c");
    down.up = false;
    let err = select(
        &spec(1, 4096),
        &[host_with_ram("a", 100), host_with_ram("b", 200), down],
        &WeigherConfig::default(),
        0,
    )
    .unwrap_err();
    assert_eq!(err.removed_by("ComputeFilter"), 1);
    assert_eq!(err.removed_by("RamFilter"), 2);
    assert_eq!(err.removed_by("NUMATopologyFilter"), 0);
    assert_eq!(
        err.removed[1],
        Removal {
            filter: "RamFilter".into(),
            hosts: 2,
            detail: "needs 4096 MiB, best has 200 MiB free".into()
        }
    );
    let json = serde_json::to_string(&err).unwrap();
    assert_eq!(serde_json::from_str::<NoValidHost>(&json).unwrap(), err);
    assert_eq!(
        NoValidHost::invalid(0, "bad").to_string(),
        "No valid host was found: invalid request: bad"
    );
}
