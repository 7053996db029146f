//! The host data plane, built with the kernel's own tools.
//!
//! Per network with ports on the host:
//! * a Linux bridge (`brq<net>`) in the host's namespace, with no address:
//!   guests' taps, the segment's uplink (a VXLAN device, a VLAN
//!   subinterface or a physical interface) and one end of a veth into
//! * the network's own namespace (`qdhcp-<net>`), which holds each
//!   subnet's gateway address, runs dnsmasq for DHCP, and has the metadata
//!   proxy's socket on 169.254.169.254:80. No tenant address ever sits in
//!   the host's namespace, so overlapping CIDRs of different projects
//!   coexist and guests cannot reach the host.
//!
//! Security groups and anti-spoofing are nftables rules in two tables the
//! agent owns (`bridge` and `inet` families), replaced in one transaction
//! per change. Why it is built this way: docs/adr/0007-host-data-plane.md.

pub mod cmd;
pub mod config;
mod dhcp;
pub mod firewall;
mod metadata_proxy;
pub mod names;
pub mod netns;
pub mod network;

pub use config::{DataPlaneConfig, MetadataProxyConfig};

use anyhow::Context;
use cloud_driver::HostNetwork;
use cloud_driver::network::SegmentSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One host's data plane.
pub struct DataPlane {
    config: DataPlaneConfig,
    /// Applies never overlap.
    applying: tokio::sync::Mutex<()>,
    proxies: Option<metadata_proxy::Proxies>,
}

impl DataPlane {
    /// A data plane wired as `config` says; nothing is touched until
    /// [`DataPlane::apply`].
    pub fn new(config: DataPlaneConfig) -> DataPlane {
        let proxies = config.metadata.clone().map(metadata_proxy::Proxies::new);
        DataPlane {
            config,
            applying: tokio::sync::Mutex::new(()),
            proxies,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &DataPlaneConfig {
        &self.config
    }

    /// The namespace that plays the host (`None`: ours).
    pub fn host_namespace(&self) -> Option<&str> {
        self.config.host_namespace.as_deref()
    }

    /// Runs `ip args...` in the host's namespace.
    pub async fn ip<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        cmd::run_in(self.host_namespace(), "ip", args).await
    }

    /// Brings the host in line with `desired` (see the crate docs):
    /// removes the networks it no longer has ports on, builds or repairs
    /// the others, then replaces the filtering rules and the metadata
    /// proxies. A network that fails does not stop the others; the first
    /// error is returned after all were tried (the agent retries).
    pub async fn apply(&self, desired: &HostNetwork) -> anyhow::Result<()> {
        let _applying = self.applying.lock().await;
        let dir = &self.config.state_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        self.enable_bridge_filtering().await?;
        let mut first_error: Option<anyhow::Error> = None;
        let mut record = self.load_record();
        let wanted: BTreeMap<String, SegmentSpec> = desired
            .networks
            .iter()
            .map(|n| (n.id.clone(), n.segment.clone()))
            .collect();
        for (id, seg) in record.clone() {
            if wanted.get(&id) == Some(&seg) {
                continue;
            }
            match self.network_remove(&id, &seg).await {
                Ok(()) => {
                    record.remove(&id);
                }
                Err(e) => {
                    first_error.get_or_insert(e.context(format!("removing network {id}")));
                }
            }
        }
        // Recorded before they are built: a network half-built by an agent
        // that died is still ours to remove.
        record.extend(wanted);
        self.save_record(&record)?;
        for net in &desired.networks {
            let ports: Vec<_> = desired
                .ports
                .iter()
                .filter(|p| p.network_id == net.id)
                .collect();
            if let Err(e) = self.network_ensure(net, &ports).await {
                tracing::warn!(network = %net.id, error = %format!("{e:#}"), "network not applied");
                first_error.get_or_insert(e.context(format!("network {}", net.id)));
            }
        }
        let rules = firewall::ruleset(&self.config.nft_table, desired);
        cmd::run_in_with_input(self.host_namespace(), "nft", ["-f", "-"], Some(&rules))
            .await
            .context("cannot load the filtering rules")?;
        if let Some(p) = &self.proxies {
            p.sync(desired, |net| network::namespace(self, net));
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Bridged IP traffic must go through the `inet` hooks, where
    /// connection tracking (stateful security groups) is.
    async fn enable_bridge_filtering(&self) -> anyhow::Result<()> {
        cmd::run_in(
            self.host_namespace(),
            "sysctl",
            ["-qw", "net.bridge.bridge-nf-call-iptables=1"],
        )
        .await
        .context(
            "cannot send bridged traffic through netfilter (the kernel needs br_netfilter); \
             security groups cannot be enforced",
        )?;
        Ok(())
    }

    fn record_path(&self) -> PathBuf {
        self.config.state_dir.join("networks.json")
    }

    /// The networks this data plane built (and not yet removed).
    fn load_record(&self) -> BTreeMap<String, SegmentSpec> {
        std::fs::read(self.record_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_record(&self, record: &BTreeMap<String, SegmentSpec>) -> anyhow::Result<()> {
        let path = self.record_path();
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
