//! `cloud-compute --config FILE`: the agent of one hypervisor host.
//!
//! Reads the TOML file (`[agent]`, `[driver]`, `[image_api]`, `[bus]`,
//! optional `[metrics]`; see `deploy/config/compute.example.toml`),
//! builds the driver with an image fetcher that downloads from the image
//! API (and uploads snapshots to it), connects to the bus and runs the agent until SIGTERM or Ctrl-C.
//! Secrets may come from the environment instead of the file:
//! `CLOUD_AMQP_URL` and `CLOUD_COMPUTE_PASSWORD`.

use clap::Parser;
use cloud_compute::driver_config::NoImages;
use cloud_compute::{Agent, FileConfig, HttpImageFetcher, build_driver};
use cloud_driver::ImageFetcher;
use cloud_service_common::config::error_chain;
use cloud_service_common::telemetry::init_tracing;
use std::path::PathBuf;
use std::sync::Arc;

/// Command line of cloud-compute.
#[derive(Debug, Parser)]
#[command(
    name = "cloud-compute",
    version,
    about = "Run the compute agent of one hypervisor host"
)]
struct Args {
    /// The configuration file.
    #[arg(long, default_value = "/etc/cloud/compute.toml")]
    config: PathBuf,
}

async fn run(config: FileConfig) -> anyhow::Result<()> {
    // One client for downloads and snapshot uploads: one login, one token.
    let image_api = match &config.image_api {
        Some(c) => Some(Arc::new(HttpImageFetcher::new(c.clone())?)),
        None => None,
    };
    let snapshot_dir = snapshot_dir(&config);
    let fetcher: Arc<dyn ImageFetcher> = match &image_api {
        Some(f) => f.clone(),
        None if config.driver.needs_images() => {
            anyhow::bail!(
                "[image_api] is required for the {} driver: it downloads images with it",
                config.driver.kind()
            )
        }
        None => Arc::new(NoImages),
    };
    let network = config.network_config();
    if network
        .metadata
        .as_ref()
        .is_some_and(|m| m.shared_secret.is_empty())
    {
        anyhow::bail!(
            "[network.metadata] needs a shared secret: set shared_secret or CLOUD_METADATA_SECRET"
        );
    }
    let driver = build_driver(config.driver, fetcher, network).await?;
    // The AMQP connection shared by every multi-process service.
    let bus = cloud_service_common::bus::connect(&config.bus).await?;
    if let Some(addr) = config.metrics.listen {
        tokio::spawn(async move {
            if let Err(e) = cloud_service_common::metrics::serve(addr).await {
                tracing::error!(%addr, error = %e, "the metrics listener failed");
            }
        });
    }
    let mut agent = Agent::new(config.agent, bus, driver);
    if let Some(api) = image_api {
        agent = agent.with_image_api(api, snapshot_dir);
    }
    agent.run(cloud_service_common::shutdown_signal()).await
}

/// Where captured disks wait while they upload: next to the libvirt
/// driver's state (a disk with room for root disks), else the temporary
/// directory.
fn snapshot_dir(config: &FileConfig) -> PathBuf {
    match &config.driver {
        #[cfg(feature = "libvirt")]
        cloud_compute::DriverConfig::Libvirt(c) => c.state_path.join("snapshots"),
        _ => cloud_compute::default_scratch_dir(&config.agent.host),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config: FileConfig = match cloud_service_common::load_config(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cloud-compute: {}", error_chain(&e));
            std::process::exit(2);
        }
    };
    init_tracing("info");
    if let Err(e) = run(config).await {
        tracing::error!(error = %format!("{e:#}"), "cloud-compute failed");
        eprintln!("cloud-compute: {e:#}");
        std::process::exit(1);
    }
}
