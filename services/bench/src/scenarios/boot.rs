//! `boot`: N servers booted through the API at concurrency C until
//! ACTIVE, then deleted: throughput of both phases and time-to-ACTIVE.

use crate::counters::{Reading, idle_rates};
use crate::env::{self, Fixtures, SMALL, Target};
use crate::report::Report;
use crate::stats::{Samples, round3};
use crate::watch::{Want, Watcher};
use cloud_driver_fake::FakeConfig;
use cloud_model::instance::VmState;
use cloud_model::{InstanceId, Timestamp};
use cloud_store::Store;
use cloud_test_utils::{Client, boot};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long one server may take to settle before it counts as timed out.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Flags of `boot` (and of `resources`, which runs it).
#[derive(Clone, Debug, clap::Args)]
pub struct BootArgs {
    /// Simulated compute hosts.
    #[arg(long, default_value_t = 1000)]
    pub hosts: usize,
    /// Servers to boot.
    #[arg(long, default_value_t = 1000)]
    pub servers: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// How often the watcher looks for settled servers, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// Seconds of idleness measured before booting, to net the
    /// background work (heartbeats every 5 s, power syncs every 30 s, in
    /// step across hosts started together) out of the per-boot counts.
    #[arg(long, default_value_t = 30.0)]
    pub idle_secs: f64,
}

impl BootArgs {
    /// Records the flags in `report`.
    pub fn describe(&self, report: &mut Report) {
        report.param("hosts", self.hosts);
        report.param("servers", self.servers);
        report.param("concurrency", self.concurrency);
        report.param("poll_ms", self.poll_ms);
        report.param("idle_secs", self.idle_secs);
    }
}

/// Runs the scenario.
pub async fn run(target: Target, args: &BootArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("boot", target.label());
    args.describe(&mut report);
    let plane = env::start_plane(target, args.hosts, FakeConfig::default(), 1).await;
    let fx = env::fixtures(&plane).await?;
    let figures = boot_and_delete(&plane.api.db.store, &fx, args).await?;
    report.extend(figures);
    plane.shutdown().await;
    Ok(report)
}

struct Booted {
    id: InstanceId,
    active: bool,
}

/// Boots `args.servers` servers and deletes them again; returns the
/// figures of both phases.
pub async fn boot_and_delete(
    store: &Store,
    fx: &Fixtures,
    args: &BootArgs,
) -> anyhow::Result<Value> {
    let store = store.clone();
    let watcher = Watcher::start(store, Duration::from_millis(args.poll_ms.max(1)));
    let client = &fx.admin.client;
    // Background work (heartbeats, reconcilers) per second, to net out of
    // the per-boot counts.
    let idle = idle_rates(Duration::from_secs_f64(args.idle_secs.max(0.0))).await;

    // Boot phase.
    let next = AtomicUsize::new(0);
    let booted: Mutex<Vec<Booted>> = Mutex::new(Vec::new());
    let tta = Mutex::new(Samples::new());
    let seen = Mutex::new(Samples::new());
    let rejected = AtomicUsize::new(0);
    let timed_out = AtomicUsize::new(0);
    let before = Reading::now();
    let started = Instant::now();
    futures::future::join_all((0..args.concurrency.max(1)).map(|_| async {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= args.servers {
                return;
            }
            let since = Timestamp::now();
            let t0 = Instant::now();
            let Some(id) = post_server(client, i, &fx.image).await else {
                rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let rx = watcher.wait(id, Want::Settled, since);
            let Ok(Ok(inst)) = tokio::time::timeout(SETTLE_TIMEOUT, rx).await else {
                timed_out.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            seen.lock().expect("lock").push(t0.elapsed());
            let active = inst.vm_state == VmState::Active;
            if let Some(at) = inst.launched_at.filter(|_| active) {
                tta.lock()
                    .expect("lock")
                    .push_ms((at.micros() - since.micros()) as f64 / 1000.0);
            }
            booted.lock().expect("lock").push(Booted { id, active });
        }
    }))
    .await;
    let boot_s = started.elapsed().as_secs_f64();
    let after_boot = Reading::now();
    let booted = booted.into_inner().expect("lock");
    let active = booted.iter().filter(|b| b.active).count();

    // Delete phase.
    let next = AtomicUsize::new(0);
    let deleted = AtomicUsize::new(0);
    let delete_lat = Mutex::new(Samples::new());
    let started = Instant::now();
    futures::future::join_all((0..args.concurrency.max(1)).map(|_| async {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(b) = booted.get(i) else { return };
            let since = Timestamp::now();
            let t0 = Instant::now();
            let r = client
                .delete(&format!("/compute/v2.1/servers/{}", b.id))
                .await;
            if r.status != 204 {
                continue;
            }
            let rx = watcher.wait(b.id, Want::Gone, since);
            if let Ok(Ok(_)) = tokio::time::timeout(SETTLE_TIMEOUT, rx).await {
                deleted.fetch_add(1, Ordering::Relaxed);
                delete_lat.lock().expect("lock").push(t0.elapsed());
            }
        }
    }))
    .await;
    let delete_s = started.elapsed().as_secs_f64();
    let after_delete = Reading::now();

    let mut out = json!({
        "booted": booted.len(),
        "active": active,
        "error": booted.len() - active,
        "rejected": rejected.load(Ordering::Relaxed),
        "timed_out": timed_out.load(Ordering::Relaxed),
        "deleted": deleted.load(Ordering::Relaxed),
        "boot_wall_s": round3(boot_s),
        "boots_per_s": round3(active as f64 / boot_s.max(1e-9)),
        "delete_wall_s": round3(delete_s),
        "deletes_per_s": round3(deleted.load(Ordering::Relaxed) as f64 / delete_s.max(1e-9)),
        "idle_db_statements_per_s": round3(idle.statements),
        "idle_bus_published_per_s": round3(idle.published),
    });
    merge(&mut out, tta.into_inner().expect("lock").summary("tta"));
    merge(
        &mut out,
        seen.into_inner().expect("lock").summary("tta_seen"),
    );
    merge(
        &mut out,
        delete_lat.into_inner().expect("lock").summary("delete"),
    );
    merge(
        &mut out,
        prefixed(
            "boot",
            before.per_op(&after_boot, active as u64, Some(&idle)),
        ),
    );
    merge(
        &mut out,
        prefixed(
            "delete",
            after_boot.per_op(
                &after_delete,
                deleted.load(Ordering::Relaxed) as u64,
                Some(&idle),
            ),
        ),
    );
    Ok(out)
}

/// `POST /servers`; the new server's id, or `None` if refused.
async fn post_server(client: &Client, i: usize, image: &str) -> Option<InstanceId> {
    let r = boot(client, &format!("bench-{i}"), SMALL, image, json!({})).await;
    if r.status != 202 {
        tracing::warn!(status = r.status, body = %r.body, "boot refused");
        return None;
    }
    r.body["server"]["id"].as_str().and_then(InstanceId::parse)
}

/// Adds every field of `b` (an object) to `a`.
pub fn merge(a: &mut Value, b: Value) {
    if let (Value::Object(a), Value::Object(b)) = (a, b) {
        a.extend(b);
    }
}

/// `v`'s fields renamed `{prefix}_{field}`.
pub fn prefixed(prefix: &str, v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (format!("{prefix}_{k}"), v))
                .collect(),
        ),
        other => other,
    }
}
