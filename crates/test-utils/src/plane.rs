//! The whole control plane in one test process: API, conductors,
//! schedulers and compute agents on the fake driver, over a real store
//! and bus, as `omicron`'s `#[nexus_test]` runs Nexus with simulated sleds.
//! Hosts on another driver (the libvirt driver of the real-VM tests) are
//! added with [`ControlPlane::add_host`]; they download images from the
//! image API with [`ControlPlane::image_api`]'s credentials.

use crate::api::TestApi;
use crate::client::{Client, Reply};
use crate::db::TestDb;
use cloud_bus::{Bus, InProcBus};
use cloud_compute::{Agent, AgentConfig, HttpImageFetcher, ImageApiConfig};
use cloud_conductor::{Conductor, ConductorConfig};
use cloud_driver::Driver;
use cloud_driver_fake::{FakeConfig, FakeDriver};
use cloud_scheduler::{Scheduler, SchedulerConfig};
use cloud_store::Backend;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How to build a control plane.
pub struct PlaneOptions {
    /// Database backend.
    pub backend: Backend,
    /// The bus (default: in process).
    pub bus: Option<Arc<dyn Bus>>,
    /// Fake hosts: `(name, resources)`.
    pub hosts: Vec<(String, FakeConfig)>,
    /// Conductor settings (tests shorten the timeouts).
    pub conductor: ConductorConfig,
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Number of scheduler replicas.
    pub schedulers: usize,
    /// Per-agent tweak.
    pub agent: fn(&mut AgentConfig),
    /// API configuration tweak.
    pub api: fn(&mut cloud_api::ApiConfig),
}

impl PlaneOptions {
    /// `n` fake hosts `host-1..host-n` with `config`, quick test timings.
    pub fn hosts(backend: Backend, n: usize, config: FakeConfig) -> PlaneOptions {
        PlaneOptions {
            backend,
            bus: None,
            hosts: (1..=n)
                .map(|i| (format!("host-{i}"), config.clone()))
                .collect(),
            conductor: ConductorConfig {
                service_down_secs: 3,
                spawn_timeout_secs: 20,
                action_timeout_secs: 20,
                delete_timeout_secs: 10,
                lease_secs: 3,
                reconcile_interval_secs: 0.3,
                ..ConductorConfig::default()
            },
            scheduler: SchedulerConfig {
                service_down_secs: 3,
                ..SchedulerConfig::default()
            },
            schedulers: 1,
            agent: |a| {
                a.heartbeat_secs = 0.5;
                a.power_sync_secs = 1.0;
                a.shutdown_timeout_secs = 5;
            },
            api: |_| {},
        }
    }
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    fn spawn<F>(f: impl FnOnce(CancellationToken) -> F) -> Running
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(f(stop.clone()));
        Running { stop, task }
    }
}

/// A fake compute host.
pub struct FakeHost {
    /// Host name.
    pub name: String,
    /// Its driver (inject faults here).
    pub driver: Arc<FakeDriver>,
    agent: Option<Running>,
}

/// Credentials for the image API of `api`: the bootstrap admin.
fn image_api_of(api: &TestApi) -> ImageApiConfig {
    ImageApiConfig {
        auth_url: format!("{}/identity/v3", api.url),
        username: "admin".to_owned(),
        password: Some(crate::api::ADMIN_PASSWORD.to_owned()),
        user_domain_name: "Default".to_owned(),
        project_name: "admin".to_owned(),
        project_domain_name: "Default".to_owned(),
    }
}

/// The running control plane.
pub struct ControlPlane {
    /// The API (and its database).
    pub api: TestApi,
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// The hosts.
    pub hosts: Vec<FakeHost>,
    options: PlaneOptions,
    /// Hosts added with [`ControlPlane::add_host`], by name.
    other_hosts: Vec<(String, Option<Running>)>,
    conductors: Vec<Running>,
    schedulers: Vec<(Arc<Scheduler>, Running)>,
    /// Every host's snapshot uploads, with [`ControlPlane::image_api`]'s
    /// credentials.
    snapshot_uploader: Arc<HttpImageFetcher>,
}

impl ControlPlane {
    /// Starts everything and waits until every host is registered.
    pub async fn start(options: PlaneOptions) -> ControlPlane {
        // The embedded pair (SQLite + in-process bus) or the production
        // pair (PostgreSQL + RabbitMQ), unless the test brings its own bus.
        let bus: Arc<dyn Bus> = match (&options.bus, options.backend) {
            (Some(b), _) => b.clone(),
            (None, Backend::Sqlite) => Arc::new(InProcBus::new()),
            (None, Backend::Postgres) => Arc::new(amqp_test_bus().await),
        };
        let db = TestDb::new(options.backend).await;
        let tweak = options.api;
        let api = TestApi::start_full(db, bus.clone(), |c| {
            c.service_down_secs = 3;
            tweak(c);
        })
        .await;
        let snapshot_uploader = Arc::new(
            HttpImageFetcher::new(image_api_of(&api)).expect("the image API config has a password"),
        );
        let mut plane = ControlPlane {
            api,
            snapshot_uploader,
            bus,
            hosts: Vec::new(),
            options,
            other_hosts: Vec::new(),
            conductors: Vec::new(),
            schedulers: Vec::new(),
        };
        plane.start_conductor();
        for _ in 0..plane.options.schedulers.max(1) {
            plane.start_scheduler();
        }
        let hosts = plane.options.hosts.clone();
        for (name, config) in hosts {
            let driver = Arc::new(FakeDriver::new(config));
            plane.hosts.push(FakeHost {
                name: name.clone(),
                driver,
                agent: None,
            });
            plane.start_host(&name);
        }
        plane.wait_hosts_registered().await;
        plane
    }

    /// Starts one more conductor.
    pub fn start_conductor(&mut self) {
        let c = Conductor::new(
            self.api.db.store.clone(),
            self.bus.clone(),
            self.options.conductor.clone(),
        );
        self.conductors.push(Running::spawn(|stop| async move {
            let _ = c.run(stop.cancelled_owned()).await;
        }));
    }

    /// Kills every conductor abruptly (no clean shutdown: work in flight is
    /// dropped, leases are left to expire), as a crash would.
    pub fn kill_conductors(&mut self) {
        for c in self.conductors.drain(..) {
            c.task.abort();
        }
    }

    fn start_scheduler(&mut self) {
        let s = Scheduler::new(
            self.api.db.store.clone(),
            self.bus.clone(),
            self.options.scheduler.clone(),
        );
        let run = s.clone();
        let r = Running::spawn(|stop| async move {
            let _ = run.run(stop.cancelled_owned()).await;
        });
        self.schedulers.push((s, r));
    }

    /// The schedulers (to read their counters).
    pub fn schedulers(&self) -> Vec<Arc<Scheduler>> {
        self.schedulers.iter().map(|(s, _)| s.clone()).collect()
    }

    /// Starts (or restarts) the agent of `name`, keeping its driver (its
    /// VMs survive, as a real hypervisor's would).
    pub fn start_host(&mut self, name: &str) {
        let bus = self.bus.clone();
        let tweak = self.options.agent;
        let host = self
            .hosts
            .iter_mut()
            .find(|h| h.name == name)
            .expect("known host");
        let mut config = AgentConfig::for_host(name);
        tweak(&mut config);
        let driver: Arc<dyn Driver> = host.driver.clone();
        let agent = Agent::new(config, bus, driver).with_image_api(
            self.snapshot_uploader.clone(),
            cloud_compute::default_scratch_dir(name),
        );
        host.agent = Some(Running::spawn(|stop| async move {
            let _ = agent.run(stop.cancelled_owned()).await;
        }));
    }

    /// Starts a compute agent `name` on `driver` (any driver: the real-VM
    /// tests pass the libvirt driver) and waits until the host is
    /// registered. Called again for a host stopped with
    /// [`ControlPlane::stop_host`], it restarts the agent, as a restarted
    /// `cloud-compute` process would, with the driver given.
    pub async fn add_host(&mut self, name: &str, driver: Arc<dyn Driver>) {
        let mut config = AgentConfig::for_host(name);
        (self.options.agent)(&mut config);
        self.add_host_with(config, driver).await;
    }

    /// [`ControlPlane::add_host`] with the agent's settings given whole
    /// (the data plane tests give each host its underlay address).
    pub async fn add_host_with(&mut self, config: AgentConfig, driver: Arc<dyn Driver>) {
        let name = config.host.clone();
        let name = name.as_str();
        let agent = Agent::new(config, self.bus.clone(), driver).with_image_api(
            self.snapshot_uploader.clone(),
            cloud_compute::default_scratch_dir(name),
        );
        let running = Running::spawn(|stop| async move {
            if let Err(e) = agent.run(stop.cancelled_owned()).await {
                eprintln!("compute agent failed: {e:#}");
            }
        });
        match self.other_hosts.iter_mut().find(|(n, _)| n == name) {
            Some((_, slot)) => {
                assert!(slot.is_none(), "host {name} is running; stop it first");
                *slot = Some(running);
            }
            None => self.other_hosts.push((name.to_owned(), Some(running))),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.api.db.store.compute_node(name).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "host {name} did not register in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Credentials for a host's image downloads: the image API of this
    /// plane, as the bootstrap admin.
    pub fn image_api(&self) -> ImageApiConfig {
        image_api_of(&self.api)
    }

    /// Stops the agent of `name` (no more heartbeats, nothing consumed).
    pub async fn stop_host(&mut self, name: &str) {
        if let Some((_, slot)) = self.other_hosts.iter_mut().find(|(n, _)| n == name) {
            if let Some(r) = slot.take() {
                r.task.abort();
                let _ = r.task.await;
            }
            return;
        }
        let host = self
            .hosts
            .iter_mut()
            .find(|h| h.name == name)
            .expect("known host");
        if let Some(r) = host.agent.take() {
            r.task.abort();
            let _ = r.task.await;
        }
    }

    /// The driver of host `name`.
    pub fn driver(&self, name: &str) -> Arc<FakeDriver> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("known host")
            .driver
            .clone()
    }

    async fn wait_hosts_registered(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = self
                .api
                .db
                .store
                .compute_nodes()
                .await
                .map(|n| n.len())
                .unwrap_or(0);
            if n >= self.hosts.len() {
                return;
            }
            assert!(Instant::now() < deadline, "hosts did not register in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops everything cleanly.
    pub async fn shutdown(mut self) {
        // Callers first: a conductor finishing a build step may still be
        // waiting on a scheduler's reply, which would otherwise only end
        // with the call's timeout (a test then took a minute to stop).
        for c in self.conductors.drain(..) {
            c.stop.cancel();
            let _ = c.task.await;
        }
        for (_, r) in self.schedulers.drain(..) {
            r.stop.cancel();
            let _ = r.task.await;
        }
        for h in &mut self.hosts {
            if let Some(r) = h.agent.take() {
                r.stop.cancel();
                let _ = r.task.await;
            }
        }
        for (_, slot) in &mut self.other_hosts {
            if let Some(r) = slot.take() {
                r.stop.cancel();
                let _ = r.task.await;
            }
        }
    }
}

/// A RabbitMQ bus with names no other test uses; its queues expire soon
/// after the test, so nothing is left on the broker. Fails the test when
/// RabbitMQ is unreachable.
pub async fn amqp_test_bus() -> cloud_bus::AmqpBus {
    let url = std::env::var("CLOUD_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let mut cfg =
        cloud_bus::AmqpConfig::new(url.clone(), format!("t-{}", uuid::Uuid::new_v4().simple()));
    cfg.queue_expires = Some(Duration::from_secs(60));
    cfg.connection_name = "cloud-test".to_owned();
    cloud_bus::AmqpBus::connect(cfg).await.unwrap_or_else(|e| {
        panic!(
            "RabbitMQ is required for this test but {url} is unreachable: {e}. \
             Start it with deploy/dev-services.sh."
        )
    })
}

/// Polls a server until its status is one of `statuses` (or it is gone,
/// when `statuses` contains "DELETED"), up to `timeout`. Returns the last
/// server body (Null once deleted).
pub async fn wait_for_status(
    client: &Client,
    id: &str,
    statuses: &[&str],
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let r = client.get(&format!("/compute/v2.1/servers/{id}")).await;
        if r.status == 404 && statuses.contains(&"DELETED") {
            return Value::Null;
        }
        let status = r.body["server"]["status"].as_str().unwrap_or("").to_owned();
        if statuses.contains(&status.as_str()) {
            return r.body["server"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "server {id} did not reach {statuses:?} in {timeout:?}; last: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Boots a server with `flavor` and the given extra fields; returns the reply.
pub async fn boot(client: &Client, name: &str, flavor: &str, image: &str, extra: Value) -> Reply {
    let mut server =
        json!({"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"});
    if let (Some(s), Some(e)) = (server.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    client
        .post("/compute/v2.1/servers", json!({"server": server}))
        .await
}

/// Uploads an image through the image API (create, then PUT the bytes)
/// and returns its id. `extra` adds fields to the create request
/// (`visibility`, properties such as `kernel_id`).
pub async fn upload_image(
    client: &Client,
    name: &str,
    disk_format: &str,
    data: Vec<u8>,
    extra: Value,
) -> String {
    let mut body = json!({"name": name, "disk_format": disk_format, "container_format": "bare"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = client.post("/image/v2/images", body).await;
    assert_eq!(r.status, 201, "image create: {}", r.body);
    let id = r.body["id"].as_str().expect("image id").to_owned();
    let put = client
        .request("PUT", &format!("/image/v2/images/{id}/file"))
        .header("content-type", "application/octet-stream")
        .body(data);
    let r = Client::finish(put).await;
    assert_eq!(r.status, 204, "image upload: {}", r.body);
    id
}
