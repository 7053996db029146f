//! Ranking, alternates, determinism, the random subset and multi-create.

use super::*;
use crate::numa_fit::pinned_cpus;
use crate::request::{GroupPolicy, GroupSpec};
use crate::testing::{host, host_with_ram, spec, with_specs};
use cloud_model::ServerGroupId;

fn names(s: &Selection) -> Vec<&str> {
    s.candidates.iter().map(|c| c.host.as_str()).collect()
}

fn cfg() -> WeigherConfig {
    WeigherConfig::default()
}

#[test]
fn chosen_host_then_alternates_best_first() {
    let hosts = [
        host_with_ram("a", 1024),
        host_with_ram("b", 4096),
        host_with_ram("c", 2048),
        host_with_ram("d", 3072),
    ];
    let s = select(&spec(1, 512), &hosts, &cfg(), 2).unwrap();
    assert_eq!(names(&s), ["b", "d", "c"]);
    assert_eq!(s.chosen().unwrap().host, "b");
    assert_eq!(s.alternates().len(), 2);
    assert!(s.chosen().unwrap().numa.is_none());
    let one = select(&spec(1, 512), &hosts, &cfg(), 0).unwrap();
    assert_eq!(names(&one), ["b"]);
    assert!(one.alternates().is_empty());
    let all = select(&spec(1, 512), &hosts, &cfg(), 10).unwrap();
    assert_eq!(
        names(&all),
        ["b", "d", "c", "a"],
        "no more than the hosts that fit"
    );
}

#[test]
fn spread_or_stack_by_the_ram_multiplier_sign() {
    let hosts = [host_with_ram("a", 2048), host_with_ram("b", 6144)];
    let spread = select(&spec(1, 512), &hosts, &cfg(), 1).unwrap();
    assert_eq!(names(&spread), ["b", "a"]);
    let stack = WeigherConfig {
        ram_weight_multiplier: -1.0,
        ..cfg()
    };
    assert_eq!(
        names(&select(&spec(1, 512), &hosts, &stack, 1).unwrap()),
        ["a", "b"]
    );
}

#[test]
fn a_failing_host_goes_last() {
    let mut bad = host("a");
    bad.recent_failures = 3;
    let hosts = [bad, host_with_ram("b", 1024), host_with_ram("c", 512)];
    let s = select(&spec(1, 256), &hosts, &cfg(), 2).unwrap();
    assert_eq!(names(&s), ["b", "c", "a"]);
    // Still used when it is the only host that fits.
    let s = select(&spec(1, 2048), &hosts, &cfg(), 2).unwrap();
    assert_eq!(names(&s), ["a"]);
}

#[test]
fn ties_go_to_the_smaller_name_whatever_the_input_order() {
    let hosts = vec![host("c"), host("a"), host("d"), host("b")];
    let s = select(&spec(1, 512), &hosts, &cfg(), 3).unwrap();
    assert_eq!(names(&s), ["a", "b", "c", "d"]);
}

#[test]
fn the_same_input_in_any_order_gives_the_same_selection() {
    let mut hosts: Vec<HostState> = (0..40)
        .map(|i| {
            let mut h = host_with_ram(&format!("host-{i:02}"), 512 + (i * 37 % 11) * 256);
            h.vcpu.used = i % 5;
            h.recent_failures = u32::from(i % 13 == 0);
            h
        })
        .collect();
    let s = with_specs(spec(2, 1024), &[("hw:numa_nodes", "1")]);
    let first = select(&s, &hosts, &cfg(), 5).unwrap();
    for round in 0..10 {
        hosts.reverse();
        hosts.rotate_left(round * 7 % 40);
        assert_eq!(
            select(&s, &hosts, &cfg(), 5).unwrap(),
            first,
            "round {round}"
        );
    }
    assert!(first.candidates.iter().all(|c| c.numa.is_some()));
}

#[test]
fn host_subset_size_picks_among_the_best_from_the_seed() {
    let hosts: Vec<HostState> = (0..10)
        .map(|i| host_with_ram(&format!("h{i}"), 1024 + i * 512))
        .collect();
    let subset = WeigherConfig {
        host_subset_size: 3,
        ..cfg()
    };
    let mut s = spec(1, 256);
    let mut picked = std::collections::BTreeSet::new();
    for seed in 0..64 {
        s.seed = seed;
        let sel = select(&s, &hosts, &subset, 2).unwrap();
        let chosen = sel.chosen().unwrap().host.clone();
        assert!(["h9", "h8", "h7"].contains(&chosen.as_str()), "{chosen}");
        assert_eq!(sel.candidates.len(), 3);
        let rest: Vec<&str> = names(&sel)[1..].to_vec();
        let mut expected: Vec<&str> = ["h9", "h8", "h7", "h6"]
            .into_iter()
            .filter(|h| *h != chosen)
            .collect();
        expected.truncate(2);
        assert_eq!(rest, expected, "alternates keep the ranking");
        assert_eq!(
            select(&s, &hosts, &subset, 2).unwrap(),
            sel,
            "same seed, same pick"
        );
        picked.insert(chosen);
    }
    assert_eq!(
        picked.len(),
        3,
        "every host of the subset gets picked: {picked:?}"
    );
    // Subset size 1 ignores the seed.
    for seed in [1, 2, 3] {
        s.seed = seed;
        assert_eq!(
            select(&s, &hosts, &cfg(), 0)
                .unwrap()
                .chosen()
                .unwrap()
                .host,
            "h9"
        );
    }
}

#[test]
fn numa_placement_comes_with_each_candidate() {
    let mut a = host("a");
    a.cells[0].pinned = [0].into();
    let mut b = host("b");
    b.cells[0].pinned = [0].into();
    b.cells[1].pinned = [4].into();
    let s = with_specs(
        spec(4, 1024),
        &[("hw:cpu_policy", "dedicated"), ("hw:numa_nodes", "1")],
    );
    let sel = select(&s, &[b.clone(), a], &cfg(), 3).unwrap();
    assert_eq!(names(&sel), ["a"], "b has 3 free CPUs per cell");
    let numa = sel.chosen().unwrap().numa.as_ref().unwrap();
    assert_eq!(numa.cells[0].host_cell, 1);
    assert_eq!(pinned_cpus(numa), [4, 5, 6, 7]);
    let err = select(&s, &[b], &cfg(), 3).unwrap_err();
    assert_eq!(err.removed_by("NUMATopologyFilter"), 1);
}

#[test]
fn select_all_spreads_an_anti_affinity_group() {
    let hosts = [host("a"), host("b"), host("c")];
    let mut s = spec(1, 512);
    s.num_instances = 3;
    s.group = Some(GroupSpec {
        id: ServerGroupId::new(),
        policy: GroupPolicy::AntiAffinity,
        member_hosts: Vec::new(),
    });
    let all = select_all(&s, &hosts, &cfg(), 1).unwrap();
    let chosen: Vec<&str> = all
        .iter()
        .map(|s| s.chosen().unwrap().host.as_str())
        .collect();
    assert_eq!(chosen, ["a", "b", "c"]);
    assert_eq!(names(&all[2]), ["c"], "no alternate left for the last one");
    s.num_instances = 4;
    let err = select_all(&s, &hosts, &cfg(), 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "No valid host was found: 3 hosts; ServerGroupAntiAffinityFilter removed 3 \
         (anti-affinity: a group member is already on a, b, c)"
    );
}

#[test]
fn select_all_keeps_an_affinity_group_together_and_consumes_capacity() {
    let hosts = [host_with_ram("a", 2048), host_with_ram("b", 3072)];
    let mut s = spec(1, 1024);
    s.num_instances = 3;
    s.group = Some(GroupSpec {
        id: ServerGroupId::new(),
        policy: GroupPolicy::Affinity,
        member_hosts: Vec::new(),
    });
    let all = select_all(&s, &hosts, &cfg(), 0).unwrap();
    let chosen: Vec<&str> = all
        .iter()
        .map(|s| s.chosen().unwrap().host.as_str())
        .collect();
    assert_eq!(chosen, ["b", "b", "b"]);
    s.num_instances = 4;
    let err = select_all(&s, &hosts, &cfg(), 0).unwrap_err();
    assert_eq!(err.removed_by("RamFilter"), 1, "{err}");
    assert_eq!(err.removed_by("ServerGroupAffinityFilter"), 1, "{err}");
    // Without a group, capacity alone spreads them.
    s.group = None;
    s.num_instances = 5;
    let all = select_all(&s, &hosts, &cfg(), 0).unwrap();
    let chosen: Vec<&str> = all
        .iter()
        .map(|s| s.chosen().unwrap().host.as_str())
        .collect();
    assert_eq!(chosen, ["b", "a", "b", "a", "b"]);
    s.num_instances = 6;
    assert!(select_all(&s, &hosts, &cfg(), 0).is_err());
}

#[test]
fn select_all_never_pins_a_cpu_twice() {
    let hosts = [host("a")];
    let mut s = with_specs(spec(2, 512), &[("hw:cpu_policy", "dedicated")]);
    s.num_instances = 4;
    let all = select_all(&s, &hosts, &cfg(), 0).unwrap();
    let mut pinned: Vec<u32> = all
        .iter()
        .flat_map(|s| pinned_cpus(s.chosen().unwrap().numa.as_ref().unwrap()))
        .collect();
    pinned.sort_unstable();
    assert_eq!(pinned, [0, 1, 2, 3, 4, 5, 6, 7]);
    s.num_instances = 5;
    let err = select_all(&s, &hosts, &cfg(), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "No valid host was found: 1 host; CoreFilter removed 1 (needs 2 vCPU(s), best has 0 vCPU(s) free)"
    );
}

#[test]
fn ten_thousand_hosts() {
    let hosts: Vec<HostState> = (0..10_000)
        .map(|i| {
            let mut h = host_with_ram(&format!("host-{i:05}"), 512 + (i * 7919 % 7000));
            h.up = i % 10 != 0;
            h
        })
        .collect();
    let s = select(&spec(1, 4096), &hosts, &cfg(), 3).unwrap();
    assert_eq!(s.candidates.len(), 4);
    let best = s.chosen().unwrap();
    let max_free = hosts
        .iter()
        .filter(|h| h.up)
        .map(|h| h.memory_mb.free())
        .max()
        .unwrap();
    let best_host = hosts.iter().find(|h| h.host == best.host).unwrap();
    assert_eq!(best_host.memory_mb.free(), max_free);
    let err = select(&spec(1, 9000), &hosts, &cfg(), 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "No valid host was found: 10000 hosts; \
         ComputeFilter removed 1000 (down: host-00000, host-00010, host-00020 and 997 more), \
         RamFilter removed 9000 (needs 9000 MiB, best has 7511 MiB free)"
    );
}

#[test]
fn selections_travel_as_json() {
    let s = with_specs(spec(2, 512), &[("hw:cpu_policy", "dedicated")]);
    let sel = select(&s, &[host("a"), host("b")], &cfg(), 1).unwrap();
    let json = serde_json::to_string(&sel).unwrap();
    assert_eq!(serde_json::from_str::<Selection>(&json).unwrap(), sel);
}
