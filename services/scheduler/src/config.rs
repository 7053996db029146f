//! Configuration of the scheduler.

use cloud_scheduler_core::WeigherConfig;
use serde::Deserialize;

/// Scheduler settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// A host whose last heartbeat is older than this is down.
    pub service_down_secs: i64,
    /// How many times to re-read the hosts after losing every claim race.
    pub claim_rounds: usize,
    /// Build failures younger than this count against a host.
    pub failure_window_secs: i64,
    /// Requests handled at once.
    pub max_concurrent_requests: usize,
    /// Weigher multipliers.
    pub weighers: WeigherConfig,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            service_down_secs: 60,
            claim_rounds: 3,
            failure_window_secs: 3600,
            max_concurrent_requests: 64,
            weighers: WeigherConfig::default(),
        }
    }
}

/// The file of `cloud-scheduler --config FILE`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[database]`.
    pub database: cloud_service_common::config::DatabaseConfig,
    /// `[bus]`.
    pub bus: cloud_service_common::config::BusConfig,
    /// `[scheduler]`.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: cloud_service_common::config::MetricsConfig,
}
