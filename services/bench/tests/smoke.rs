//! Runs every scenario at tiny sizes on the embedded backend and checks
//! the JSON summary, so the harness cannot rot. No timing is asserted.

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("summary.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cloud-bench"))
        .arg("--embedded")
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .expect("cloud-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cloud-bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary file")).expect("JSON");
    let last: Value =
        serde_json::from_str(stdout.lines().last().expect("output")).expect("JSON line");
    assert_eq!(file, last, "the file and the last line agree");
    assert_eq!(file["backend"], "sqlite+inproc");
    file
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn boot_boots_and_deletes_every_server() {
    let s = bench(&[
        "boot",
        "--hosts",
        "2",
        "--servers",
        "4",
        "--concurrency",
        "2",
    ]);
    let r = &s["results"];
    assert_eq!(s["scenario"], "boot");
    assert_eq!(num(r, "booted"), 4.0);
    assert_eq!(num(r, "active"), 4.0);
    assert_eq!(num(r, "deleted"), 4.0);
    for key in [
        "boots_per_s",
        "deletes_per_s",
        "tta_p50_ms",
        "tta_p95_ms",
        "tta_p99_ms",
    ] {
        assert!(num(r, key) > 0.0, "{key}: {r}");
    }
    assert!(num(r, "boot_db_statements_per_op") > 0.0, "{r}");
    assert!(num(r, "boot_bus_published_per_op") > 0.0, "{r}");
}

#[test]
fn scheduler_measures_every_host_count_and_flavor() {
    let s = bench(&["scheduler", "--hosts", "3,6", "--iterations", "3"]);
    let cases = s["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4, "{s}");
    for c in cases {
        for key in [
            "service_p50_ms",
            "service_p99_ms",
            "core_p99_ms",
            "hosts_x",
            "service_p99_x",
        ] {
            assert!(num(c, key) >= 0.0, "{key}: {c}");
        }
    }
    assert_eq!(num(&cases[3], "hosts_x"), 2.0);
}

#[test]
fn list_lists_every_seeded_server() {
    let s = bench(&[
        "list",
        "--servers",
        "5,12",
        "--page",
        "5",
        "--iterations",
        "2",
    ]);
    let cases = s["cases"].as_array().expect("cases");
    assert_eq!(num(&cases[0], "listed"), 5.0);
    assert_eq!(num(&cases[1], "listed"), 12.0);
    assert!(num(&cases[1], "page_p50_ms") > 0.0);
}

#[test]
fn contention_never_over_allocates() {
    let s = bench(&[
        "contention",
        "--hosts",
        "2",
        "--vcpus",
        "3",
        "--servers",
        "8",
    ]);
    let r = &s["results"];
    assert_eq!(num(r, "over_allocations"), 0.0, "{r}");
    assert_eq!(num(r, "active"), 6.0, "{r}");
    assert_eq!(num(r, "error"), 2.0, "{r}");
    assert_eq!(num(r, "unsettled"), 0.0, "{r}");
}

#[test]
fn resources_reports_memory_cpu_and_counts() {
    let s = bench(&[
        "resources",
        "--hosts",
        "2",
        "--servers",
        "3",
        "--concurrency",
        "1",
    ]);
    let r = &s["results"];
    assert_eq!(num(r, "booted"), 3.0);
    for key in [
        "rss_peak_during_boot_mib",
        "rss_plane_idle_mib",
        "boot_db_statements_per_op",
    ] {
        assert!(num(r, key) > 0.0, "{key}: {r}");
    }
}

/// Needs root (namespace hosts); fails under `CI=true` without it. iperf3
/// must be installed (the scenario fails naming it).
#[test]
fn dataplane_times_rules_forwarding_entries_and_throughput() {
    if !cloud_test_utils::netbed::netbed_available() {
        return;
    }
    let s = bench(&[
        "dataplane",
        "--rules",
        "2",
        "--tcp-samples",
        "1",
        "--hosts",
        "2",
        "--repeats",
        "1",
        "--iperf-secs",
        "1",
        "--iperf-runs",
        "1",
    ]);
    let r = &s["results"];
    assert_eq!(s["scenario"], "dataplane");
    assert_eq!(num(r, "rules_created"), 2.0, "{r}");
    assert_eq!(num(r, "tcp_samples"), 1.0, "{r}");
    assert_eq!(num(r, "fdb_kernel_verified_hosts"), 1.0, "{r}");
    for key in [
        "rule_applied_all_p50_ms",
        "rule_tcp_p50_ms",
        "rule_apply_p50_ms",
        "fdb_converged_p50_ms",
        "fdb_pulls_per_boot",
        "tcp_cross_host_gbps",
        "tcp_same_host_gbps",
        "tcp_cross_host_no_port_security_gbps",
        "tcp_same_host_no_port_security_gbps",
    ] {
        assert!(num(r, key) > 0.0, "{key}: {r}");
    }
}
