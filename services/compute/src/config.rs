//! Configuration of a compute agent: the `[agent]` settings, and the
//! whole file of `cloud-compute --config FILE`.

use crate::driver_config::DriverConfig;
use crate::image_fetcher::ImageApiConfig;
use cloud_service_common::config::{BusConfig, MetricsConfig};
use serde::Deserialize;

/// The file of `cloud-compute --config FILE`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[agent]`: host name, zone, intervals, inventory.
    pub agent: AgentConfig,
    /// `[driver]`: `kind = "fake"` or `kind = "libvirt"` and its settings.
    pub driver: DriverConfig,
    /// `[image_api]`: the service account images are downloaded with, and
    /// snapshots uploaded with. Optional for the fake driver, which
    /// downloads nothing (without it, its snapshots fail saying so).
    #[serde(default)]
    pub image_api: Option<ImageApiConfig>,
    /// `[bus]`: the AMQP broker.
    pub bus: BusConfig,
    /// `[metrics]`: optional `/metrics` listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[network]`: how the host's data plane is wired (physical network
    /// mappings, state directory, metadata proxy). Its `local_ip` comes
    /// from `[agent] local_ip`.
    #[serde(default)]
    pub network: cloud_dataplane::DataPlaneConfig,
}

impl FileConfig {
    /// The data plane settings with what comes from elsewhere filled in:
    /// the underlay address from `[agent]`, the metadata secret from
    /// `CLOUD_METADATA_SECRET` when the file has none.
    pub fn network_config(&self) -> cloud_dataplane::DataPlaneConfig {
        let mut n = self.network.clone();
        n.local_ip = n.local_ip.or(self.agent.local_ip);
        if let Some(m) = &mut n.metadata
            && m.shared_secret.is_empty()
        {
            m.shared_secret = std::env::var("CLOUD_METADATA_SECRET").unwrap_or_default();
        }
        n
    }
}

/// The `[agent]` settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Host name; must be unique in the cloud.
    pub host: String,
    /// Availability zone of this host.
    #[serde(default = "default_az")]
    pub availability_zone: String,
    /// Seconds between heartbeats.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: f64,
    /// Seconds between power-state syncs.
    #[serde(default = "default_sync")]
    pub power_sync_secs: f64,
    /// How long a guest gets to shut down before it is forced off.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// Seconds between runs of the driver's housekeeping
    /// ([`cloud_driver::Driver::periodic_maintenance`]: image cache cleanup).
    #[serde(default = "default_maintenance")]
    pub maintenance_secs: f64,
    /// Operations handled at once (different VMs).
    #[serde(default = "default_concurrency")]
    pub max_concurrent_operations: usize,
    /// Reserved amounts and allocation ratios.
    #[serde(default)]
    pub inventory: InventoryConfig,
    /// The host's underlay address: the source of its VXLAN traffic, and
    /// where other hosts send the traffic of networks they share with it.
    /// Reported to the control plane. Without it the host carries only
    /// networks local to it (and flat/VLAN ones).
    #[serde(default)]
    pub local_ip: Option<std::net::Ipv4Addr>,
    /// Whether this host runs routers (the network role). Its data plane
    /// needs the external networks' physical interfaces.
    #[serde(default)]
    pub network_node: bool,
    /// Seconds between full pulls of the host's desired data plane, on top
    /// of the pulls the control plane asks for: a safety net for a lost
    /// message.
    #[serde(default = "default_network_resync")]
    pub network_resync_secs: f64,
    /// How long a spawn waits for the host's data plane to carry its ports
    /// before it fails (with the reason the last sync gave).
    #[serde(default = "default_ports_ready")]
    pub ports_ready_timeout_secs: f64,
}

/// What the scheduler may allocate on this host.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// vCPU overcommit (Nova's default 16 is for fake clouds; 4.0 is sane).
    pub cpu_allocation_ratio: f64,
    /// RAM overcommit.
    pub ram_allocation_ratio: f64,
    /// Disk overcommit.
    pub disk_allocation_ratio: f64,
    /// CPUs kept for the host.
    pub reserved_host_cpus: i64,
    /// RAM kept for the host, MiB.
    pub reserved_host_memory_mb: i64,
    /// Disk kept for the host, GiB.
    pub reserved_host_disk_gb: i64,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            cpu_allocation_ratio: 1.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            reserved_host_cpus: 0,
            reserved_host_memory_mb: 0,
            reserved_host_disk_gb: 0,
        }
    }
}

impl InventoryConfig {
    /// `(class, reserved, ratio)` as the conductor records them.
    pub fn as_list(&self) -> Vec<(String, i64, f64)> {
        vec![
            (
                "VCPU".to_owned(),
                self.reserved_host_cpus,
                self.cpu_allocation_ratio,
            ),
            (
                "MEMORY_MB".to_owned(),
                self.reserved_host_memory_mb,
                self.ram_allocation_ratio,
            ),
            (
                "DISK_GB".to_owned(),
                self.reserved_host_disk_gb,
                self.disk_allocation_ratio,
            ),
        ]
    }
}

fn default_az() -> String {
    "nova".to_owned()
}

fn default_heartbeat() -> f64 {
    5.0
}

fn default_sync() -> f64 {
    30.0
}

fn default_network_resync() -> f64 {
    60.0
}

fn default_ports_ready() -> f64 {
    30.0
}

fn default_maintenance() -> f64 {
    600.0
}

fn default_shutdown_timeout() -> u64 {
    60
}

fn default_concurrency() -> usize {
    64
}

impl AgentConfig {
    /// Defaults for a host named `host`.
    pub fn for_host(host: &str) -> Self {
        AgentConfig {
            host: host.to_owned(),
            availability_zone: default_az(),
            heartbeat_secs: default_heartbeat(),
            power_sync_secs: default_sync(),
            maintenance_secs: default_maintenance(),
            shutdown_timeout_secs: default_shutdown_timeout(),
            max_concurrent_operations: default_concurrency(),
            inventory: InventoryConfig::default(),
            local_ip: None,
            network_node: false,
            network_resync_secs: default_network_resync(),
            ports_ready_timeout_secs: default_ports_ready(),
        }
    }
}
