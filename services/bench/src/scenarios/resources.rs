//! `resources`: what the control plane costs in memory, CPU, database
//! statements and bus messages while running the `boot` scenario.
//!
//! The services run as tasks of this one process (as in `cloud-aio`), so
//! memory and CPU are measured for the process as a whole from `/proc`,
//! plus the database and broker servers' CPU (every `postgres` and
//! `beam.smp` process on the machine). Idle memory of the API and of a
//! compute agent is estimated from the growth of this process's resident
//! set when they start: the API alone first, then K agents (with one
//! conductor and scheduler) — a figure per in-process agent, not per
//! separate `cloud-compute` process. With `--binaries DIR` the real
//! service binaries are also started, each in its own process, and their
//! idle memory read.

use crate::counters::rss_mib;
use crate::env::{self, Target};
use crate::report::Report;
use crate::scenarios::boot::{BootArgs, boot_and_delete};
use crate::stats::round3;
use cloud_bus::InProcBus;
use cloud_driver_fake::FakeConfig;
use cloud_test_utils::{TestApi, TestDb};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Flags of `resources`.
#[derive(Clone, Debug, clap::Args)]
pub struct ResourcesArgs {
    /// The boot scenario's flags.
    #[command(flatten)]
    pub boot: BootArgs,
    /// Directory with release builds of `cloud-api`, `cloud-conductor`,
    /// `cloud-scheduler` and `cloud-compute`: also measure their idle
    /// memory as separate processes (on PostgreSQL and RabbitMQ).
    #[arg(long)]
    pub binaries: Option<std::path::PathBuf>,
    /// With `--binaries`: also run the boot scenario against the services
    /// as separate processes, with this many `cloud-compute` processes
    /// (0: skip), for each service's CPU time and peak memory.
    #[arg(long, default_value_t = 0)]
    pub process_hosts: usize,
}

/// How long to let memory settle after starting something.
const SETTLE: Duration = Duration::from_secs(2);

fn rss() -> f64 {
    rss_mib("self").map(|r| r.0).unwrap_or(0.0)
}

/// Runs the scenario.
pub async fn run(target: Target, all: &ResourcesArgs) -> anyhow::Result<Report> {
    let args = &all.boot;
    let mut report = Report::new("resources", target.label());
    args.describe(&mut report);
    if let Some(bin) = &all.binaries {
        report.extend(crate::processes::idle_rss(bin).await?);
        if all.process_hosts > 0 {
            let mut a = args.clone();
            a.hosts = all.process_hosts;
            report.param("process_hosts", all.process_hosts);
            report.extend(crate::processes::boot_in_processes(bin, &a).await?);
        }
    }
    let rss_harness = rss();

    // The API alone, idle.
    let api = TestApi::start_full(
        TestDb::new(target.backend).await,
        Arc::new(InProcBus::new()),
        |_| {},
    )
    .await;
    let _ = api.admin().await;
    tokio::time::sleep(SETTLE).await;
    let rss_api = rss();
    drop(api);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The whole plane, idle.
    let rss_before_plane = rss();
    let plane = env::start_plane(target, args.hosts, FakeConfig::default(), 1).await;
    let fx = env::fixtures(&plane).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_plane = rss();

    // The boot scenario, sampled.
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn({
        let peak = peak.clone();
        let stop = sampling.clone();
        async move {
            loop {
                let kib = (rss() * 1024.0) as u64;
                peak.fetch_max(kib, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    });
    let figures = boot_and_delete(&plane.api.db.store, &fx, args).await?;
    sampling.cancel();
    let _ = sampler.await;
    let booted = figures["booted"].as_f64().unwrap_or(0.0).max(1.0);
    let deleted = figures["deleted"].as_f64().unwrap_or(0.0).max(1.0);
    let per = |key: &str, n: f64| round3(figures[key].as_f64().unwrap_or(0.0) * 1000.0 / n);

    report.extend(json!({
        "rss_harness_mib": round3(rss_harness),
        "rss_api_idle_mib": round3(rss_api - rss_harness),
        "rss_plane_idle_mib": round3(rss_plane),
        "rss_per_agent_idle_mib": round3((rss_plane - rss_before_plane).max(0.0) / args.hosts.max(1) as f64),
        "rss_peak_during_boot_mib": round3(peak.load(Ordering::Relaxed) as f64 / 1024.0),
        "boot_cpu_ms_services_per_op": per("boot_cpu_s", booted),
        "boot_cpu_ms_postgres_per_op": per("boot_postgres_cpu_s", booted),
        "boot_cpu_ms_rabbitmq_per_op": per("boot_rabbitmq_cpu_s", booted),
        "delete_cpu_ms_services_per_op": per("delete_cpu_s", deleted),
        "delete_cpu_ms_postgres_per_op": per("delete_postgres_cpu_s", deleted),
        "boot_cpu_s": figures["boot_cpu_s"],
        "boot_postgres_cpu_s": figures["boot_postgres_cpu_s"],
        "boot_rabbitmq_cpu_s": figures["boot_rabbitmq_cpu_s"],
        "boot_wall_s": figures["boot_wall_s"],
        "boots_per_s": figures["boots_per_s"],
        "booted": figures["booted"],
        "boot_db_statements_per_op": figures["boot_db_statements_per_op"],
        "boot_bus_published_per_op": figures["boot_bus_published_per_op"],
        "boot_bus_consumed_per_op": figures["boot_bus_consumed_per_op"],
        "delete_db_statements_per_op": figures["delete_db_statements_per_op"],
        "delete_bus_published_per_op": figures["delete_bus_published_per_op"],
        "idle_db_statements_per_s": figures["idle_db_statements_per_s"],
    }));
    plane.shutdown().await;
    Ok(report)
}
