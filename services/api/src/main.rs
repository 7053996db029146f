//! `cloud-api --config FILE`: serves the API against PostgreSQL and
//! RabbitMQ until SIGTERM, then finishes in-flight requests and exits 0.

use anyhow::Context;
use clap::Parser;
use cloud_api::AppState;
use cloud_api::config::FileConfig;
use cloud_service_common::telemetry::init_tracing;
use std::path::PathBuf;

/// Command line of cloud-api.
#[derive(Debug, Parser)]
#[command(
    name = "cloud-api",
    version,
    about = "The cloud's OpenStack-compatible API"
)]
struct Args {
    /// The configuration file (see deploy/config/api.example.toml).
    #[arg(long)]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing("info");
    let cfg: FileConfig = cloud_service_common::load_config(&args.config)?;
    let mut api = cfg.api;
    api.warn_about_defaults();
    let url = std::env::var("DATABASE_URL")
        .ok()
        .or_else(|| api.database_url.clone())
        .context("no database URL: set [api] database_url or DATABASE_URL")?;
    api.database_url = None;
    let store = cloud_store::Store::connect(&url).await?;
    store.migrate().await?;
    let password = std::env::var("CLOUD_ADMIN_PASSWORD")
        .ok()
        .or_else(|| api.bootstrap.admin_password.clone());
    let outcome =
        cloud_api::bootstrap::bootstrap(&store, password, api.bootstrap.default_flavors).await?;
    if let Some(p) = outcome.generated_admin_password {
        println!("Generated password for user 'admin' (project 'admin'): {p}");
    }
    std::fs::create_dir_all(&api.data_dir)
        .with_context(|| format!("cannot create {}", api.data_dir.display()))?;
    let bus = cloud_service_common::bus::connect(&cfg.bus).await?;
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .with_context(|| format!("cannot listen on {}", api.listen))?;
    let handle = cloud_api::serve(
        listener,
        AppState::with_bus(store.clone(), api, bus),
        cloud_service_common::shutdown_signal(),
    )?;
    tracing::info!(addr = %handle.addr, "cloud-api is up");
    handle.task.await??;
    store.close().await;
    Ok(())
}
