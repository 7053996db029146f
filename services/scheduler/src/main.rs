//! `cloud-scheduler --config FILE`: runs one scheduler against PostgreSQL
//! and RabbitMQ until SIGTERM.

use anyhow::Context;
use clap::Parser;
use cloud_scheduler::Scheduler;
use cloud_scheduler::config::FileConfig;
use cloud_service_common::telemetry::init_tracing;
use std::path::PathBuf;

/// Command line of cloud-scheduler.
#[derive(Debug, Parser)]
#[command(
    name = "cloud-scheduler",
    version,
    about = "Host selection of the cloud"
)]
struct Args {
    /// The configuration file (see deploy/config/scheduler.example.toml).
    #[arg(long)]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing("info");
    let cfg: FileConfig = cloud_service_common::load_config(&args.config)?;
    let url = cfg
        .database
        .url()
        .context("no database URL: set [database] url or DATABASE_URL")?;
    let store = cloud_store::Store::connect(&url).await?;
    store.migrate().await?;
    let bus = cloud_service_common::bus::connect(&cfg.bus).await?;
    if let Some(addr) = cfg.metrics.listen {
        tokio::spawn(cloud_service_common::metrics::serve(addr));
    }
    Scheduler::new(store.clone(), bus, cfg.scheduler)
        .run(cloud_service_common::shutdown_signal())
        .await?;
    store.close().await;
    Ok(())
}
