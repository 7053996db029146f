//! Configuration of the API service (`cloud-api --config FILE`).

use cloud_model::quota::QuotaDefaults;
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

impl ApiConfig {
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
