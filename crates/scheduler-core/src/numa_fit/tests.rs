//! NUMA fitting: pinning, splitting, huge pages, and the reasons given.

use super::*;
use crate::testing::{host, spec, with_specs};

fn req(vcpus: i64, ram: i64, specs: &[(&str, &str)]) -> NumaRequest {
    NumaRequest::from_spec(&with_specs(spec(vcpus, ram), specs))
        .unwrap()
        .unwrap()
}

const PINNED_1_NODE: &[(&str, &str)] = &[("hw:cpu_policy", "dedicated"), ("hw:numa_nodes", "1")];

#[test]
fn dedicated_fits_only_the_cell_with_enough_free_cpus() {
    let mut h = host("a");
    h.cells[0].pinned = [1].into();
    let p = fit_numa(&req(4, 1024, PINNED_1_NODE), &h).unwrap();
    assert_eq!(p.cells.len(), 1);
    assert_eq!(p.cells[0].host_cell, 1);
    assert_eq!(p.cells[0].guest_cpus, [0, 1, 2, 3]);
    assert_eq!(p.cells[0].host_cpus, [4, 5, 6, 7]);
    assert_eq!(p.cells[0].memory_mb, 1024);
    assert_eq!(p.page_size_kb, None);
    // Mirror image: the free cell is cell 0.
    let mut h = host("a");
    h.cells[1].pinned = [6].into();
    let p = fit_numa(&req(4, 1024, PINNED_1_NODE), &h).unwrap();
    assert_eq!(p.cells[0].host_cell, 0);
    assert_eq!(p.cells[0].host_cpus, [0, 1, 2, 3]);
}

#[test]
fn dedicated_pins_exactly_the_free_cpus() {
    let mut h = host("a");
    h.cells[0].pinned = [0, 2].into();
    let p = fit_numa(&req(2, 512, PINNED_1_NODE), &h).unwrap();
    assert_eq!(p.cells[0].host_cell, 0);
    assert_eq!(p.cells[0].host_cpus, [1, 3]);
    assert_eq!(pinned_cpus(&p), [1, 3]);
}

#[test]
fn dedicated_does_not_fit_when_each_cell_has_three_free() {
    let mut h = host("a");
    h.cells[0].pinned = [0].into();
    h.cells[1].pinned = [7].into();
    assert_eq!(
        fit_numa(&req(4, 1024, PINNED_1_NODE), &h),
        Err(NumaReject::PinnableCpus { need: 4, best: 3 })
    );
    // Dedicated alone means one guest cell.
    assert_eq!(
        fit_numa(&req(4, 1024, &[("hw:cpu_policy", "dedicated")]), &h),
        Err(NumaReject::PinnableCpus { need: 4, best: 3 })
    );
}

#[test]
fn shared_cpus_are_not_pinned() {
    let mut h = host("a");
    h.cells[0].pinned = [0, 1, 2, 3].into();
    let p = fit_numa(&req(4, 1024, &[("hw:numa_nodes", "1")]), &h).unwrap();
    assert_eq!(p.cells[0].host_cell, 0, "pinning by others does not matter");
    assert!(p.cells[0].host_cpus.is_empty());
    assert!(pinned_cpus(&p).is_empty());
    assert_eq!(
        fit_numa(&req(6, 1024, &[("hw:numa_nodes", "1")]), &h),
        Err(NumaReject::CellCpus { need: 6, best: 4 })
    );
}

#[test]
fn numa_nodes_two_splits_over_both_cells() {
    let h = host("a");
    let p = fit_numa(&req(4, 2048, &[("hw:numa_nodes", "2")]), &h).unwrap();
    assert_eq!(p.cells.len(), 2);
    assert_eq!((p.cells[0].guest_cell, p.cells[0].host_cell), (0, 0));
    assert_eq!((p.cells[1].guest_cell, p.cells[1].host_cell), (1, 1));
    assert_eq!(p.cells[0].guest_cpus, [0, 1]);
    assert_eq!(p.cells[1].guest_cpus, [2, 3]);
    assert_eq!(p.cells[0].memory_mb, 1024);
    assert_eq!(p.cells[1].memory_mb, 1024);
    // Pinned and split: two CPUs in each cell.
    let p = fit_numa(
        &req(
            4,
            2048,
            &[("hw:numa_nodes", "2"), ("hw:cpu_policy", "dedicated")],
        ),
        &h,
    )
    .unwrap();
    assert_eq!(p.cells[0].host_cpus, [0, 1]);
    assert_eq!(p.cells[1].host_cpus, [4, 5]);
    assert_eq!(pinned_cpus(&p), [0, 1, 4, 5]);
}

#[test]
fn split_needs_distinct_cells() {
    let mut h = host("a");
    h.cells[0].pinned = [0, 1, 2].into();
    // Each guest cell fits cell 1 alone, but they cannot share it.
    assert_eq!(
        fit_numa(
            &req(
                4,
                2048,
                &[("hw:numa_nodes", "2"), ("hw:cpu_policy", "dedicated")]
            ),
            &h
        ),
        Err(NumaReject::Combination { need: 2, fit: 1 })
    );
    assert_eq!(
        fit_numa(&req(6, 3072, &[("hw:numa_nodes", "3")]), &h),
        Err(NumaReject::Cells { need: 3, have: 2 })
    );
    let mut bare = host("b");
    bare.cells.clear();
    assert_eq!(
        fit_numa(&req(2, 512, PINNED_1_NODE), &bare),
        Err(NumaReject::Cells { need: 1, have: 0 })
    );
}

#[test]
fn asymmetric_cells_are_matched_not_just_greedily_placed() {
    let mut h = host("a");
    h.cells[1].pinned = [4, 5].into();
    // Guest cell 0 (1 vCPU) fits both host cells, guest cell 1 (3 vCPUs)
    // only cell 0: a greedy first fit would fail.
    let r = req(
        4,
        2048,
        &[
            ("hw:cpu_policy", "dedicated"),
            ("hw:numa_nodes", "2"),
            ("hw:numa_cpus.0", "0"),
            ("hw:numa_cpus.1", "1-3"),
            ("hw:numa_mem.0", "512"),
            ("hw:numa_mem.1", "1536"),
        ],
    );
    let p = fit_numa(&r, &h).unwrap();
    assert_eq!(p.cells[0].host_cell, 1);
    assert_eq!(p.cells[0].host_cpus, [6]);
    assert_eq!(p.cells[0].memory_mb, 512);
    assert_eq!(p.cells[1].host_cell, 0);
    assert_eq!(p.cells[1].guest_cpus, [1, 2, 3]);
    assert_eq!(p.cells[1].host_cpus, [0, 1, 2]);
    assert_eq!(p.cells[1].memory_mb, 1536);
}

#[test]
fn small_page_memory_per_cell() {
    let mut h = host("a");
    assert_eq!(
        fit_numa(&req(2, 5000, &[("hw:numa_nodes", "1")]), &h),
        Err(NumaReject::Memory {
            need_mb: 5000,
            best_mb: 4096
        })
    );
    h.cells[0].memory_used_mb = 3072;
    let p = fit_numa(&req(2, 2048, &[("hw:numa_nodes", "1")]), &h).unwrap();
    assert_eq!(p.cells[0].host_cell, 1, "cell 0 has only 1024 MiB left");
}

#[test]
fn cpus_in_one_cell_and_memory_in_the_other_do_not_combine() {
    let mut h = host("a");
    h.cells[0].memory_used_mb = 4096;
    h.cells[1].pinned = [4, 5, 6, 7].into();
    assert_eq!(
        fit_numa(&req(2, 1024, PINNED_1_NODE), &h),
        Err(NumaReject::Combination { need: 1, fit: 0 })
    );
}

#[test]
fn explicit_huge_page_sizes() {
    let mut h = host("a");
    let p = fit_numa(&req(1, 512, &[("hw:mem_page_size", "2MB")]), &h).unwrap();
    assert_eq!(p.page_size_kb, Some(2048));
    assert_eq!(p.cells[0].host_cell, 0, "only cell 0 has 2 MiB pages");
    assert_eq!(hugepages_used(&p), [(0, 2048, 256)]);
    let p = fit_numa(&req(1, 1024, &[("hw:mem_page_size", "1048576")]), &h).unwrap();
    assert_eq!(p.page_size_kb, Some(1_048_576));
    assert_eq!(p.cells[0].host_cell, 1);
    assert_eq!(hugepages_used(&p), [(1, 1_048_576, 1)]);
    // 2048 MiB of 2 MiB pages: cell 0 has 1024 MiB of them.
    assert_eq!(
        fit_numa(&req(1, 2048, &[("hw:mem_page_size", "2048")]), &h),
        Err(NumaReject::HugePages {
            page_kb: Some(2048),
            need_mb: 2048,
            best_mb: 1024
        })
    );
    h.cells[0].hugepages[0].2 = 384;
    assert_eq!(
        fit_numa(&req(1, 512, &[("hw:mem_page_size", "2MB")]), &h),
        Err(NumaReject::HugePages {
            page_kb: Some(2048),
            need_mb: 512,
            best_mb: 256
        }),
        "used pages are not free"
    );
}

#[test]
fn large_and_any_page_sizes() {
    let h = host("a");
    let p = fit_numa(&req(1, 1536, &[("hw:mem_page_size", "large")]), &h).unwrap();
    assert_eq!(p.page_size_kb, Some(1_048_576), "largest size first");
    assert_eq!(hugepages_used(&p), [(1, 1_048_576, 2)]);
    let p = fit_numa(&req(1, 512, &[("hw:mem_page_size", "large")]), &h).unwrap();
    assert_eq!(p.page_size_kb, Some(1_048_576));
    assert_eq!(
        fit_numa(&req(1, 3072, &[("hw:mem_page_size", "large")]), &h),
        Err(NumaReject::HugePages {
            page_kb: None,
            need_mb: 3072,
            best_mb: 2048
        })
    );
    // `any` falls back to small pages.
    let p = fit_numa(&req(1, 3072, &[("hw:mem_page_size", "any")]), &h).unwrap();
    assert_eq!(p.page_size_kb, None);
    assert_eq!(
        fit_numa(&req(1, 5000, &[("hw:mem_page_size", "any")]), &h),
        Err(NumaReject::Memory {
            need_mb: 5000,
            best_mb: 4096
        })
    );
    let mut none = host("b");
    for c in &mut none.cells {
        c.hugepages.clear();
    }
    assert_eq!(
        fit_numa(&req(1, 512, &[("hw:mem_page_size", "large")]), &none),
        Err(NumaReject::HugePages {
            page_kb: None,
            need_mb: 512,
            best_mb: 0
        })
    );
    // CPUs free in one cell and pages in the other do not combine.
    let mut pinned = host("c");
    pinned.cells[1].pinned = [4, 5, 6].into();
    assert_eq!(
        fit_numa(
            &req(
                2,
                1024,
                &[("hw:mem_page_size", "1GB"), ("hw:cpu_policy", "dedicated")]
            ),
            &pinned
        ),
        Err(NumaReject::Combination { need: 1, fit: 0 })
    );
}

#[test]
fn rejection_kinds_drop_the_host_amount() {
    let r = NumaReject::PinnableCpus { need: 4, best: 3 };
    assert_eq!(r.kind(), NumaReject::PinnableCpus { need: 4, best: 0 });
    assert_eq!(r.best(), 3);
    let m = NumaReject::HugePages {
        page_kb: Some(2048),
        need_mb: 10,
        best_mb: 7,
    };
    assert_eq!(m.best(), 7);
    assert_eq!(m.kind().best(), 0);
}
