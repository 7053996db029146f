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
mod conntrack;
mod dhcp;
pub mod firewall;
mod metadata_proxy;
pub mod names;
pub mod netns;
pub mod network;
mod record;
pub mod router;
pub mod uplink;

pub use config::{DataPlaneConfig, MetadataProxyConfig};

use anyhow::Context;
use cloud_driver::HostNetwork;
use cloud_driver::network::SegmentSpec;
use record::Record;
use std::collections::{BTreeMap, HashMap};

/// One host's data plane.
pub struct DataPlane {
    config: DataPlaneConfig,
    /// Applies never overlap.
    applying: tokio::sync::Mutex<()>,
    proxies: Option<metadata_proxy::Proxies>,
    /// Each port's filtering at the last apply (to forget flows it no
    /// longer allows).
    filters: tokio::sync::Mutex<HashMap<String, conntrack::PortFilter>>,
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
            filters: tokio::sync::Mutex::new(HashMap::new()),
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
    /// proxies, and forgets the flows of ports whose filtering changed.
    /// A network that fails does not stop the others: the result names
    /// each failed network with why, and its ports are not ready. An error
    /// is returned only when the host as a whole could not be set up (no
    /// filtering possible).
    pub async fn apply(&self, desired: &HostNetwork) -> anyhow::Result<BTreeMap<String, String>> {
        let _applying = self.applying.lock().await;
        let dir = &self.config.state_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        self.enable_bridge_filtering().await?;
        let mut failed = BTreeMap::new();
        let mut record = Record::load(dir);
        let wanted: BTreeMap<&str, &SegmentSpec> = desired
            .networks
            .iter()
            .map(|n| (n.id.as_str(), &n.segment))
            .collect();
        for (id, rec) in record.networks.clone() {
            if wanted.get(id.as_str()) == Some(&&rec.segment) {
                continue;
            }
            match self.network_remove(&id, &rec.segment).await {
                Ok(()) => {
                    record.networks.remove(&id);
                }
                Err(e) => {
                    tracing::warn!(network = %id, error = %format!("{e:#}"), "network not removed");
                }
            }
        }
        // Recorded before they are built: a network half-built by an agent
        // that died is still ours to remove.
        for (id, seg) in &wanted {
            record.add(id, seg);
        }
        record.save(dir)?;
        for net in &desired.networks {
            let ports: Vec<_> = desired
                .ports
                .iter()
                .filter(|p| p.network_id == net.id)
                .collect();
            if let Err(e) = self.network_ensure(net, &ports).await {
                let why = format!("{e:#}");
                tracing::warn!(network = %net.id, error = %why, "network not applied");
                failed.insert(net.id.clone(), why);
            }
        }
        self.routers_sync(desired, &mut failed).await;
        let zones = record.zones();
        let rules = firewall::ruleset(&self.config.nft_table, desired, &zones);
        cmd::run_in_with_input(self.host_namespace(), "nft", ["-f", "-"], Some(&rules))
            .await
            .context("cannot load the filtering rules")?;
        let filters = conntrack::filters(desired, &zones);
        {
            let before = self.filters.lock().await;
            conntrack::flush(self.host_namespace(), &conntrack::stale(&before, &filters)).await;
        }
        *self.filters.lock().await = filters;
        if let Some(p) = &self.proxies {
            p.sync(desired, |net| network::namespace(self, net));
        }
        Ok(failed)
    }

    /// Builds the routers of `desired` (after their networks' bridges) and
    /// removes the other routers' namespaces. A router that fails is
    /// reported as `router:<id>` (no guest port waits on it).
    async fn routers_sync(&self, desired: &HostNetwork, failed: &mut BTreeMap<String, String>) {
        let prefix = router::namespace(self, "");
        let wanted: std::collections::BTreeSet<String> = desired
            .routers
            .iter()
            .map(|r| router::namespace(self, &r.id))
            .collect();
        for ns in netns::list(&prefix) {
            if !wanted.contains(&ns)
                && let Err(e) = self.router_remove(&ns[prefix.len()..]).await
            {
                tracing::warn!(namespace = %ns, error = %format!("{e:#}"), "router not removed");
            }
        }
        for r in &desired.routers {
            let blocked = r
                .interfaces
                .iter()
                .map(|i| &i.network_id)
                .chain(r.gateway.as_ref().map(|g| &g.network_id))
                .find(|n| failed.contains_key(*n))
                .cloned();
            let result = match blocked {
                Some(n) => Err(anyhow::anyhow!("its network {n} is not set up")),
                None => self.router_ensure(r, desired).await,
            };
            if let Err(e) = result {
                let why = format!("{e:#}");
                tracing::warn!(router = %r.id, error = %why, "router not applied");
                failed.insert(format!("router:{}", r.id), why);
            }
        }
    }

    /// Bridged IP traffic must go through the `inet` hooks, where
    /// connection tracking (stateful security groups) is.
    async fn enable_bridge_filtering(&self) -> anyhow::Result<()> {
        cmd::run_in(
            self.host_namespace(),
            "sysctl",
            [
                "-qw",
                "net.bridge.bridge-nf-call-iptables=1",
                "net.bridge.bridge-nf-call-ip6tables=1",
            ],
        )
        .await
        .context(
            "cannot send bridged traffic through netfilter (the kernel needs br_netfilter); \
             security groups cannot be enforced",
        )?;
        Ok(())
    }
}
