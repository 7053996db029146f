//! cloud-aio: the whole cloud in one process.
//!
//! SQLite in the data directory, the in-process bus, and every service
//! (API, conductor, scheduler, one compute agent, optionally simulated
//! hosts) as tasks of this process. It is the quickstart and the
//! single-node deployment:
//!
//! ```text
//! cloud-aio --data-dir ./data --listen 127.0.0.1:8080 [--driver auto|libvirt|fake]
//!           [--metrics-listen 127.0.0.1:9100]
//! ```
//!
//! The data directory is private (0700, the database 0600; see
//! [`data_dir`]) and `/metrics` is served only on `--metrics-listen`.
//!
//! The local compute host runs real VMs through libvirt when it can
//! (`--driver auto`, see [`driver`]); `scripts/aio` prepares the machine
//! and builds with or without libvirt accordingly.

mod data_dir;
mod driver;
mod public_net;
mod service_user;

use anyhow::Context;
use clap::Parser;
use cloud_api::{ApiConfig, AppState};
use cloud_bus::{Bus, InProcBus};
use cloud_compute::{Agent, AgentConfig};
use cloud_conductor::{Conductor, ConductorConfig};
use cloud_driver_fake::{FakeConfig, FakeDriver};
use cloud_scheduler::{Scheduler, SchedulerConfig};
use cloud_service_common::telemetry::init_tracing;
use cloud_store::Store;
use driver::DriverChoice;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    /// Where to serve Prometheus `/metrics` (an address only operators
    /// reach); unset, metrics are not served. Never on `--listen`.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Hypervisor driver of the local compute host.
    #[arg(long, value_enum, default_value = "auto")]
    driver: DriverChoice,
    /// Simulated compute hosts to add (fake driver), for demos and tests.
    #[arg(long, default_value_t = 0)]
    fake_hosts: usize,
    /// vCPUs the local host may give out per physical CPU (Nova's default
    /// `cpu_allocation_ratio`: guests rarely use all their vCPUs).
    #[arg(long, default_value_t = 4.0)]
    cpu_allocation_ratio: f64,
    /// RAM overcommit of the local host (Nova's default: none).
    #[arg(long, default_value_t = 1.0)]
    ram_allocation_ratio: f64,
    /// Disk overcommit of the local host (Nova's default: none).
    #[arg(long, default_value_t = 1.0)]
    disk_allocation_ratio: f64,
}

impl Args {
    /// The local host's agent settings, with the allocation ratios asked.
    fn local_agent(&self, host: &str) -> AgentConfig {
        let mut config = AgentConfig::for_host(host);
        // Routers run here: this host is the cloud's network node.
        config.network_node = true;
        config.inventory.cpu_allocation_ratio = self.cpu_allocation_ratio;
        config.inventory.ram_allocation_ratio = self.ram_allocation_ratio;
        config.inventory.disk_allocation_ratio = self.disk_allocation_ratio;
        config
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing("info");
    // Traversable only while libvirt may be used; closed again below if
    // the fake driver runs.
    let qemu_may_traverse = !matches!(args.driver, DriverChoice::Fake);
    let db = data_dir::prepare(&args.data_dir, data_dir::dir_mode(qemu_may_traverse))?;
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

    let admin_project = store
        .project_find(&cloud_model::DomainId::default_domain(), "admin")
        .await
        .context("cannot find the admin project")?;
    public_net::ensure(&store, &admin_project.id)
        .await
        .context("cannot create the external network")?;

    let bus: Arc<dyn Bus> = Arc::new(InProcBus::new());
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();

    let conductor = Conductor::new(store.clone(), bus.clone(), ConductorConfig::default());
    tasks.push(tokio::spawn(conductor.run(stop.clone().cancelled_owned())));
    let scheduler = Scheduler::new(store.clone(), bus.clone(), SchedulerConfig::default());
    tasks.push(tokio::spawn(scheduler.run(stop.clone().cancelled_owned())));

    // Listen first: the local agent downloads images from this address.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let api_addr = listener.local_addr().context("no local address")?;
    let service_password = service_user::ensure_service_user(&store)
        .await
        .context("cannot set up the compute service user")?;
    let local = cloud_service_common::hostname();
    // One secret per run, shared by the metadata API and the proxies.
    let metadata_secret = uuid::Uuid::new_v4().simple().to_string();
    let image_api = driver::image_api(api_addr, service_password);
    // Every agent uploads snapshots with the compute service account.
    let snapshots = Arc::new(cloud_compute::HttpImageFetcher::new(image_api.clone())?);
    let driver = driver::choose(
        args.driver,
        &args.data_dir,
        image_api,
        driver::metadata_upstream(api_addr, &metadata_secret),
    )
    .await?;
    tracing::info!(host = %local, driver = driver.kind(), "local compute host");
    if qemu_may_traverse && driver.kind() != "libvirt" {
        data_dir::set_mode(&args.data_dir, data_dir::dir_mode(false))?;
    }
    let agent = Agent::new(args.local_agent(&local), bus.clone(), driver)
        .with_image_api(snapshots.clone(), args.data_dir.join("snapshots"));
    tasks.push(tokio::spawn(agent.run(stop.clone().cancelled_owned())));
    for i in 1..=args.fake_hosts {
        let agent = Agent::new(
            AgentConfig::for_host(&format!("fake-{i}")),
            bus.clone(),
            Arc::new(FakeDriver::new(FakeConfig::default())),
        )
        .with_image_api(snapshots.clone(), args.data_dir.join("snapshots"));
        tasks.push(tokio::spawn(agent.run(stop.clone().cancelled_owned())));
    }

    let mut config = ApiConfig::for_data_dir(args.data_dir.clone());
    config.listen = args.listen;
    config.public_url = args.public_url.clone();
    config.metrics_listen = args.metrics_listen;
    config.metadata.shared_secret = Some(metadata_secret);
    config
        .network
        .physical_networks
        .push(public_net::PHYSNET.to_owned());
    let handle = cloud_api::serve(
        listener,
        AppState::with_bus(store.clone(), config, bus.clone()),
        cloud_service_common::shutdown_signal(),
    )?;
    tracing::info!(addr = %handle.addr, data_dir = %args.data_dir.display(), "cloud-aio is up");
    if let Some(metrics) = handle.metrics_addr {
        tracing::info!(addr = %metrics, "metrics served on http://{metrics}/metrics");
    }
    println!(
        "cloud-aio listening on http://{0}/ (identity: http://{0}/identity/v3)",
        handle.addr
    );
    handle.task.await??;
    // The API has drained its requests; stop the control plane.
    stop.cancel();
    for t in tasks {
        if let Err(e) = t.await? {
            tracing::warn!(error = %e, "a service stopped with an error");
        }
    }
    store.close().await;
    tracing::info!("cloud-aio stopped");
    Ok(())
}
