//! cloud-bench: measures the control plane as a user meets it.
//!
//! It starts the real services (API, conductor, scheduler) and K
//! simulated compute hosts on the fake driver (agents as tasks of this
//! process, each with its own queue and heartbeats) on PostgreSQL and
//! RabbitMQ — a fresh database and private queue names, removed
//! afterwards — or, with `--embedded`, on SQLite and the in-process bus;
//! then drives the HTTP API and prints a table and, as the last line, a
//! JSON summary (also written to `--json FILE`).
//!
//! ```text
//! cloud-bench [--embedded] [--json FILE] boot|scheduler|list|contention|resources|dataplane [FLAGS]
//! ```
//!
//! `dataplane` runs namespace hosts on the real kernel data plane instead
//! of fake ones (root only).
//!
//! It prints figures and asserts no timings; `docs/benchmarks.md` says
//! how to run it and records results.

mod counters;
mod env;
mod fixtures;
mod processes;
mod report;
mod scenarios;
mod stats;
mod watch;

use clap::{Parser, Subcommand};
use scenarios::{boot, contention, dataplane, list, resources, scheduler};
use std::path::PathBuf;

/// Command line of cloud-bench.
#[derive(Debug, Parser)]
#[command(name = "cloud-bench", version, about = "Benchmark the control plane")]
struct Args {
    /// SQLite and the in-process bus instead of PostgreSQL and RabbitMQ
    /// (`CLOUD_TEST_PG_URL`, `CLOUD_TEST_AMQP_URL`, defaults on 127.0.0.1).
    #[arg(long, global = true)]
    embedded: bool,
    /// Also write the JSON summary to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// The scenario.
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Boot N servers at concurrency C to ACTIVE, then delete them.
    Boot(boot::BootArgs),
    /// `select_destinations` latency for K hosts, plain and NUMA/pinned.
    Scheduler(scheduler::SchedulerArgs),
    /// `GET /servers/detail` with many servers.
    List(list::ListArgs),
    /// Concurrent boots for the last capacity with two schedulers.
    Contention(contention::ContentionArgs),
    /// Memory, CPU, statements and messages during the boot scenario.
    Resources(resources::ResourcesArgs),
    /// The host data plane on namespace hosts (root): rule to enforcement,
    /// forwarding entries to every host, throughput.
    Dataplane(dataplane::DataplaneArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    cloud_service_common::telemetry::init_tracing("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&args))?;
    // Let the plane's leftovers (queue expiries, database drop) finish.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    print!("{}", report.to_table());
    let json = report.to_json();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")?;
    }
    println!("{json}");
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<report::Report> {
    let target = env::Target::new(args.embedded);
    match &args.scenario {
        Scenario::Boot(a) => boot::run(target, a).await,
        Scenario::Scheduler(a) => scheduler::run(target, a).await,
        Scenario::List(a) => list::run(target, a).await,
        Scenario::Contention(a) => contention::run(target, a).await,
        Scenario::Resources(a) => resources::run(target, a).await,
        Scenario::Dataplane(a) => dataplane::run(target, a).await,
    }
}
