//! cloud-scheduler: picks a host for each server and claims its resources.
//!
//! For a `select_destinations` call it reads the request (flavor, image
//! properties, group, zone) from the store, narrows the hosts with a SQL
//! prefilter (enabled, alive, enough free resources), runs the filters
//! and weighers of `cloud-scheduler-core` on that snapshot, and claims the
//! best host atomically (placement's conditional updates: two schedulers
//! racing for the last slot cannot both win; the loser moves on to the
//! next candidate or a fresh snapshot). When nothing fits it explains, per
//! filter, why every host was removed. It keeps no state between calls,
//! so any number of replicas may run.

pub mod config;
mod snapshot;

use cloud_bus::{Bus, Delivery, SCHEDULER_QUEUE};
use cloud_model::instance::GroupPolicy as ModelPolicy;
use cloud_model::{Error, InstanceId, Timestamp};
use cloud_rpc::{Reply, SchedulerMsg, Selection};
use cloud_scheduler_core::{GroupPolicy, GroupSpec, RequestSpec, select};
use cloud_store::{Claim, ClaimError, Prefilter, Scope, Store};
pub use config::SchedulerConfig;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument;

/// Binary name in service records.
pub const BINARY: &str = "cloud-scheduler";

/// Counters a benchmark reads.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    /// Selections answered with a host.
    pub selected: AtomicU64,
    /// Selections answered with "no valid host".
    pub no_valid_host: AtomicU64,
    /// Claims lost to a concurrent claim and retried elsewhere.
    pub claims_retried: AtomicU64,
}

/// One scheduler.
pub struct Scheduler {
    store: Store,
    bus: Arc<dyn Bus>,
    config: SchedulerConfig,
    stats: SchedulerStats,
}

impl Scheduler {
    /// A scheduler over `store` answering on `bus`.
    pub fn new(store: Store, bus: Arc<dyn Bus>, config: SchedulerConfig) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            store,
            bus,
            config,
            stats: SchedulerStats::default(),
        })
    }

    /// Counters since start.
    pub fn stats(&self) -> &SchedulerStats {
        &self.stats
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let consumer = self.bus.consume(SCHEDULER_QUEUE).await?;
        let heartbeat =
            cloud_service_common::AbortOnDrop(tokio::spawn(self.clone().heartbeat_loop()));
        tracing::info!("scheduler is up");
        let me = self.clone();
        cloud_service_common::worker::drain_queue(
            consumer,
            self.config.max_concurrent_requests,
            shutdown,
            move |d| {
                let me = me.clone();
                async move { me.dispatch(d).await }
            },
        )
        .await;
        drop(heartbeat);
        tracing::info!("scheduler stopped");
        Ok(())
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let host = cloud_service_common::hostname();
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            if let Err(e) = self.store.service_heartbeat(&host, BINARY).await {
                tracing::warn!(error = %e, "cannot record the scheduler's heartbeat");
            }
        }
    }

    async fn dispatch(&self, d: Delivery) {
        let request_id = d.envelope.request_id.clone();
        let span = tracing::info_span!("message", request_id = %request_id, kind = %d.envelope.kind, traceparent = d.envelope.traceparent.as_deref().unwrap_or(""));
        async {
            let reply = match cloud_rpc::decode::<SchedulerMsg>(&d.envelope) {
                Ok(SchedulerMsg::SelectDestinations {
                    instance_id,
                    ignore_hosts,
                    num_alternates,
                }) => match self
                    .select_destinations(instance_id, &ignore_hosts, num_alternates)
                    .await
                {
                    Ok(r) => r,
                    Err(e @ cloud_model::Error::Unavailable { .. }) => {
                        tracing::warn!(error = %e, "scheduling could not run now");
                        Reply::Unavailable(e.external_message())
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "scheduling failed");
                        Reply::Err(format!("Scheduling failed: {}", e.external_message()))
                    }
                },
                Err(e) => Reply::Err(format!("bad request: {e}")),
            };
            let sent = match cloud_rpc::encode_reply(&reply, &request_id) {
                Ok(env) => d.reply(env).await,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode the reply");
                    d.ack().await
                }
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cannot send the reply");
            }
        }
        .instrument(span)
        .await
    }

    /// Picks and claims a host for `instance_id`.
    pub async fn select_destinations(
        &self,
        instance_id: InstanceId,
        ignore_hosts: &[String],
        num_alternates: u32,
    ) -> Result<Reply<Selection>, Error> {
        let started = std::time::Instant::now();
        let inst = self.store.instance_get_any(instance_id).await?;
        let image = self.store.image_get(inst.image_id, &Scope::All).await.ok();
        let group = match inst.server_group_id {
            Some(g) => {
                let grp = self.store.server_group_get(g, &Scope::All).await?;
                Some(GroupSpec {
                    id: g,
                    policy: match grp.policy {
                        ModelPolicy::Affinity => GroupPolicy::Affinity,
                        ModelPolicy::AntiAffinity => GroupPolicy::AntiAffinity,
                        ModelPolicy::SoftAffinity => GroupPolicy::SoftAffinity,
                        ModelPolicy::SoftAntiAffinity => GroupPolicy::SoftAntiAffinity,
                    },
                    member_hosts: self.store.server_group_hosts(g, instance_id).await?,
                })
            }
            None => None,
        };
        let spec = RequestSpec {
            vcpus: inst.flavor.vcpus,
            memory_mb: inst.flavor.ram_mb,
            disk_gb: inst.flavor.disk_gb,
            extra_specs: inst.flavor.extra_specs.clone(),
            image_properties: image.map(|i| i.properties).unwrap_or_default(),
            availability_zone: Some(inst.availability_zone.clone()).filter(|z| z != "nova"),
            group,
            ignore_hosts: ignore_hosts.to_vec(),
            num_instances: 1,
            seed: instance_id.as_uuid().as_u64_pair().0,
        };
        let want = num_alternates as usize + 1;
        for round in 0..self.config.claim_rounds.max(1) {
            let prefilter = Prefilter {
                vcpus: spec.vcpus,
                memory_mb: spec.memory_mb,
                disk_gb: spec.disk_gb,
                seen_after: Timestamp::now().plus_seconds(-self.config.service_down_secs),
            };
            let nodes = self.store.compute_nodes_prefiltered(&prefilter).await?;
            let (hosts, providers) =
                snapshot::host_states(&self.store, nodes, &spec, &self.config).await?;
            let selection = match select(&spec, &hosts, &self.config.weighers, want + 8) {
                Ok(s) => s,
                Err(_) => break,
            };
            for (i, cand) in selection.candidates.iter().enumerate() {
                let Some(provider) = providers.get(&cand.host) else {
                    continue;
                };
                let claim = Claim {
                    provider_id: *provider,
                    host: cand.host.clone(),
                    consumer: instance_id,
                    vcpus: spec.vcpus,
                    memory_mb: spec.memory_mb,
                    disk_gb: spec.disk_gb,
                    pinned_cpus: cand
                        .numa
                        .as_ref()
                        .map(|n| n.cells.iter().flat_map(|c| c.host_cpus.clone()).collect())
                        .unwrap_or_default(),
                    hugepages: cand
                        .numa
                        .as_ref()
                        .and_then(|n| {
                            n.page_size_kb.map(|kb| {
                                n.cells
                                    .iter()
                                    .map(|c| (c.host_cell, kb, (c.memory_mb * 1024).div_ceil(kb)))
                                    .collect()
                            })
                        })
                        .unwrap_or_default(),
                };
                match self.store.placement_claim(&claim).await? {
                    Ok(()) => {
                        self.stats.selected.fetch_add(1, Ordering::Relaxed);
                        cloud_service_common::metrics::observe(
                            "cloud_scheduler_select_seconds",
                            "Time to pick and claim a host.",
                            &[],
                            started.elapsed().as_secs_f64(),
                        );
                        let alternates = selection.candidates[i + 1..]
                            .iter()
                            .take(num_alternates as usize)
                            .map(|c| c.host.clone())
                            .collect();
                        tracing::info!(
                            instance = %instance_id,
                            host = %cand.host,
                            round,
                            candidates = hosts.len(),
                            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                            "claimed"
                        );
                        return Ok(Reply::Ok(Selection {
                            host: cand.host.clone(),
                            numa: cand.numa.clone(),
                            alternates,
                        }));
                    }
                    Err(ClaimError::Capacity { class }) => {
                        self.stats.claims_retried.fetch_add(1, Ordering::Relaxed);
                        cloud_service_common::metrics::count(
                            "cloud_scheduler_claims_retried_total",
                            "Claims lost to a concurrent claim.",
                            &[],
                            1,
                        );
                        tracing::debug!(host = %cand.host, %class, "lost a claim race; trying the next host");
                    }
                    Err(ClaimError::CpuTaken { cpu }) => {
                        self.stats.claims_retried.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(host = %cand.host, cpu, "CPU pinned meanwhile; trying the next host");
                    }
                }
            }
        }
        // Nothing fits (or every claim was lost): explain with every host.
        self.stats.no_valid_host.fetch_add(1, Ordering::Relaxed);
        cloud_service_common::metrics::count(
            "cloud_scheduler_no_valid_host_total",
            "Requests no host could take.",
            &[],
            1,
        );
        let all = self.store.compute_nodes().await?;
        let (hosts, _) = snapshot::host_states(&self.store, all, &spec, &self.config).await?;
        let message = match select(&spec, &hosts, &self.config.weighers, 1) {
            Err(nvh) => nvh.to_string(),
            Ok(_) => {
                // Hosts still fit: every claim was lost to concurrent
                // requests. That is the system's to retry, not the user's:
                // the conductor asks again (the request comes back).
                tracing::info!(instance = %instance_id, "every claim lost to concurrent requests; retrying later");
                return Ok(Reply::Unavailable(
                    "every fitting host was claimed by concurrent requests".to_owned(),
                ));
            }
        };
        tracing::info!(instance = %instance_id, %message, "no valid host");
        Ok(Reply::Err(message))
    }
}
