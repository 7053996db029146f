//! Loading a service's TOML configuration into its typed struct.
//!
//! Errors name the file, so an operator with several config files knows
//! which one is wrong. Unknown keys are refused by the structs
//! (`deny_unknown_fields`), so a typo never silently falls back to a default.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load configuration from {}", path.display())]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub kind: LoadErrorKind,
}

/// The two ways loading fails.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// The file could not be read.
    #[error("cannot read the file")]
    Io(#[source] std::io::Error),
    /// The file is not valid TOML for this service.
    #[error("invalid configuration")]
    Parse(#[source] toml::de::Error),
}

/// Reads and parses `path` into `T`.
pub fn load_config<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        path: path.to_owned(),
        kind: LoadErrorKind::Io(e),
    })?;
    parse_config(path, &text)
}

/// Parses TOML `text` (read from `path`) into `T`.
pub fn parse_config<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, LoadError> {
    toml::from_str(text).map_err(|e| LoadError {
        path: path.to_owned(),
        kind: LoadErrorKind::Parse(e),
    })
}

/// Renders an error and its causes on one line (`a: b: c`), for messages
/// printed before tracing is up.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Where the message bus is (`[bus]` in every multi-process service).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// AMQP URL of RabbitMQ. `CLOUD_AMQP_URL` in the environment overrides
    /// it, so the password need not be written in the file.
    #[serde(default)]
    pub amqp_url: Option<String>,
    /// The other nodes of a RabbitMQ cluster: when the connection to one
    /// node is lost, the bus reconnects to the next one, so a node going
    /// down only moves its clients. Empty for a single broker.
    #[serde(default)]
    pub amqp_cluster_urls: Vec<String>,
    /// Prefix of every queue and exchange (several clouds may share a broker).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// `"classic"` (the default, right for a single broker) or `"quorum"`
    /// (replicated queues for a cluster of three or more nodes). Every
    /// service of one cloud must use the same value.
    #[serde(default)]
    pub queue_type: cloud_bus::QueueType,
    /// `[bus.tls]`: certificates for `amqps://` URLs.
    #[serde(default)]
    pub tls: BusTlsConfig,
}

/// `[bus.tls]`: PEM files for AMQP over TLS (see deploy/HA.md).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusTlsConfig {
    /// The CA that signed the brokers' certificates (a private CA), in
    /// addition to the system trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Our client certificate, for brokers that verify peers.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The unencrypted private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_prefix() -> String {
    "cloud".to_owned()
}

impl BusConfig {
    /// The AMQP URL to use: environment first, then the file.
    pub fn url(&self) -> Option<String> {
        std::env::var("CLOUD_AMQP_URL")
            .ok()
            .or_else(|| self.amqp_url.clone())
    }

    /// Every broker URL: [`BusConfig::url`] first, then the cluster's other
    /// nodes. Empty when no URL is configured.
    pub fn urls(&self) -> Vec<String> {
        self.url()
            .into_iter()
            .chain(self.amqp_cluster_urls.iter().cloned())
            .collect()
    }
}

/// Where the database is (`[database]` of the services that have access).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...` (or `sqlite://...`). `DATABASE_URL` overrides it.
    #[serde(default)]
    pub url: Option<String>,
}

impl DatabaseConfig {
    /// The database URL to use: environment first, then the file.
    pub fn url(&self) -> Option<String> {
        std::env::var("DATABASE_URL")
            .ok()
            .or_else(|| self.url.clone())
    }
}

/// Optional `[metrics]` listener of services without an HTTP API.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the `/metrics` endpoint.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
}
