//! A single-node cloud's way out: a veth pair whose host end holds the
//! external subnet's gateway address and whose other end is the external
//! network's "physical" interface, with forwarding and NAT from that
//! subnet towards the host's own routes. Floating IPs are then reachable
//! from the host itself, and routers' SNAT reaches what the host reaches.
//! (On a real deployment the external network rides on a real interface
//! instead: `[network] physical_interfaces`.)

use crate::cmd;
use anyhow::Context;
use cloud_model::network::Ipv4Cidr;
use std::net::Ipv4Addr;

/// The host's uplink to an external network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUplink {
    /// The host's end (holds `gateway`).
    pub host_interface: String,
    /// The end the data plane puts on the external network's bridge (map
    /// a physical network to it).
    pub physical_interface: String,
    /// The external subnet.
    pub cidr: Ipv4Cidr,
    /// The host's address on it: the subnet's gateway.
    pub gateway: Ipv4Addr,
    /// Whether the subnet reaches what the host reaches (forwarding and
    /// NAT on the host); without it only the host itself is reachable.
    pub nat: bool,
}

/// The nftables table of the uplink's NAT (one per host).
const TABLE: &str = "cloud_uplink";

impl HostUplink {
    /// Creates (or repairs) the pair, the address, forwarding and NAT.
    /// Idempotent.
    pub async fn ensure(&self) -> anyhow::Result<()> {
        let (host, phys) = (&self.host_interface, &self.physical_interface);
        if cmd::run("ip", ["link", "show", "dev", host]).await.is_err() {
            cmd::run(
                "ip",
                ["link", "add", host, "type", "veth", "peer", "name", phys],
            )
            .await
            .context("cannot create the external uplink")?;
        }
        let addr = format!("{}/{}", self.gateway, self.cidr.prefix());
        cmd::run("ip", ["addr", "replace", &addr, "dev", host]).await?;
        cmd::run("ip", ["link", "set", "dev", host, "up"]).await?;
        cmd::run("ip", ["link", "set", "dev", phys, "up"]).await?;
        if !self.nat {
            return Ok(());
        }
        cmd::run("sysctl", ["-qw", "net.ipv4.ip_forward=1"]).await?;
        // Only what the host routes out: bridged frames of the external
        // network itself (a router's gateway leg talking to the host)
        // also pass the NAT hook, with the bridge as their device.
        let rules = format!(
            "add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain post {{\n    type nat hook postrouting priority 100; policy accept;\n    ip saddr {cidr} oifname != \"{host}\" oifname != \"brq*\" masquerade\n  }}\n}}\n",
            cidr = self.cidr
        );
        cmd::run_with_input("nft", ["-f", "-"], Some(&rules))
            .await
            .context("cannot load the uplink's NAT")?;
        Ok(())
    }
}
