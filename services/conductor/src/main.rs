//! `cloud-conductor --config FILE`: runs one conductor against PostgreSQL
//! and RabbitMQ until SIGTERM.

use anyhow::Context;
use clap::Parser;
use cloud_conductor::Conductor;
use cloud_conductor::config::FileConfig;
use cloud_service_common::telemetry::init_tracing;
use std::path::PathBuf;

/// Command line of cloud-conductor.
#[derive(Debug, Parser)]
#[command(
    name = "cloud-conductor",
    version,
    about = "Workflows and host reports of the cloud"
)]
struct Args {
    /// The configuration file (see deploy/config/conductor.example.toml).
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
    Conductor::new(store.clone(), bus, cfg.conductor)
        .run(cloud_service_common::shutdown_signal())
        .await?;
    store.close().await;
    Ok(())
}
