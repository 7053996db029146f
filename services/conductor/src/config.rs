//! Configuration of the conductor.

use serde::Deserialize;

/// Timeouts and limits of the workflows and reconcilers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConductorConfig {
    /// A host whose last heartbeat is older than this is down.
    pub service_down_secs: i64,
    /// How long a host may take to spawn a VM before the attempt counts as
    /// failed (and the build moves to another host).
    pub spawn_timeout_secs: i64,
    /// How long a stop/start/reboot may take before its task is cleared.
    pub action_timeout_secs: i64,
    /// How long a host may take to destroy a VM before the delete completes
    /// without it (the host reaps the VM when it comes back).
    pub delete_timeout_secs: i64,
    /// Hosts tried per build (Nova's `max_attempts`).
    pub max_build_attempts: usize,
    /// Lease of a workflow step; another conductor takes over after it,
    /// or at once when the holder is known to be dead (ADR 0009).
    pub lease_secs: i64,
    /// Seconds between the conductor's liveness heartbeats.
    pub heartbeat_secs: f64,
    /// A conductor whose last heartbeat is older than this is dead (on
    /// PostgreSQL a killed conductor is known dead sooner: its session
    /// ends with it).
    pub liveness_timeout_secs: i64,
    /// Seconds between reconciler passes.
    pub reconcile_interval_secs: f64,
    /// How long to wait for a scheduler's answer.
    pub scheduler_timeout_secs: u64,
    /// Destroy VMs that hosts report but that belong to no live server.
    pub reap_orphans: bool,
    /// Messages handled at once.
    pub max_concurrent_messages: usize,
    /// Seconds a SHELVED server keeps its host's resources before it is
    /// offloaded (Nova's `shelved_offload_time`): 0 offloads at once after
    /// the shelve, -1 never (only `shelveOffload` does).
    pub shelved_offload_time: i64,
}

impl Default for ConductorConfig {
    fn default() -> Self {
        ConductorConfig {
            service_down_secs: 60,
            spawn_timeout_secs: 600,
            action_timeout_secs: 300,
            delete_timeout_secs: 120,
            max_build_attempts: 3,
            lease_secs: 60,
            heartbeat_secs: 2.0,
            liveness_timeout_secs: 15,
            reconcile_interval_secs: 5.0,
            scheduler_timeout_secs: 60,
            reap_orphans: true,
            max_concurrent_messages: 256,
            shelved_offload_time: 0,
        }
    }
}

/// The file of `cloud-conductor --config FILE`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[database]`.
    pub database: cloud_service_common::config::DatabaseConfig,
    /// `[bus]`.
    pub bus: cloud_service_common::config::BusConfig,
    /// `[conductor]`.
    #[serde(default)]
    pub conductor: ConductorConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: cloud_service_common::config::MetricsConfig,
}
