//! cloud-conductor: the owner of multi-step workflows.
//!
//! It runs the build (schedule -> claim -> ports -> spawn on the host ->
//! wait for the report -> ACTIVE, rescheduling to another host when a spawn
//! fails) and delete workflows, applies everything compute agents report
//! (it is the only writer of that state, with generation-guarded updates),
//! and runs the reconcilers that make sure no server stays in a
//! transitional state forever: orphaned workflows are resumed, every task
//! has a deadline, VMs without a server are reaped.
//!
//! Workflow progress is persisted step by step with a lease, so several
//! conductors can run against one database and a dead one's work is
//! picked up by another (or by itself after a restart): at once, because
//! every conductor announces that it is alive (ADR 0009).

mod build;
pub mod config;
mod delete;
mod liveness;
mod network_state;
mod ports;
mod rebuild;
mod reconcile;
mod reports;
mod rescue;
mod shelve;
mod snapshot;
mod spec;

use cloud_bus::{Bus, CONDUCTOR_QUEUE, Delivery};
use cloud_model::Error;
use cloud_rpc::ConductorMsg;
use cloud_store::Store;
pub use config::ConductorConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Binary name in service records.
pub const BINARY: &str = "cloud-conductor";

/// One conductor.
pub struct Conductor {
    /// Our name as a workflow owner (unique per process).
    id: String,
    store: Store,
    bus: Arc<dyn Bus>,
    config: ConductorConfig,
    /// The workflows our handlers are running now.
    running: liveness::Running,
}

impl Conductor {
    /// A conductor over `store` and `bus`.
    pub fn new(store: Store, bus: Arc<dyn Bus>, config: ConductorConfig) -> Arc<Conductor> {
        Arc::new(Conductor {
            id: format!("conductor-{}", uuid::Uuid::new_v4().simple()),
            store,
            bus,
            config,
            running: liveness::Running::default(),
        })
    }

    /// Handles one message (public so tests can drive a conductor directly).
    pub async fn handle(
        self: &Arc<Self>,
        msg: ConductorMsg,
        request_id: &str,
    ) -> Result<(), Error> {
        match msg {
            ConductorMsg::BuildInstance { instance_id } => {
                self.build(instance_id, request_id).await
            }
            ConductorMsg::DeleteInstance { instance_id } => {
                self.delete(instance_id, request_id).await
            }
            ConductorMsg::Heartbeat { host, binary } => {
                self.store.service_heartbeat(&host, &binary).await
            }
            ConductorMsg::HostReport {
                host,
                availability_zone,
                resources,
                inventory,
                vms,
                startup,
                local_ip,
                network_node,
            } => {
                self.host_report(
                    &host,
                    &availability_zone,
                    &resources,
                    inventory,
                    &vms,
                    startup,
                    (local_ip, network_node),
                )
                .await
            }
            ConductorMsg::InstanceEvent {
                instance_id,
                host,
                generation,
                power_state,
                event,
            } => {
                self.instance_event(
                    instance_id,
                    &host,
                    generation,
                    power_state,
                    event,
                    request_id,
                )
                .await
            }
            ConductorMsg::RebuildInstance { instance_id } => {
                self.rebuild(instance_id, request_id).await
            }
            ConductorMsg::RescueInstance {
                instance_id,
                rescue_image_ref,
            } => {
                self.rescue(instance_id, &rescue_image_ref, request_id)
                    .await
            }
            ConductorMsg::UnshelveInstance { instance_id } => {
                self.unshelve(instance_id, request_id).await
            }
            ConductorMsg::PowerSync {
                host,
                generation,
                vms,
            } => self.power_sync(&host, generation, &vms, false).await,
            ConductorMsg::NetworkChanged {
                networks,
                security_groups,
                hosts,
            } => {
                self.network_changed(&networks, &security_groups, &hosts, request_id)
                    .await
            }
            // A call: answered in `dispatch`, which never passes it here.
            ConductorMsg::GetHostNetwork { .. } => Ok(()),
        }
    }

    /// Runs until `shutdown` resolves: consumes the conductor queue and
    /// runs the reconcilers.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut presence = self.store.conductor_presence(
            &self.id,
            &cloud_service_common::hostname(),
            self.config.liveness_timeout_secs,
        );
        // Announced before the first reconciler pass, which takes over the
        // work of conductors that died (our predecessor, if we restarted).
        if let Err(e) = presence.beat().await {
            tracing::warn!(error = %e, "cannot record the conductor's liveness yet");
        }
        let (stop_liveness, liveness_stop) = tokio::sync::oneshot::channel();
        let mut liveness = cloud_service_common::AbortOnDrop(tokio::spawn(
            self.clone().liveness_loop(presence, liveness_stop),
        ));
        let consumer = self.bus.consume(CONDUCTOR_QUEUE).await?;
        let reconciler =
            cloud_service_common::AbortOnDrop(tokio::spawn(self.clone().reconcile_loop()));
        let heartbeat =
            cloud_service_common::AbortOnDrop(tokio::spawn(self.clone().heartbeat_loop()));
        tracing::info!(id = %self.id, "conductor is up");
        let me = self.clone();
        cloud_service_common::worker::drain_queue(
            consumer,
            self.config.max_concurrent_messages,
            shutdown,
            move |d| {
                let me = me.clone();
                async move { me.dispatch(d).await }
            },
        )
        .await;
        drop(reconciler);
        drop(heartbeat);
        let _ = stop_liveness.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut liveness.0).await;
        tracing::info!(id = %self.id, "conductor stopped");
        Ok(())
    }

    async fn dispatch(self: &Arc<Self>, d: Delivery) {
        let request_id = d.envelope.request_id.clone();
        let span = tracing::info_span!("message", request_id = %request_id, kind = %d.envelope.kind, traceparent = d.envelope.traceparent.as_deref().unwrap_or(""));
        async {
            let msg: ConductorMsg = match cloud_rpc::decode(&d.envelope) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "dropping a message we cannot decode");
                    let _ = d.nack(false).await;
                    return;
                }
            };
            let kind = d.envelope.kind.clone();
            if let ConductorMsg::GetHostNetwork { host } = &msg {
                let reply = match self.host_network(host).await {
                    Ok(state) => cloud_rpc::Reply::Ok(state),
                    Err(e @ Error::Unavailable { .. }) => {
                        tracing::warn!(%host, error = %e, "cannot compute a host's network now");
                        cloud_rpc::Reply::Unavailable(e.to_string())
                    }
                    Err(e) => {
                        tracing::warn!(%host, error = %e, "cannot compute a host's network");
                        cloud_rpc::Reply::Err(e.to_string())
                    }
                };
                let sent = match cloud_rpc::encode_reply(&reply, &request_id) {
                    Ok(env) if d.expects_reply() => d.reply(env).await,
                    _ => d.ack().await,
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "cannot answer a host's network request");
                }
                return;
            }
            let result = self.handle(msg, &request_id).await;
            cloud_service_common::metrics::count(
                "cloud_conductor_messages_total",
                "Messages handled by the conductor, by kind and result.",
                &[
                    ("kind", &kind),
                    ("result", if result.is_ok() { "ok" } else { "error" }),
                ],
                1,
            );
            match result {
                Ok(()) => {
                    let _ = d.ack().await;
                }
                Err(e @ Error::Unavailable { .. }) => {
                    // The database or bus is down: let the message come back.
                    tracing::warn!(error = %e, "handling failed, will retry");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = d.nack(true).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "handling failed");
                    let _ = d.ack().await;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let host = cloud_service_common::hostname();
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            if let Err(e) = self.store.service_heartbeat(&host, BINARY).await {
                tracing::warn!(error = %e, "cannot record the conductor's heartbeat");
            }
        }
    }

    /// Sends a message to a queue.
    async fn cast<M: serde::Serialize>(
        &self,
        queue: &str,
        msg: &M,
        request_id: &str,
    ) -> Result<(), Error> {
        let env = cloud_rpc::encode(msg, request_id)?;
        self.bus.cast(queue, env).await?;
        Ok(())
    }
}
