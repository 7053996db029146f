//! Configuration of the API service (`cloud-api --config FILE`).

use cloud_model::quota::QuotaDefaults;
use cloud_store::VniRange;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The `[api]`-level settings of cloud-api.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// URL clients reach us at, used in the catalog and links. When unset,
    /// links are built from each request's `Host` header.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Database URL. `DATABASE_URL` in the environment overrides it, so the
    /// password need not be written in the file.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Where image bytes are stored.
    pub data_dir: PathBuf,
    /// Region name in the catalog.
    #[serde(default = "default_region")]
    pub region: String,
    /// Token lifetime.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_seconds: i64,
    /// How often, at most, this API purges expired tokens: the first token
    /// issued after the interval starts a purge in the background (the
    /// table grows only when tokens are issued).
    #[serde(default = "default_token_purge_interval")]
    pub token_purge_interval_secs: u64,
    /// How often this API removes image files whose image record is gone
    /// (the conductor deletes the records of failed snapshots and of used
    /// shelve snapshots, but the files live with the API). 0: never.
    #[serde(default = "default_image_sweep_interval")]
    pub image_sweep_interval_secs: u64,
    /// Largest JSON body accepted.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Default quotas.
    #[serde(default)]
    pub quotas: QuotaDefaults,
    /// A service whose last heartbeat is older than this shows as down.
    #[serde(default = "default_down")]
    pub service_down_secs: i64,
    /// First-start bootstrap.
    #[serde(default)]
    pub bootstrap: BootstrapConfig,
    /// Segments of networks (`[api.network]`).
    #[serde(default)]
    pub network: NetworkConfig,
    /// The metadata endpoint for guests (`[api.metadata]`).
    #[serde(default = "MetadataConfig::from_env")]
    pub metadata: MetadataConfig,
    /// Longest a client may take to send a request's headers, counted
    /// from its first byte (or from connecting, for the first request);
    /// slower connections are closed (slowloris).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: f64,
    /// A kept-alive connection with no request in progress is closed
    /// after this long.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: f64,
    /// Most client connections open at once. At the cap a new connection
    /// closes the longest-idle one, or waits briefly for one to finish and
    /// is closed if none does. Lowered at start to fit the process's
    /// open-file limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Where to serve Prometheus `/metrics` (a separate listener, for the
    /// operators' network only); unset, metrics are not served. The main
    /// listener never serves them.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Serial console URLs and their proxy (`[api.serial_console]`).
    #[serde(default)]
    pub serial_console: crate::console_proxy::SerialConsoleConfig,
}

/// The guests' metadata endpoint (`/metadata`, Nova's metadata API behind
/// the host data plane's proxy). It serves only requests whose
/// `X-Instance-ID-Signature` verifies under `shared_secret`, so without a
/// secret it serves nothing.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    /// The secret shared with the metadata proxies (Nova's
    /// `metadata_proxy_shared_secret`). `CLOUD_METADATA_SECRET` in the
    /// environment overrides it, so it need not be written in the file;
    /// unset or empty disables the endpoint.
    #[serde(
        default = "metadata_secret_from_env",
        deserialize_with = "metadata_secret"
    )]
    pub shared_secret: Option<String>,
}

impl MetadataConfig {
    /// The section as the environment alone configures it (when the file
    /// has no `[api.metadata]`).
    pub fn from_env() -> Self {
        MetadataConfig {
            shared_secret: metadata_secret_from_env(),
        }
    }

    /// The secret to verify signatures with; `None` when the endpoint is
    /// disabled (no secret, or an empty one, which would prove nothing).
    pub fn secret(&self) -> Option<&str> {
        self.shared_secret.as_deref().filter(|s| !s.is_empty())
    }
}

impl std::fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Configurations get logged; the secret must not be.
        f.debug_struct("MetadataConfig")
            .field("shared_secret", &self.secret().map(|_| "<redacted>"))
            .finish()
    }
}

fn metadata_secret_from_env() -> Option<String> {
    std::env::var("CLOUD_METADATA_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
}

fn metadata_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let file = Option::<String>::deserialize(d)?;
    Ok(metadata_secret_from_env().or(file))
}

/// Where networks' frames may travel (Neutron's ML2 type settings):
/// the physical networks flat and VLAN networks may use, and the VNIs
/// VXLAN networks get.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Physical networks an admin may put flat and VLAN networks on
    /// (`provider:physical_network`); each compute host maps them to an
    /// interface (`[network] physical_interfaces`). Neutron's
    /// `flat_networks` / `network_vlan_ranges` names.
    pub physical_networks: Vec<String>,
    /// The VNIs VXLAN networks get when none is given, lowest free first,
    /// as `"FIRST:LAST"` (Neutron's `vni_ranges`, one range). Admins may
    /// still give any VNI of 1..16777215 explicitly.
    #[serde(deserialize_with = "vni_range")]
    pub vni_range: VniRange,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            physical_networks: vec!["physnet1".to_owned()],
            vni_range: DEFAULT_VNI_RANGE,
        }
    }
}

/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: i64 = 16_777_215;

/// The VNIs handed out when the configuration names none.
pub const DEFAULT_VNI_RANGE: VniRange = VniRange {
    first: 1,
    last: 65_535,
};

/// Parses `"FIRST:LAST"` with `1 <= FIRST <= LAST <= 16777215`.
pub fn parse_vni_range(raw: &str) -> Result<VniRange, String> {
    let bad =
        || format!("vni_range '{raw}' is not FIRST:LAST with 1 <= FIRST <= LAST <= {MAX_VNI}");
    let (first, last) = raw.split_once(':').ok_or_else(bad)?;
    let first: i64 = first.trim().parse().map_err(|_| bad())?;
    let last: i64 = last.trim().parse().map_err(|_| bad())?;
    if first < 1 || first > last || last > MAX_VNI {
        return Err(bad());
    }
    Ok(VniRange { first, last })
}

fn vni_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<VniRange, D::Error> {
    let raw = String::deserialize(d)?;
    parse_vni_range(&raw).map_err(serde::de::Error::custom)
}

/// What to create at first start.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Password of the `admin` user. `CLOUD_ADMIN_PASSWORD` overrides it.
    /// If neither is set and there is no admin yet, one is generated and
    /// printed once.
    #[serde(default)]
    pub admin_password: Option<String>,
    /// Create the m1.tiny/small/medium flavors if no flavor exists.
    #[serde(default)]
    pub default_flavors: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_down() -> i64 {
    60
}

fn default_region() -> String {
    "RegionOne".to_owned()
}

fn default_token_ttl() -> i64 {
    2 * 3600
}

fn default_max_body() -> usize {
    1024 * 1024
}

fn default_image_sweep_interval() -> u64 {
    600
}

fn default_token_purge_interval() -> u64 {
    300
}

fn default_header_read_timeout() -> f64 {
    30.0
}

fn default_idle_timeout() -> f64 {
    75.0
}

fn default_max_connections() -> usize {
    1024
}

impl ApiConfig {
    /// Logs what in this configuration an operator should know about at
    /// start-up. Without `public_url` the catalog and every link follow
    /// the `Host` header of each request, which any client chooses: behind
    /// a load balancer, or to clients that reach the API by different
    /// names, links may point elsewhere (issue 16, finding 10).
    pub fn warn_about_defaults(&self) {
        if self.public_url.is_none() {
            tracing::warn!(
                "[api] public_url is not set: catalog URLs and links follow each request's \
                 Host header, which clients choose; set it to the URL clients reach this \
                 API at (the load balancer's, with several API nodes)"
            );
        }
    }

    /// A configuration for tests and the all-in-one binary.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        ApiConfig {
            listen: default_listen(),
            public_url: None,
            database_url: None,
            data_dir,
            region: default_region(),
            token_ttl_seconds: default_token_ttl(),
            max_body_bytes: default_max_body(),
            quotas: QuotaDefaults::default(),
            service_down_secs: default_down(),
            bootstrap: BootstrapConfig::default(),
            network: NetworkConfig::default(),
            metadata: MetadataConfig::default(),
            token_purge_interval_secs: default_token_purge_interval(),
            image_sweep_interval_secs: default_image_sweep_interval(),
            header_read_timeout_secs: default_header_read_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
            metrics_listen: None,
            serial_console: Default::default(),
        }
    }
}

/// The file of `cloud-api --config FILE`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[api]`.
    pub api: ApiConfig,
    /// `[bus]`.
    pub bus: cloud_service_common::config::BusConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_ranges() {
        assert_eq!(
            parse_vni_range("100:200").unwrap(),
            VniRange {
                first: 100,
                last: 200
            }
        );
        for bad in ["0:10", "10:5", "1:16777216", "1-10", "x:1"] {
            assert!(parse_vni_range(bad).is_err(), "{bad}");
        }
    }

    fn parse(text: &str) -> Result<NetworkConfig, String> {
        let path = std::path::Path::new("api.toml");
        cloud_service_common::config::parse_config(path, text).map_err(|e| e.to_string())
    }

    #[test]
    fn network_section_defaults_and_parses() {
        assert_eq!(parse("").unwrap(), NetworkConfig::default());
        let c = parse("physical_networks = [\"a\", \"b\"]\nvni_range = \"5:9\"").unwrap();
        assert_eq!(c.physical_networks, ["a", "b"]);
        assert_eq!(c.vni_range, VniRange { first: 5, last: 9 });
        assert!(parse("vni_range = \"9:5\"").is_err());
    }
}
