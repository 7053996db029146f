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
//! separate `cloud-compute` process.

use crate::counters::{cpu_seconds, cpu_seconds_of, rss_mib};
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

/// How long to let memory settle after starting something.
const SETTLE: Duration = Duration::from_secs(2);

fn rss() -> f64 {
    rss_mib("self").map(|r| r.0).unwrap_or(0.0)
}

/// Runs the scenario.
pub async fn run(target: Target, args: &BootArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("resources", target.label());
    args.describe(&mut report);
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
    let cpu0 = cpu_seconds("self").unwrap_or(0.0);
    let pg0 = cpu_seconds_of("postgres");
    let rabbit0 = cpu_seconds_of("beam.smp");
    let figures = boot_and_delete(&plane, &fx, args).await?;
    let cpu = cpu_seconds("self").unwrap_or(0.0) - cpu0;
    let pg = cpu_seconds_of("postgres") - pg0;
    let rabbit = cpu_seconds_of("beam.smp") - rabbit0;
    sampling.cancel();
    let _ = sampler.await;
    let booted = figures["booted"].as_f64().unwrap_or(0.0).max(1.0);

    report.extend(json!({
        "rss_harness_mib": round3(rss_harness),
        "rss_api_idle_mib": round3(rss_api - rss_harness),
        "rss_plane_idle_mib": round3(rss_plane),
        "rss_per_agent_idle_mib": round3((rss_plane - rss_before_plane).max(0.0) / args.hosts.max(1) as f64),
        "rss_peak_during_boot_mib": round3(peak.load(Ordering::Relaxed) as f64 / 1024.0),
        "cpu_s_services": round3(cpu),
        "cpu_s_postgres": round3(pg),
        "cpu_s_rabbitmq": round3(rabbit),
        "cpu_ms_services_per_boot": round3(cpu * 1000.0 / booted),
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
