//! The system under test: which backend, the control plane with fake
//! hosts (built from `cloud-test-utils`' [`ControlPlane`], with production
//! timings instead of the tests' short ones), and the fixtures a user
//! would have (an image, flavors, a project without quota limits).

use cloud_conductor::ConductorConfig;
use cloud_driver_fake::FakeConfig;
use cloud_model::ImageId;
use cloud_scheduler::SchedulerConfig;
use cloud_store::{Backend, Store};
use cloud_test_utils::{Account, ControlPlane, PlaneOptions};

/// Which pair of database and bus to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// SQLite + in-process bus (`--embedded`) or PostgreSQL + RabbitMQ.
    pub backend: Backend,
}

impl Target {
    /// From the `--embedded` flag.
    pub fn new(embedded: bool) -> Target {
        Target {
            backend: if embedded {
                Backend::Sqlite
            } else {
                Backend::Postgres
            },
        }
    }

    /// The label in reports.
    pub fn label(self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite+inproc",
            Backend::Postgres => "postgres+rabbitmq",
        }
    }
}

/// The flavor every plain boot uses: 1 vCPU, 64 MiB, 1 GiB disk.
pub const SMALL: &str = "bench.small";
/// A pinned flavor: 2 dedicated vCPUs in one NUMA node.
pub const PINNED: &str = "bench.pinned";

/// Starts API, conductor, `schedulers` schedulers and `hosts` fake hosts
/// of `host` resources on `target`, with the services' default timings
/// (heartbeats every 10 s, not the tests' 0.5 s). The database (a fresh
/// PostgreSQL database or SQLite file) and the bus names (a unique AMQP
/// prefix whose queues expire a minute after use) are private to this
/// run; the database is dropped when the plane is.
pub async fn start_plane(
    target: Target,
    hosts: usize,
    host: FakeConfig,
    schedulers: usize,
) -> ControlPlane {
    let mut options = PlaneOptions::hosts(target.backend, hosts, host);
    options.conductor = ConductorConfig::default();
    options.scheduler = SchedulerConfig::default();
    options.schedulers = schedulers;
    options.agent = |_| {};
    ControlPlane::start(options).await
}

/// What a benchmark user has: the admin account (quota unlimited), an
/// image and the bench flavors.
pub struct Fixtures {
    /// The admin, logged in.
    pub admin: Account,
    /// The image to boot.
    pub image: String,
}

/// Sets up [`Fixtures`] on `plane`.
pub async fn fixtures(plane: &ControlPlane) -> anyhow::Result<Fixtures> {
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    prepare_store(store, &admin.project_id).await?;
    let image = active_image(store, &admin.project_id).await?.to_string();
    Ok(Fixtures { admin, image })
}

/// Lifts `project`'s quotas and creates the bench flavors.
pub async fn prepare_store(store: &Store, project: &str) -> anyhow::Result<()> {
    cloud_test_utils::lift_compute_quotas(store, project).await?;
    flavor(store, SMALL, 1, 64, &[]).await?;
    flavor(
        store,
        PINNED,
        2,
        256,
        &[("hw:numa_nodes", "1"), ("hw:cpu_policy", "dedicated")],
    )
    .await?;
    Ok(())
}

async fn flavor(
    store: &Store,
    id: &str,
    vcpus: i64,
    ram_mb: i64,
    specs: &[(&str, &str)],
) -> anyhow::Result<()> {
    Ok(cloud_test_utils::record_flavor(store, id, id, vcpus, ram_mb, specs).await?)
}

/// An active image recorded in the store (the fake driver never reads
/// its bytes, so there is nothing to upload).
pub(crate) async fn active_image(store: &Store, owner: &str) -> anyhow::Result<ImageId> {
    Ok(cloud_test_utils::record_active_image(store, owner, "bench").await?)
}
