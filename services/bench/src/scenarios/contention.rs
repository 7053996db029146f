//! `contention`: more concurrent boots than there is capacity left, with
//! two scheduler replicas racing for it. Afterwards every host's usage
//! in the store is checked against its capacity (and against the VMs its
//! fake hypervisor really runs): an over-allocation is a bug, the figure
//! must be 0.

use crate::env::{self, SMALL, Target};
use crate::report::Report;
use crate::stats::round3;
use crate::watch::{Want, Watcher};
use cloud_driver_fake::FakeConfig;
use cloud_model::instance::VmState;
use cloud_model::{InstanceId, Timestamp};
use cloud_test_utils::boot;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Flags of `contention`.
#[derive(Clone, Debug, clap::Args)]
pub struct ContentionArgs {
    /// Simulated compute hosts.
    #[arg(long, default_value_t = 10)]
    pub hosts: usize,
    /// vCPUs per host (each server takes one): the capacity is
    /// hosts x vcpus.
    #[arg(long, default_value_t = 40)]
    pub vcpus: u32,
    /// Boots sent at once.
    #[arg(long, default_value_t = 500)]
    pub servers: usize,
    /// Scheduler replicas.
    #[arg(long, default_value_t = 2)]
    pub schedulers: usize,
}

/// Runs the scenario.
pub async fn run(target: Target, args: &ContentionArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("contention", target.label());
    report.param("hosts", args.hosts);
    report.param("vcpus", args.vcpus);
    report.param("servers", args.servers);
    report.param("schedulers", args.schedulers);
    let host = FakeConfig {
        vcpus: args.vcpus,
        memory_mb: 1024 * u64::from(args.vcpus) * 4,
        ..FakeConfig::default()
    };
    let plane = env::start_plane(target, args.hosts, host, args.schedulers).await;
    let fx = env::fixtures(&plane).await?;
    let store = plane.api.db.store.clone();
    let watcher = Watcher::start(store.clone(), Duration::from_millis(20));
    let client = &fx.admin.client;
    let since = Timestamp::now();
    let started = Instant::now();
    let outcomes = futures::future::join_all((0..args.servers).map(|i| {
        let watcher = &watcher;
        let image = fx.image.clone();
        async move {
            let r = boot(client, &format!("race-{i}"), SMALL, &image, json!({})).await;
            let id = r.body["server"]["id"]
                .as_str()
                .and_then(InstanceId::parse)?;
            let rx = watcher.wait(id, Want::Settled, since);
            tokio::time::timeout(Duration::from_secs(300), rx)
                .await
                .ok()?
                .ok()
        }
    }))
    .await;
    let wall = started.elapsed().as_secs_f64();
    let active = outcomes
        .iter()
        .flatten()
        .filter(|i| i.vm_state == VmState::Active)
        .count();
    let error = outcomes
        .iter()
        .flatten()
        .filter(|i| i.vm_state == VmState::Error)
        .count();
    let no_valid_host = outcomes
        .iter()
        .flatten()
        .filter(|i| {
            i.fault
                .as_ref()
                .is_some_and(|f| f.message.starts_with("No valid host"))
        })
        .count();
    let unsettled = outcomes.iter().filter(|o| o.is_none()).count();

    // The invariant: no host holds more than its capacity, in the store
    // and on the (fake) hypervisor.
    let mut over = 0;
    let mut used_total = 0;
    let mut capacity_total = 0;
    for node in store.compute_nodes().await? {
        let vms = plane.driver(&node.host).vm_count() as i64;
        for (class, inv) in [
            ("VCPU", &node.vcpu),
            ("MEMORY_MB", &node.memory_mb),
            ("DISK_GB", &node.disk_gb),
        ] {
            if inv.used > inv.capacity() {
                over += 1;
                tracing::error!(host = %node.host, class, used = inv.used, capacity = inv.capacity(), "over-allocated");
            }
        }
        if vms > node.vcpu.capacity() {
            over += 1;
            tracing::error!(host = %node.host, vms, "more VMs than vCPUs");
        }
        used_total += node.vcpu.used;
        capacity_total += node.vcpu.capacity();
    }
    let retried: u64 = plane
        .schedulers()
        .iter()
        .map(|s| s.stats().claims_retried.load(Ordering::Relaxed))
        .sum();
    let nvh: u64 = plane
        .schedulers()
        .iter()
        .map(|s| s.stats().no_valid_host.load(Ordering::Relaxed))
        .sum();
    report.extend(json!({
        "capacity": capacity_total,
        "active": active,
        "error": error,
        "error_no_valid_host": no_valid_host,
        "unsettled": unsettled,
        "vcpus_used": used_total,
        "over_allocations": over,
        "claims_retried": retried,
        "scheduler_no_valid_host": nvh,
        "wall_s": round3(wall),
    }));
    drop(watcher);
    plane.shutdown().await;
    Ok(report)
}
