//! One network on one host: its bridge, its uplink (VXLAN device with its
//! forwarding entries, VLAN subinterface or physical interface) and its
//! namespace holding the gateways, DHCP and the metadata address.
//!
//! The uplink and the namespace's port are *isolated* bridge ports: they
//! reach the guests but not each other. So every host can answer DHCP and
//! hold the same gateway address with the same MAC for its own guests,
//! without those answers crossing the overlay to other hosts' guests.

use crate::names::{bridge_name, iface_name, ns_bridge_end, ns_inner_end, vxlan_name};
use crate::{DataPlane, cmd, dhcp, netns};
use anyhow::Context;
use cloud_driver::network::{NetworkSpec, PortSpec, SegmentSpec};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The metadata service's address, held by every network namespace.
pub const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The MAC of a network's gateways: the same on every host (derived from
/// the network id), so a guest's ARP entry stays right wherever it runs.
pub fn gateway_mac(network_id: &str) -> String {
    let h = Sha256::digest(network_id.as_bytes());
    format!("fa:16:3f:{:02x}:{:02x}:{:02x}", h[0], h[1], h[2])
}

/// The namespace of a network on this host.
pub fn namespace(plane: &DataPlane, network_id: &str) -> String {
    format!("{}qdhcp-{network_id}", plane.config().namespace_prefix)
}

impl DataPlane {
    /// Whether interface `name` exists in the host's namespace.
    pub async fn link_exists(&self, name: &str) -> bool {
        self.ip(["link", "show", "dev", name]).await.is_ok()
    }

    /// Deletes interface `name` from the host's namespace; one already gone
    /// is fine (a namespace's veth vanishes a moment after the namespace,
    /// in the background, so checking first is not enough).
    async fn delete_link(&self, name: &str) -> anyhow::Result<()> {
        match self.ip(["link", "del", "dev", name]).await {
            Ok(_) => Ok(()),
            Err(_) if !self.link_exists(name).await => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs `bridge args...` in the host's namespace.
    async fn bridge_cmd(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::run_in(self.host_namespace(), "bridge", args).await
    }

    /// Creates `name` with `create` unless it exists (a concurrent or
    /// earlier creation is fine).
    async fn ensure_link(&self, name: &str, create: &[&str]) -> anyhow::Result<()> {
        if self.link_exists(name).await {
            return Ok(());
        }
        if let Err(e) = self.ip(create).await
            && !self.link_exists(name).await
        {
            return Err(e);
        }
        tracing::info!(device = name, "device created");
        Ok(())
    }

    /// Brings one network to its desired shape on this host.
    pub(crate) async fn network_ensure(
        &self,
        net: &NetworkSpec,
        ports: &[&PortSpec],
    ) -> anyhow::Result<()> {
        let bridge = bridge_name(&net.id);
        self.ensure_link(&bridge, &["link", "add", "name", &bridge, "type", "bridge"])
            .await?;
        // No IPv6 on the bridge either: no link-local address guests could
        // reach the host at, no router advertisement from a guest setting
        // the host's routes (before it is up, so none is ever configured).
        cmd::run_in(
            self.host_namespace(),
            "sysctl",
            ["-qw", &format!("net/ipv6/conf/{bridge}/disable_ipv6=1")],
        )
        .await?;
        self.ip(["link", "set", "dev", &bridge, "up"]).await?;
        self.uplink_ensure(net, &bridge).await?;
        self.namespace_ensure(net, &bridge).await?;
        let ns = namespace(self, &net.id);
        let dir = self.config().state_dir.join(&net.id);
        dhcp::sync(&ns, &dir, &ns_inner_end(&net.id), net, ports)
            .await
            .with_context(|| format!("DHCP of network {}", net.id))
    }

    /// The uplink device of a segment, and the physical interface it rides
    /// on (for VLAN and flat segments).
    fn uplink_name(&self, seg: &SegmentSpec) -> anyhow::Result<(String, Option<String>)> {
        let phys = |p: &str| {
            self.config()
                .physical_interfaces
                .get(p)
                .cloned()
                .with_context(|| format!("this host maps no interface to physical network '{p}'"))
        };
        Ok(match seg {
            SegmentSpec::Vxlan { vni } => (vxlan_name(*vni), None),
            SegmentSpec::Vlan {
                physical_network,
                vlan_id,
            } => {
                let phys = phys(physical_network)?;
                let name = format!("{phys}.{vlan_id}");
                let name = if name.len() <= crate::names::IFNAMSIZ_MAX {
                    name
                } else {
                    iface_name("vlan", &format!("{vlan_id}-{phys}"))
                };
                (name, Some(phys))
            }
            SegmentSpec::Flat { physical_network } => {
                let phys = phys(physical_network)?;
                (phys.clone(), Some(phys))
            }
        })
    }

    async fn uplink_ensure(&self, net: &NetworkSpec, bridge: &str) -> anyhow::Result<()> {
        let (dev, phys) = self.uplink_name(&net.segment)?;
        match &net.segment {
            SegmentSpec::Vxlan { vni } => {
                let mut create = vec![
                    "link".to_owned(),
                    "add".into(),
                    dev.clone(),
                    "type".into(),
                    "vxlan".into(),
                    "id".into(),
                    vni.to_string(),
                    "dstport".into(),
                    self.config().vxlan_port.to_string(),
                    "nolearning".into(),
                ];
                if let Some(local) = self.config().local_ip {
                    create.extend(["local".into(), local.to_string()]);
                }
                if let Some(u) = &self.config().underlay_interface {
                    create.extend(["dev".into(), u.clone()]);
                }
                let create: Vec<&str> = create.iter().map(String::as_str).collect();
                self.ensure_link(&dev, &create).await?;
            }
            SegmentSpec::Vlan { vlan_id, .. } => {
                let phys = phys.clone().unwrap_or_default();
                self.ip(["link", "set", "dev", &phys, "up"]).await?;
                let id = vlan_id.to_string();
                self.ensure_link(
                    &dev,
                    &[
                        "link", "add", "link", &phys, "name", &dev, "type", "vlan", "id", &id,
                    ],
                )
                .await?;
            }
            SegmentSpec::Flat { .. } => {}
        }
        let mtu = net.mtu.to_string();
        if !matches!(net.segment, SegmentSpec::Flat { .. }) {
            self.ip(["link", "set", "dev", &dev, "mtu", &mtu]).await?;
        }
        self.ip(["link", "set", "dev", &dev, "master", bridge, "up"])
            .await?;
        self.bridge_cmd(&["link", "set", "dev", &dev, "isolated", "on"])
            .await?;
        if let SegmentSpec::Vxlan { .. } = net.segment {
            if self.config().local_ip.is_none() && !net.peers.is_empty() {
                tracing::warn!(
                    network = %net.id,
                    "this host has no underlay address ([agent] local_ip): the network stays local"
                );
            }
            self.fdb_sync(&dev, net).await?;
        }
        Ok(())
    }

    /// Makes the VXLAN device's forwarding entries exactly: one all-zero
    /// entry per peer host (broadcast and unknown frames go to each) and
    /// one per remote port's MAC (sent straight to its host).
    async fn fdb_sync(&self, dev: &str, net: &NetworkSpec) -> anyhow::Result<()> {
        const FLOOD: &str = "00:00:00:00:00:00";
        let mut want: BTreeSet<(String, String)> = net
            .peers
            .iter()
            .map(|p| (FLOOD.to_owned(), p.to_string()))
            .collect();
        want.extend(
            net.remote_ports
                .iter()
                .map(|p| (p.mac.to_ascii_lowercase(), p.host_ip.to_string())),
        );
        let shown = self.bridge_cmd(&["fdb", "show", "dev", dev]).await?;
        let have: BTreeSet<(String, String)> = shown
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let mac = words.next()?.to_ascii_lowercase();
                let dst = words.skip_while(|w| *w != "dst").nth(1)?;
                Some((mac, dst.to_owned()))
            })
            .collect();
        for (mac, dst) in have.difference(&want) {
            self.bridge_cmd(&["fdb", "del", mac, "dev", dev, "dst", dst])
                .await?;
        }
        for (mac, dst) in want.difference(&have) {
            let verb = if mac == FLOOD { "append" } else { "replace" };
            self.bridge_cmd(&["fdb", verb, mac, "dev", dev, "dst", dst])
                .await?;
        }
        Ok(())
    }

    /// The network's namespace, wired to the bridge by a veth, holding each
    /// subnet's gateway (with the network's gateway MAC) and the metadata
    /// address.
    async fn namespace_ensure(&self, net: &NetworkSpec, bridge: &str) -> anyhow::Result<()> {
        let ns = namespace(self, &net.id);
        netns::ensure(&ns).await?;
        let (outer, inner) = (ns_bridge_end(&net.id), ns_inner_end(&net.id));
        let inner_exists = cmd::run("ip", ["-n", &ns, "link", "show", "dev", &inner])
            .await
            .is_ok();
        if !inner_exists {
            // A half-made pair (the agent died in between) is redone.
            self.delete_link(&outer).await?;
            self.ip([
                "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
            ])
            .await?;
        }
        let mtu = net.mtu.to_string();
        self.ip([
            "link", "set", "dev", &outer, "mtu", &mtu, "master", bridge, "up",
        ])
        .await?;
        self.bridge_cmd(&["link", "set", "dev", &outer, "isolated", "on"])
            .await?;
        let mac = gateway_mac(&net.id);
        cmd::run(
            "ip",
            [
                "-n", &ns, "link", "set", "dev", &inner, "address", &mac, "mtu", &mtu, "up",
            ],
        )
        .await?;
        let want: BTreeSet<String> = net
            .subnets
            .iter()
            .filter_map(|s| {
                s.namespace_address()
                    .map(|a| format!("{a}/{}", s.cidr.prefix()))
            })
            .collect();
        netns::set_ipv4_addresses(&ns, &inner, &want).await?;
        if self.config().metadata.is_some() {
            let md = format!("{METADATA_IP}/32");
            cmd::run("ip", ["-n", &ns, "addr", "replace", &md, "dev", "lo"]).await?;
        }
        Ok(())
    }

    /// Removes everything of a network from this host.
    pub(crate) async fn network_remove(
        &self,
        id: &str,
        segment: &SegmentSpec,
    ) -> anyhow::Result<()> {
        let dir = self.config().state_dir.join(id);
        dhcp::stop(&dir).await?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        netns::delete(&namespace(self, id)).await?;
        self.delete_link(&ns_bridge_end(id)).await?;
        match self.uplink_name(segment) {
            Ok((dev, _)) if matches!(segment, SegmentSpec::Flat { .. }) => {
                // The physical interface is not ours to delete.
                if self.link_exists(&dev).await {
                    self.ip(["link", "set", "dev", &dev, "nomaster"]).await?;
                }
            }
            Ok((dev, _)) => self.delete_link(&dev).await?,
            Err(e) => tracing::warn!(network = id, error = %e, "cannot name the uplink to remove"),
        }
        self.delete_link(&bridge_name(id)).await?;
        tracing::info!(network = id, "network removed from this host");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_mac_is_stable_and_local() {
        let a = gateway_mac("net-a");
        assert_eq!(a, gateway_mac("net-a"));
        assert_ne!(a, gateway_mac("net-b"));
        assert!(a.starts_with("fa:16:3f:"), "{a}");
        assert_eq!(a.len(), 17);
    }
}
