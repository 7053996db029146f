//! `list`: `GET /servers/detail` over the API with 1,000 and 10,000
//! servers, a page of 1,000 and the whole listing (following the `next`
//! links). The servers are written straight into the store (as active
//! servers on one host): booting 10,000 through the API would only slow
//! the set-up down, and the listing reads the same rows either way.

use crate::env::{Target, prepare_store};
use crate::fixtures::seed_servers;
use crate::report::Report;
use crate::stats::{Samples, round3};
use cloud_bus::InProcBus;
use cloud_test_utils::{Client, TestApi, TestDb};
use serde_json::{Map, json};
use std::sync::Arc;
use std::time::Instant;

/// Flags of `list`.
#[derive(Clone, Debug, clap::Args)]
pub struct ListArgs {
    /// Server counts to measure, comma-separated (ascending).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub servers: Vec<usize>,
    /// Page size (`limit`).
    #[arg(long, default_value_t = 1000)]
    pub page: usize,
    /// Measured listings per server count.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
}

/// Runs the scenario.
pub async fn run(target: Target, args: &ListArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("list", target.label());
    report.param("servers", json!(args.servers));
    report.param("page", args.page);
    report.param("iterations", args.iterations);
    let db = TestDb::new(target.backend).await;
    let api = TestApi::start_full(db, Arc::new(InProcBus::new()), |_| {}).await;
    let admin = api.admin().await;
    let store = api.db.store.clone();
    prepare_store(&store, &admin.project_id).await?;
    let mut seeded = 0;
    for &n in &args.servers {
        if n > seeded {
            let t = Instant::now();
            seed_servers(&store, &admin.project_id, seeded, n - seeded).await?;
            tracing::info!(servers = n, secs = t.elapsed().as_secs_f64(), "seeded");
            seeded = n;
        }
        let c = &admin.client;
        // Warm up (connections, caches).
        let _ = page(c, args.page, None).await?;
        let mut first = Samples::new();
        let mut all = Samples::new();
        let mut listed = 0;
        for _ in 0..args.iterations {
            let t0 = Instant::now();
            let (n_first, _) = page(c, args.page, None).await?;
            first.push(t0.elapsed());
            let t0 = Instant::now();
            listed = full_listing(c, args.page).await?;
            all.push(t0.elapsed());
            anyhow::ensure!(
                n_first == args.page.min(n),
                "first page had {n_first} servers"
            );
        }
        let mut row = Map::new();
        row.insert("servers".into(), json!(n));
        row.insert("listed".into(), json!(listed));
        row.insert("page_p50_ms".into(), json!(round3(first.percentile(50.0))));
        row.insert("page_p95_ms".into(), json!(round3(first.percentile(95.0))));
        row.insert("all_p50_ms".into(), json!(round3(all.percentile(50.0))));
        row.insert("all_p95_ms".into(), json!(round3(all.percentile(95.0))));
        report.cases.push(row);
    }
    drop(api);
    Ok(report)
}

/// One page after `marker`: its length and the last id.
async fn page(
    c: &Client,
    limit: usize,
    marker: Option<&str>,
) -> anyhow::Result<(usize, Option<String>)> {
    let mut path = format!("/compute/v2.1/servers/detail?limit={limit}");
    if let Some(m) = marker {
        path.push_str(&format!("&marker={m}"));
    }
    let r = c.get(&path).await;
    anyhow::ensure!(r.status == 200, "GET {path}: {} {}", r.status, r.body);
    let servers = r.body["servers"].as_array().cloned().unwrap_or_default();
    let last = servers
        .last()
        .and_then(|s| s["id"].as_str())
        .map(str::to_owned);
    Ok((servers.len(), last))
}

/// Every server, page by page; how many.
async fn full_listing(c: &Client, limit: usize) -> anyhow::Result<usize> {
    let mut marker: Option<String> = None;
    let mut total = 0;
    loop {
        let (n, last) = page(c, limit, marker.as_deref()).await?;
        total += n;
        if n < limit {
            return Ok(total);
        }
        marker = last;
    }
}
