//! cloud-aio: the whole cloud in one process.
//!
//! SQLite in the data directory, the in-process bus, and every service
//! (API, conductor, scheduler, one compute agent) as tasks of this
//! process. It is the quickstart and the single-node deployment:
//!
//! ```text
//! cloud-aio --data-dir ./data --listen 127.0.0.1:8080
//! ```

use anyhow::Context;
use clap::Parser;
use cloud_api::{ApiConfig, AppState};
use cloud_service_common::telemetry::init_tracing;
use cloud_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of cloud-aio.
#[derive(Debug, Parser)]
#[command(
    name = "cloud-aio",
    version,
    about = "Run a complete single-node cloud in one process"
)]
struct Args {
    /// Where the database and image files live.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Address of the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Password of the `admin` user, used when it is first created.
    #[arg(long, env = "CLOUD_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Public URL for the catalog (default: from each request's Host).
    #[arg(long)]
    public_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing("info");
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let db = args.data_dir.join("cloud.db");
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let outcome = cloud_api::bootstrap::bootstrap(&store, args.admin_password.clone(), true)
        .await
        .context("bootstrap failed")?;
    if let Some(p) = &outcome.generated_admin_password {
        println!("Generated password for user 'admin' (project 'admin'): {p}");
        println!("It is shown only once. Set CLOUD_ADMIN_PASSWORD to choose your own.");
    }
    let mut config = ApiConfig::for_data_dir(args.data_dir.clone());
    config.listen = args.listen;
    config.public_url = args.public_url.clone();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = cloud_api::serve(
        listener,
        AppState::new(store.clone(), config),
        cloud_service_common::shutdown_signal(),
    )?;
    tracing::info!(addr = %handle.addr, data_dir = %args.data_dir.display(), "cloud-aio is up");
    println!(
        "cloud-aio listening on http://{}/ (identity: http://{}/identity/v3)",
        handle.addr, handle.addr
    );
    handle.task.await??;
    store.close().await;
    tracing::info!("cloud-aio stopped");
    Ok(())
}
