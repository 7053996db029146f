//! `scheduler`: the scheduler alone, without the API or the bus:
//! `select_destinations` (read the request, SQL prefilter, snapshot,
//! filters and weighers, atomic claim) called directly on a scheduler
//! over a store holding K hosts, and the pure decision
//! (`cloud_scheduler_core::select` over K in-memory host states), for a
//! plain flavor and a NUMA/pinned one.

use crate::env::{PINNED, SMALL, Target, prepare_store};
use crate::fixtures::{flavor, instance, register_hosts};
use crate::report::Report;
use crate::stats::{Samples, round3};
use cloud_bus::InProcBus;
use cloud_driver_fake::FakeConfig;
use cloud_rpc::Reply;
use cloud_scheduler::{Scheduler, SchedulerConfig};
use cloud_scheduler_core::{CellState, HostState, Inventory, RequestSpec, WeigherConfig, select};
use cloud_test_utils::TestDb;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Calls not measured before each series (connections, statement caches).
const WARMUP: usize = 5;

/// Flags of `scheduler`.
#[derive(Clone, Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Host counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub hosts: Vec<usize>,
    /// Measured calls per host count and flavor.
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
}

/// The simulated host: 32 CPUs in 2 NUMA cells, 128 GiB.
fn host_config() -> FakeConfig {
    FakeConfig {
        vcpus: 32,
        memory_mb: 131_072,
        disk_gb: 2000,
        numa_cells: 2,
        ..FakeConfig::default()
    }
}

/// Runs the scenario.
pub async fn run(target: Target, args: &SchedulerArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("scheduler", target.label());
    report.param("hosts", json!(args.hosts));
    report.param("iterations", args.iterations);
    for &k in &args.hosts {
        let db = TestDb::new(target.backend).await;
        let store = db.store.clone();
        prepare_store(&store, "bench").await?;
        let t = Instant::now();
        register_hosts(&store, k, host_config()).await?;
        tracing::info!(
            hosts = k,
            secs = t.elapsed().as_secs_f64(),
            "hosts registered"
        );
        let scheduler = Scheduler::new(
            store.clone(),
            Arc::new(InProcBus::new()),
            SchedulerConfig {
                // Hosts registered once stay eligible for the whole run.
                service_down_secs: 86_400,
                ..SchedulerConfig::default()
            },
        );
        for fl in [SMALL, PINNED] {
            let snap = flavor(fl);
            let mut service = Samples::new();
            for i in 0..WARMUP + args.iterations {
                let inst = instance("bench", format!("s-{i}"), snap.clone(), None);
                store
                    .instances_create(
                        std::slice::from_ref(&inst),
                        &format!("r-{fl}-{i}"),
                        &BTreeMap::new(),
                    )
                    .await?;
                let t0 = Instant::now();
                let reply = scheduler.select_destinations(inst.id, &[], 2).await?;
                let took = t0.elapsed();
                if let Reply::Err(m) = reply {
                    anyhow::bail!("no host for {fl} at {k} hosts: {m}");
                }
                if i >= WARMUP {
                    service.push(took);
                }
            }
            let prefilter = prefilter_time(&store, &snap, args.iterations.min(50)).await?;
            let core = core_select(
                k,
                &snap.extra_specs,
                snap.vcpus,
                snap.ram_mb,
                args.iterations,
            );
            let mut row = Map::new();
            row.insert("hosts".into(), json!(k));
            row.insert("flavor".into(), json!(fl));
            row.insert(
                "service_p50_ms".into(),
                json!(round3(service.percentile(50.0))),
            );
            row.insert(
                "service_p99_ms".into(),
                json!(round3(service.percentile(99.0))),
            );
            row.insert(
                "prefilter_p50_ms".into(),
                json!(round3(prefilter.percentile(50.0))),
            );
            row.insert("core_p50_ms".into(), json!(round3(core.percentile(50.0))));
            row.insert("core_p99_ms".into(), json!(round3(core.percentile(99.0))));
            report.cases.push(row);
        }
        store.close().await;
        drop(db);
    }
    growth(&mut report);
    Ok(report)
}

/// Adds, per flavor, how p99 grew from the smallest host count to each
/// larger one next to how the host count grew (linear growth: equal).
fn growth(report: &mut Report) {
    let first: BTreeMap<String, (f64, f64, f64)> =
        report.cases.iter().fold(BTreeMap::new(), |mut m, c| {
            let fl = c["flavor"].as_str().unwrap_or("").to_owned();
            m.entry(fl).or_insert((
                c["hosts"].as_f64().unwrap_or(1.0),
                c["service_p99_ms"].as_f64().unwrap_or(0.0),
                c["core_p99_ms"].as_f64().unwrap_or(0.0),
            ));
            m
        });
    for c in &mut report.cases {
        let fl = c["flavor"].as_str().unwrap_or("").to_owned();
        let Some(&(k0, s0, c0)) = first.get(&fl) else {
            continue;
        };
        let ratio =
            |x: &Value, base: f64| json!(round3(x.as_f64().unwrap_or(0.0) / base.max(1e-9)));
        let hosts_ratio = ratio(&c["hosts"], k0);
        let service_ratio = ratio(&c["service_p99_ms"], s0);
        let core_ratio = ratio(&c["core_p99_ms"], c0);
        c.insert("hosts_x".into(), hosts_ratio);
        c.insert("service_p99_x".into(), service_ratio);
        c.insert("core_p99_x".into(), core_ratio);
    }
}

/// Times the SQL prefilter alone (the candidate hosts' rows read and
/// decoded), the part of `select_destinations` that grows with K.
async fn prefilter_time(
    store: &cloud_store::Store,
    flavor: &cloud_model::instance::FlavorSnapshot,
    iterations: usize,
) -> anyhow::Result<Samples> {
    let mut samples = Samples::new();
    for _ in 0..iterations {
        let p = cloud_store::Prefilter {
            vcpus: flavor.vcpus,
            memory_mb: flavor.ram_mb,
            disk_gb: flavor.disk_gb,
            seen_after: cloud_model::Timestamp::now().plus_seconds(-86_400),
        };
        let t0 = Instant::now();
        store.compute_nodes_prefiltered(&p).await?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

/// Times the pure decision over `k` in-memory hosts like the registered
/// ones (some already partly used, so the weighers have work to do).
fn core_select(
    k: usize,
    extra_specs: &BTreeMap<String, String>,
    vcpus: i64,
    memory_mb: i64,
    iterations: usize,
) -> Samples {
    let hosts: Vec<HostState> = (1..=k).map(|i| core_host(i, (i % 16) as i64)).collect();
    let weighers = WeigherConfig::default();
    let mut samples = Samples::new();
    for i in 0..WARMUP + iterations {
        let spec = RequestSpec {
            vcpus,
            memory_mb,
            disk_gb: 1,
            extra_specs: extra_specs.clone(),
            num_instances: 1,
            seed: i as u64,
            ..RequestSpec::default()
        };
        let t0 = Instant::now();
        let r = select(&spec, &hosts, &weighers, 11);
        let took = t0.elapsed();
        assert!(r.is_ok(), "the in-memory hosts always fit");
        if i >= WARMUP {
            samples.push(took);
        }
    }
    samples
}

fn core_host(i: usize, used_cpus: i64) -> HostState {
    let cell = |id: u32| CellState {
        id,
        cpus: (id * 16..id * 16 + 16).collect(),
        pinned: Default::default(),
        memory_mb: 65_536,
        memory_used_mb: 0,
        hugepages: Vec::new(),
    };
    HostState {
        host: format!("host-{i}"),
        enabled: true,
        up: true,
        forced_down: false,
        availability_zone: "nova".into(),
        hypervisor_type: "fake".into(),
        cpu_arch: "x86_64".into(),
        vcpu: Inventory::plain(32, used_cpus),
        memory_mb: Inventory::plain(131_072, used_cpus * 1024),
        disk_gb: Inventory::plain(2000, used_cpus),
        cells: vec![cell(0), cell(1)],
        recent_failures: 0,
    }
}
