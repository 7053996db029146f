//! Each filter accepting and rejecting, with the right reason.

use super::*;
use crate::host::Inventory;
use crate::request::GroupSpec;
use crate::testing::{host, spec, with_specs};
use cloud_model::ServerGroupId;

fn check(
    s: &RequestSpec,
    h: &HostState,
    f: fn(&Prepared, &HostState) -> Result<(), Reject>,
) -> Result<(), Reject> {
    f(&Prepared::new(s).unwrap(), h)
}

fn group(policy: GroupPolicy, members: &[&str]) -> Option<GroupSpec> {
    Some(GroupSpec {
        id: ServerGroupId::new(),
        policy,
        member_hosts: members.iter().map(|m| (*m).to_owned()).collect(),
    })
}

#[test]
fn compute_filter_removes_disabled_forced_down_and_down_hosts() {
    let s = spec(1, 512);
    assert_eq!(check(&s, &host("a"), compute_filter), Ok(()));
    let mut h = host("a");
    h.up = false;
    assert_eq!(check(&s, &h, compute_filter), Err(Reject::Down));
    h.forced_down = true;
    assert_eq!(check(&s, &h, compute_filter), Err(Reject::ForcedDown));
    h.enabled = false;
    assert_eq!(check(&s, &h, compute_filter), Err(Reject::Disabled));
}

#[test]
fn retry_filter_skips_hosts_that_failed_this_build() {
    let mut s = spec(1, 512);
    s.ignore_hosts = vec!["b".into()];
    assert_eq!(check(&s, &host("a"), retry_filter), Ok(()));
    assert_eq!(
        check(&s, &host("b"), retry_filter),
        Err(Reject::AlreadyFailed)
    );
}

#[test]
fn availability_zone_filter_checks_zone_and_host() {
    let mut s = spec(1, 512);
    let mut h = host("a");
    h.availability_zone = "az1".into();
    assert_eq!(check(&s, &h, availability_zone_filter), Ok(()), "any zone");
    s.availability_zone = Some("az1".into());
    assert_eq!(check(&s, &h, availability_zone_filter), Ok(()));
    s.availability_zone = Some("az2".into());
    assert_eq!(
        check(&s, &h, availability_zone_filter),
        Err(Reject::OtherZone)
    );
    s.availability_zone = Some("az1:a".into());
    assert_eq!(check(&s, &h, availability_zone_filter), Ok(()));
    s.availability_zone = Some("az1:b".into());
    assert_eq!(
        check(&s, &h, availability_zone_filter),
        Err(Reject::NotRequestedHost)
    );
    s.availability_zone = Some(":a".into());
    assert_eq!(check(&s, &h, availability_zone_filter), Ok(()));
    s.availability_zone = Some("".into());
    assert_eq!(check(&s, &h, availability_zone_filter), Ok(()));
}

#[test]
fn resource_filters_compare_need_with_free() {
    let mut h = host("a");
    h.memory_mb.used = 6144;
    h.vcpu.used = 6;
    h.disk_gb.used = 90;
    let fits = RequestSpec {
        vcpus: 2,
        memory_mb: 2048,
        disk_gb: 10,
        ..RequestSpec::default()
    };
    assert_eq!(check(&fits, &h, ram_filter), Ok(()));
    assert_eq!(check(&fits, &h, core_filter), Ok(()));
    assert_eq!(check(&fits, &h, disk_filter), Ok(()));
    let too_big = RequestSpec {
        vcpus: 3,
        memory_mb: 2049,
        disk_gb: 11,
        ..RequestSpec::default()
    };
    assert_eq!(
        check(&too_big, &h, ram_filter),
        Err(Reject::Short {
            resource: Resource::MemoryMb,
            need: 2049,
            free: 2048
        })
    );
    assert_eq!(
        check(&too_big, &h, core_filter),
        Err(Reject::Short {
            resource: Resource::Vcpu,
            need: 3,
            free: 2
        })
    );
    assert_eq!(
        check(&too_big, &h, disk_filter),
        Err(Reject::Short {
            resource: Resource::DiskGb,
            need: 11,
            free: 10
        })
    );
    // A boot-from-volume server needs no local disk, even on a full host.
    h.disk_gb.used = 100;
    let volume = RequestSpec { disk_gb: 0, ..fits };
    assert_eq!(check(&volume, &h, disk_filter), Ok(()));
}

#[test]
fn resource_filters_honour_ratios_and_reserved() {
    let mut h = host("a");
    h.vcpu = Inventory {
        total: 4,
        reserved: 0,
        allocation_ratio: 16.0,
        used: 60,
    };
    h.memory_mb = Inventory {
        total: 8192,
        reserved: 2048,
        allocation_ratio: 1.5,
        used: 8192,
    };
    h.disk_gb = Inventory {
        total: 100,
        reserved: 10,
        allocation_ratio: 1.0,
        used: 0,
    };
    // vCPU: 4 * 16 = 64, 60 used: 4 free.
    assert_eq!(check(&spec(4, 1), &h, core_filter), Ok(()));
    assert_eq!(
        check(&spec(5, 1), &h, core_filter),
        Err(Reject::Short {
            resource: Resource::Vcpu,
            need: 5,
            free: 4
        })
    );
    // RAM: (8192 - 2048) * 1.5 = 9216, 8192 used: 1024 free.
    assert_eq!(check(&spec(1, 1024), &h, ram_filter), Ok(()));
    assert_eq!(
        check(&spec(1, 1025), &h, ram_filter),
        Err(Reject::Short {
            resource: Resource::MemoryMb,
            need: 1025,
            free: 1024
        })
    );
    // Disk: 100 - 10 reserved = 90.
    let mut big = spec(1, 1);
    big.disk_gb = 91;
    assert_eq!(
        check(&big, &h, disk_filter),
        Err(Reject::Short {
            resource: Resource::DiskGb,
            need: 91,
            free: 90
        })
    );
}

#[test]
fn image_properties_filter_checks_architecture() {
    let mut s = spec(1, 512);
    let h = host("a");
    assert_eq!(check(&s, &h, image_properties_filter), Ok(()));
    for same in ["x86_64", "X86_64", "amd64", "x86-64"] {
        s.image_properties
            .insert("architecture".into(), same.into());
        assert_eq!(check(&s, &h, image_properties_filter), Ok(()), "{same}");
    }
    s.image_properties
        .insert("architecture".into(), "aarch64".into());
    assert_eq!(
        check(&s, &h, image_properties_filter),
        Err(Reject::Architecture)
    );
    let mut arm = host("b");
    arm.cpu_arch = "aarch64".into();
    s.image_properties
        .insert("architecture".into(), "arm64".into());
    assert_eq!(check(&s, &arm, image_properties_filter), Ok(()));
}

#[test]
fn image_properties_filter_checks_hypervisor_type() {
    let h = host("a");
    let mut fake = host("b");
    fake.hypervisor_type = "fake".into();
    let mut s = spec(1, 512);
    for (key, value) in [("hypervisor_type", "qemu"), ("img_hv_type", "kvm")] {
        s.image_properties.clear();
        s.image_properties.insert(key.into(), value.into());
        assert_eq!(
            check(&s, &h, image_properties_filter),
            Ok(()),
            "{key}={value}"
        );
        assert_eq!(
            check(&s, &fake, image_properties_filter),
            Err(Reject::HypervisorType),
            "{key}={value}"
        );
    }
    s.image_properties
        .insert("img_hv_type".into(), "xen".into());
    assert_eq!(
        check(&s, &h, image_properties_filter),
        Err(Reject::HypervisorType)
    );
    // img_hv_type wins over the legacy name.
    s.image_properties
        .insert("hypervisor_type".into(), "xen".into());
    s.image_properties
        .insert("img_hv_type".into(), "QEMU".into());
    assert_eq!(check(&s, &h, image_properties_filter), Ok(()));
}

#[test]
fn anti_affinity_rejects_member_hosts() {
    let mut s = spec(1, 512);
    s.group = group(GroupPolicy::AntiAffinity, &["a", "c"]);
    let f = server_group_anti_affinity_filter;
    assert_eq!(check(&s, &host("a"), f), Err(Reject::GroupMemberThere));
    assert_eq!(check(&s, &host("b"), f), Ok(()));
    assert_eq!(check(&s, &host("c"), f), Err(Reject::GroupMemberThere));
    // Soft anti-affinity is a weigher, not a filter.
    s.group = group(GroupPolicy::SoftAntiAffinity, &["a"]);
    assert_eq!(check(&s, &host("a"), f), Ok(()));
}

#[test]
fn affinity_requires_the_member_host() {
    let mut s = spec(1, 512);
    let f = server_group_affinity_filter;
    s.group = group(GroupPolicy::Affinity, &[]);
    assert_eq!(
        check(&s, &host("a"), f),
        Ok(()),
        "first member goes anywhere"
    );
    assert_eq!(check(&s, &host("b"), f), Ok(()));
    s.group = group(GroupPolicy::Affinity, &["b", "b"]);
    assert_eq!(check(&s, &host("a"), f), Err(Reject::NotWithGroup));
    assert_eq!(check(&s, &host("b"), f), Ok(()));
    s.group = group(GroupPolicy::SoftAffinity, &["b"]);
    assert_eq!(check(&s, &host("a"), f), Ok(()));
    // Affinity does not reject member hosts for anti-affinity's sake.
    s.group = group(GroupPolicy::Affinity, &["b"]);
    assert_eq!(
        check(&s, &host("b"), server_group_anti_affinity_filter),
        Ok(())
    );
}

#[test]
fn numa_filter_returns_the_placement() {
    let p_spec = with_specs(spec(4, 1024), &[("hw:cpu_policy", "dedicated")]);
    let p = Prepared::new(&p_spec).unwrap();
    let mut h = host("a");
    h.cells[0].pinned = [3].into();
    let placement = numa_topology_filter(&p, &h).unwrap().unwrap();
    assert_eq!(placement.cells[0].host_cpus, [4, 5, 6, 7]);
    h.cells[1].pinned = [4].into();
    assert_eq!(
        numa_topology_filter(&p, &h),
        Err(Reject::Numa(NumaReject::PinnableCpus { need: 4, best: 3 }))
    );
    let plain = spec(4, 1024);
    assert_eq!(
        numa_topology_filter(&Prepared::new(&plain).unwrap(), &h),
        Ok(None)
    );
}

#[test]
fn filter_host_reports_the_first_filter_that_removes() {
    let s = with_specs(spec(4, 1024), &[("hw:cpu_policy", "dedicated")]);
    let p = Prepared::new(&s).unwrap();
    let mut h = host("a");
    h.up = false;
    h.memory_mb.used = 8192;
    assert_eq!(
        filter_host(&p, &h),
        Err((FilterKind::Compute, Reject::Down))
    );
    h.up = true;
    assert_eq!(
        filter_host(&p, &h).unwrap_err().0,
        FilterKind::Ram,
        "cheap filters first"
    );
    h.memory_mb.used = 0;
    assert!(filter_host(&p, &h).unwrap().is_some());
    assert_eq!(FilterKind::ALL.len(), 10);
    assert_eq!(FilterKind::ALL[9].name(), "NUMATopologyFilter");
}

#[test]
fn prepared_reads_the_request_once() {
    let mut s = spec(1, 1);
    s.availability_zone = Some("az1:host-1:node".into());
    s.image_properties
        .insert("architecture".into(), "x86_64".into());
    s.image_properties
        .insert("hypervisor_type".into(), "qemu".into());
    s.group = group(GroupPolicy::SoftAffinity, &["b", "a", "b"]);
    let p = Prepared::new(&s).unwrap();
    assert_eq!(p.zone(), Some("az1"));
    assert_eq!(p.forced_host(), Some("host-1"));
    assert_eq!(p.arch(), Some("x86_64"));
    assert_eq!(p.hypervisor(), Some("qemu"));
    assert_eq!(p.members_on("b"), 2);
    assert_eq!(p.members_on("a"), 1);
    assert_eq!(p.members_on("c"), 0);
    assert_eq!(p.member_hosts(), ["a", "b"]);
    let bad = with_specs(spec(1, 1), &[("hw:numa_nodes", "x")]);
    assert!(Prepared::new(&bad).is_err());
}
