//! cloud-compute: the agent on each hypervisor host.
//!
//! It consumes its host's queue (`compute.<host>`), drives the hypervisor
//! through a [`Driver`], and reports everything it learns to the conductor
//! over the bus: inventory at start, heartbeats, the outcome of every
//! operation, and a periodic power-state sync. It has no database
//! credentials; the conductor is the only writer of what agents report.
//!
//! Work on one VM is serialized (a lock per instance) while different VMs
//! are handled concurrently. Every operation is idempotent, because a
//! message may be delivered twice.

pub mod config;
pub mod driver_config;
pub mod image_fetcher;
pub mod network_sync;
mod snapshot;
pub use snapshot::default_scratch_dir;

use cloud_bus::{Bus, CONDUCTOR_QUEUE, Delivery, compute_queue};
use cloud_driver::{Driver, DriverError, NicSpec, RebootKind, VmInfo};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use cloud_rpc::{ComputeMsg, ConductorMsg, ConsoleOutput, CrashDump, HostEvent, HostReply, Reply};
pub use config::{AgentConfig, FileConfig, InventoryConfig};
pub use driver_config::{DriverConfig, build_driver};
pub use image_fetcher::{HttpImageFetcher, ImageApiConfig};
use network_sync::NetworkSync;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// Binary name of the compute service in service records.
pub const BINARY: &str = "cloud-compute";

/// One compute agent.
pub struct Agent {
    config: AgentConfig,
    bus: Arc<dyn Bus>,
    driver: Arc<dyn Driver>,
    generation: AtomicI64,
    locks: Mutex<HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>,
    network: Arc<NetworkSync>,
    /// Where snapshots are uploaded ([`Agent::with_image_api`]).
    snapshot_uploads: std::sync::OnceLock<snapshot::SnapshotUploads>,
}

impl Agent {
    /// An agent for `config.host`, talking over `bus`, driving `driver`.
    pub fn new(config: AgentConfig, bus: Arc<dyn Bus>, driver: Arc<dyn Driver>) -> Arc<Agent> {
        let network = NetworkSync::new(&config.host, bus.clone(), driver.clone());
        Arc::new(Agent {
            config,
            bus,
            driver,
            generation: AtomicI64::new(0),
            locks: Mutex::new(HashMap::new()),
            network,
            snapshot_uploads: std::sync::OnceLock::new(),
        })
    }

    /// The host name.
    pub fn host(&self) -> &str {
        &self.config.host
    }

    /// The driver (tests and the all-in-one binary use it to inject faults).
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The data plane sync (tests wait on it).
    pub fn network(&self) -> &Arc<NetworkSync> {
        &self.network
    }

    /// A generation for the next report: strictly increasing, and larger
    /// than any generation from before a restart (it starts from the clock).
    fn next_generation(&self) -> i64 {
        let now = cloud_model::Timestamp::now().micros();
        let mut cur = self.generation.load(Ordering::SeqCst);
        loop {
            let next = (cur + 1).max(now);
            match self
                .generation
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    fn lock_for(&self, id: InstanceId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("locks")
            .entry(id)
            .or_default()
            .clone()
    }

    async fn send(&self, msg: &ConductorMsg, request_id: &str) {
        match cloud_rpc::encode(msg, request_id) {
            Ok(env) => {
                if let Err(e) = self.bus.cast(CONDUCTOR_QUEUE, env).await {
                    tracing::warn!(error = %e, "cannot report to the conductor");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a report"),
        }
    }

    /// Reports the host's resources and VMs to the conductor.
    pub async fn report_host(&self, startup: bool) -> Result<(), DriverError> {
        let resources = self.driver.host_resources().await?;
        let vms = self.driver.list().await?;
        let msg = ConductorMsg::HostReport {
            host: self.config.host.clone(),
            availability_zone: self.config.availability_zone.clone(),
            resources,
            inventory: self.config.inventory.as_list(),
            vms,
            startup,
            local_ip: self.config.local_ip,
            network_node: self.config.network_node,
        };
        self.send(&msg, "req-host-report").await;
        Ok(())
    }

    async fn report_event(&self, id: InstanceId, request_id: &str, event: HostEvent) {
        let power_state = match self.driver.info(id).await {
            Ok(info) => info.power_state,
            Err(_) => PowerState::NoState,
        };
        let msg = ConductorMsg::InstanceEvent {
            instance_id: id,
            host: self.config.host.clone(),
            generation: self.next_generation(),
            power_state,
            event,
        };
        self.send(&msg, request_id).await;
    }

    /// Handles one message (public so tests can drive an agent directly).
    pub async fn handle(&self, msg: ComputeMsg, request_id: &str) -> Option<HostReply> {
        let shutdown_timeout = Duration::from_secs(self.config.shutdown_timeout_secs);
        match msg {
            ComputeMsg::Spawn { spec } => {
                let id = spec.id;
                let lock = self.lock_for(id);
                let _g = lock.lock().await;
                let ports: Vec<String> = spec.nics.iter().map(|n| n.port_id.clone()).collect();
                let ready = self
                    .network
                    .wait_for_ports(
                        &ports,
                        Duration::from_secs_f64(self.config.ports_ready_timeout_secs),
                    )
                    .await;
                let spawned = match ready {
                    Ok(()) => self.driver.spawn(&spec).await,
                    Err(why) => Err(DriverError::backend(
                        cloud_driver::Op::Spawn,
                        id,
                        anyhow::anyhow!(why),
                    )),
                };
                let event = match spawned {
                    Ok(()) => HostEvent::Spawned,
                    Err(e) => {
                        tracing::warn!(instance = %id, error = %e.full_message(), "spawn failed");
                        // Leave nothing behind on this host.
                        let _ = self.driver.destroy(id).await;
                        HostEvent::SpawnFailed {
                            message: e.full_message(),
                        }
                    }
                };
                self.report_event(id, request_id, event).await;
                None
            }
            ComputeMsg::Destroy { instance_id } => {
                let lock = self.lock_for(instance_id);
                let _g = lock.lock().await;
                match self.driver.destroy(instance_id).await {
                    Ok(()) => {
                        self.report_event(instance_id, request_id, HostEvent::Destroyed)
                            .await;
                    }
                    Err(e) => {
                        tracing::error!(instance = %instance_id, error = %e.full_message(), "destroy failed")
                    }
                }
                drop(_g);
                self.locks.lock().expect("locks").remove(&instance_id);
                None
            }
            ComputeMsg::PowerOn { instance_id } => {
                self.power_action(instance_id, request_id, "start", async {
                    self.driver
                        .power_on(instance_id)
                        .await
                        .map(|_| HostEvent::PoweredOn)
                })
                .await;
                None
            }
            ComputeMsg::PowerOff { instance_id } => {
                self.power_action(instance_id, request_id, "stop", async {
                    self.driver
                        .power_off(instance_id, shutdown_timeout)
                        .await
                        .map(|_| HostEvent::PoweredOff)
                })
                .await;
                None
            }
            ComputeMsg::Reboot { instance_id, kind } => {
                self.power_action(instance_id, request_id, "reboot", async {
                    self.driver
                        .reboot(instance_id, kind)
                        .await
                        .map(|_| HostEvent::Rebooted)
                })
                .await;
                None
            }
            ComputeMsg::Pause { instance_id } => {
                let op = self.driver.pause(instance_id);
                self.power_action(instance_id, request_id, "pause", async {
                    op.await.map(|_| HostEvent::Paused)
                })
                .await;
                None
            }
            ComputeMsg::Unpause { instance_id } => {
                let op = self.driver.unpause(instance_id);
                self.power_action(instance_id, request_id, "unpause", async {
                    op.await.map(|_| HostEvent::Unpaused)
                })
                .await;
                None
            }
            ComputeMsg::Suspend { instance_id } => {
                let op = self.driver.suspend(instance_id);
                self.power_action(instance_id, request_id, "suspend", async {
                    op.await.map(|_| HostEvent::Suspended)
                })
                .await;
                None
            }
            ComputeMsg::Resume { instance_id } => {
                let op = self.driver.resume(instance_id);
                self.power_action(instance_id, request_id, "resume", async {
                    op.await.map(|_| HostEvent::Resumed)
                })
                .await;
                None
            }
            ComputeMsg::Rebuild { spec } => {
                let id = spec.id;
                let ports: Vec<String> = spec.nics.iter().map(|n| n.port_id.clone()).collect();
                self.power_action(id, request_id, "rebuild", async {
                    // A stopped server stays stopped (Nova): a guest that
                    // was off is powered off again once rebuilt.
                    let was_off = matches!(
                        self.driver.info(id).await.map(|i| i.power_state),
                        Ok(PowerState::Shutdown)
                    );
                    self.network
                        .wait_for_ports(
                            &ports,
                            Duration::from_secs_f64(self.config.ports_ready_timeout_secs),
                        )
                        .await
                        .map_err(|why| {
                            DriverError::backend(
                                cloud_driver::Op::Rebuild,
                                id,
                                anyhow::anyhow!(why),
                            )
                        })?;
                    self.driver.rebuild(&spec).await?;
                    if was_off {
                        self.driver.power_off(id, shutdown_timeout).await?;
                    }
                    Ok(HostEvent::Rebuilt)
                })
                .await;
                None
            }
            ComputeMsg::Snapshot {
                instance_id,
                image_id,
            } => {
                let lock = self.lock_for(instance_id);
                let _g = lock.lock().await;
                let event = match self.capture_and_upload(instance_id, &image_id).await {
                    Ok(()) => HostEvent::Snapshotted { image_id },
                    Err(message) => HostEvent::SnapshotFailed { image_id, message },
                };
                self.report_event(instance_id, request_id, event).await;
                None
            }
            ComputeMsg::Shelve {
                instance_id,
                image_id,
            } => {
                self.power_action(instance_id, request_id, "shelve", async {
                    self.capture_and_upload(instance_id, &image_id)
                        .await
                        .map_err(|m| {
                            DriverError::backend(
                                cloud_driver::Op::Snapshot,
                                instance_id,
                                anyhow::anyhow!(m),
                            )
                        })?;
                    self.driver
                        .power_off(instance_id, shutdown_timeout)
                        .await
                        .map(|_| HostEvent::Shelved { image_id })
                })
                .await;
                None
            }
            ComputeMsg::Rescue { spec, rescue_image } => {
                self.power_action(spec.id, request_id, "rescue", async {
                    self.driver
                        .rescue(&spec, &rescue_image)
                        .await
                        .map(|_| HostEvent::Rescued)
                })
                .await;
                None
            }
            ComputeMsg::Unrescue { instance_id } => {
                self.power_action(instance_id, request_id, "unrescue", async {
                    self.driver
                        .unrescue(instance_id)
                        .await
                        .map(|_| HostEvent::Unrescued)
                })
                .await;
                None
            }
            ComputeMsg::SerialConsole { instance_id } => Some(HostReply::Serial(
                match self.driver.serial_console(instance_id).await {
                    Ok(endpoint) => Reply::Ok(endpoint),
                    Err(e) => Reply::Err(e.to_string()),
                },
            )),
            ComputeMsg::AttachInterface { instance_id, nic } => Some(HostReply::Interface(
                interface_reply(instance_id, self.attach_interface(instance_id, &nic).await),
            )),
            ComputeMsg::DetachInterface { instance_id, nic } => {
                let lock = self.lock_for(instance_id);
                let _g = lock.lock().await;
                let done = self.driver.detach_interface(instance_id, &nic).await;
                Some(HostReply::Interface(interface_reply(instance_id, done)))
            }
            ComputeMsg::SyncNetwork { reason } => {
                tracing::debug!(%reason, "network sync requested");
                self.network.request();
                None
            }
            ComputeMsg::ConsoleOutput {
                instance_id,
                max_bytes,
            } => Some(HostReply::Console(
                match self.driver.console_output(instance_id, max_bytes).await {
                    Ok(output) => Reply::Ok(ConsoleOutput { output }),
                    Err(e) => Reply::Err(e.to_string()),
                },
            )),
            ComputeMsg::TriggerCrashDump { instance_id } => Some(HostReply::CrashDump(match self
                .driver
                .inject_nmi(instance_id)
                .await
            {
                Ok(()) => Reply::Ok(CrashDump::Injected),
                Err(e @ DriverError::Unsupported { .. }) => Reply::Ok(CrashDump::Unsupported {
                    message: e.to_string(),
                }),
                Err(e) => {
                    tracing::warn!(instance = %instance_id, error = %e.full_message(), "NMI failed");
                    Reply::Err(e.to_string())
                }
            })),
        }
    }

    /// Plugs `nic` into VM `id` once the host's data plane carries its
    /// port (the API bound it to this host just before).
    async fn attach_interface(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        let lock = self.lock_for(id);
        let _g = lock.lock().await;
        self.network
            .wait_for_ports(
                std::slice::from_ref(&nic.port_id),
                Duration::from_secs_f64(self.config.ports_ready_timeout_secs),
            )
            .await
            .map_err(|why| {
                DriverError::backend(cloud_driver::Op::AttachInterface, id, anyhow::anyhow!(why))
            })?;
        self.driver.attach_interface(id, nic).await
    }

    async fn power_action(
        &self,
        id: InstanceId,
        request_id: &str,
        action: &str,
        op: impl Future<Output = Result<HostEvent, DriverError>>,
    ) {
        let lock = self.lock_for(id);
        let _g = lock.lock().await;
        let event = match op.await {
            Ok(ev) => ev,
            Err(e) => HostEvent::ActionFailed {
                action: action.to_owned(),
                message: e.full_message(),
            },
        };
        self.report_event(id, request_id, event).await;
    }

    /// Runs the agent until `shutdown` resolves: reports the host, then
    /// consumes its queue, heartbeats and syncs power states.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let consumer = self.bus.consume(&compute_queue(&self.config.host)).await?;
        let mut report_attempts = 0;
        while let Err(e) = self.report_host(true).await {
            report_attempts += 1;
            tracing::warn!(error = %e.full_message(), "cannot read host resources; retrying");
            if report_attempts > 5 {
                return Err(anyhow::anyhow!(
                    "cannot read host resources: {}",
                    e.full_message()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!(host = %self.config.host, driver = self.driver.kind(), "compute agent is up");
        let heartbeat =
            cloud_service_common::AbortOnDrop(tokio::spawn(self.clone().heartbeat_loop()));
        let sync = cloud_service_common::AbortOnDrop(tokio::spawn(self.clone().power_sync_loop()));
        let maintenance =
            cloud_service_common::AbortOnDrop(tokio::spawn(self.clone().maintenance_loop()));
        let network = cloud_service_common::AbortOnDrop(tokio::spawn(self.network.clone().run(
            Duration::from_secs_f64(self.config.network_resync_secs.max(1.0)),
        )));
        let me = self.clone();
        cloud_service_common::worker::drain_queue(
            consumer,
            self.config.max_concurrent_operations,
            shutdown,
            move |d| {
                let me = me.clone();
                async move { me.dispatch(d).await }
            },
        )
        .await;
        drop(heartbeat);
        drop(sync);
        drop(maintenance);
        drop(network);
        // Let in-flight operations finish.
        tracing::info!(host = %self.config.host, "compute agent stopped");
        Ok(())
    }

    async fn dispatch(&self, d: Delivery) {
        let request_id = d.envelope.request_id.clone();
        let span = tracing::info_span!("message", request_id = %request_id, kind = %d.envelope.kind, host = %self.config.host, traceparent = d.envelope.traceparent.as_deref().unwrap_or(""));
        async {
            let msg: ComputeMsg = match cloud_rpc::decode(&d.envelope) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "dropping a message we cannot decode");
                    let _ = d.nack(false).await;
                    return;
                }
            };
            tracing::debug!("handling");
            let started = std::time::Instant::now();
            let kind = d.envelope.kind.clone();
            let reply = self.handle(msg, &request_id).await;
            cloud_service_common::metrics::observe(
                "cloud_compute_operation_seconds",
                "Time a compute agent spends on a message, by kind.",
                &[("kind", &kind)],
                started.elapsed().as_secs_f64(),
            );
            let result = match reply {
                Some(r) if d.expects_reply() => match cloud_rpc::encode_host_reply(&r, &request_id)
                {
                    Ok(env) => d.reply(env).await,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode reply");
                        d.ack().await
                    }
                },
                _ => d.ack().await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot acknowledge a message");
            }
        }
        .instrument(span)
        .await
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(self.config.heartbeat_secs));
        loop {
            tick.tick().await;
            let msg = ConductorMsg::Heartbeat {
                host: self.config.host.clone(),
                binary: BINARY.to_owned(),
            };
            self.send(&msg, "req-heartbeat").await;
        }
    }

    /// Runs the driver's housekeeping every `maintenance_secs` (not at
    /// start: a restarting agent has more urgent work).
    async fn maintenance_loop(self: Arc<Self>) {
        let period = Duration::from_secs_f64(self.config.maintenance_secs.max(1.0));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.driver.periodic_maintenance().await;
        }
    }

    async fn power_sync_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(self.config.power_sync_secs));
        tick.tick().await;
        loop {
            tick.tick().await;
            let vms: Vec<VmInfo> = match self.driver.list().await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e.full_message(), "power sync: cannot list VMs");
                    continue;
                }
            };
            let msg = ConductorMsg::PowerSync {
                host: self.config.host.clone(),
                generation: self.next_generation(),
                vms,
            };
            self.send(&msg, "req-power-sync").await;
        }
    }
}

/// Maps a reboot kind from the API's words.
pub fn reboot_kind(hard: bool) -> RebootKind {
    if hard {
        RebootKind::Hard
    } else {
        RebootKind::Soft
    }
}

/// The reply to an interface attach or detach: the driver's error in
/// words for the user.
fn interface_reply(id: InstanceId, done: Result<(), DriverError>) -> Reply<()> {
    match done {
        Ok(()) => Reply::Ok(()),
        Err(e) => {
            tracing::warn!(instance = %id, error = %e.full_message(), "interface change failed");
            Reply::Err(e.full_message())
        }
    }
}
