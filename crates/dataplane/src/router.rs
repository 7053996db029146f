//! Routers: a namespace per router on a host with the network role.
//!
//! Each interface is a veth from the router's namespace (`qr-<port>`,
//! with the port's MAC and the subnet's gateway address) to the tenant
//! network's bridge, as an ordinary (not isolated) port: every guest of
//! the network, on any host, reaches it over the overlay. The gateway leg
//! (`qg-<port>`) sits on the external network's bridge with the router's
//! external address, the floating IPs, and the default route. Forwarding
//! is on, so the router's subnets reach each other; NAT is one nftables
//! table in the namespace, replaced whole: DNAT of each floating IP to its
//! fixed IP, SNAT of that fixed IP to its floating IP, and SNAT of the
//! rest of the subnets to the router's address when `enable_snat`.

use crate::names::iface_name;
use crate::{DataPlane, cmd, netns};
use anyhow::Context;
use cloud_driver::HostNetwork;
use cloud_driver::network::{NetworkSpec, RouterSpec};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The namespace of a router on this host.
pub fn namespace(plane: &DataPlane, router_id: &str) -> String {
    format!("{}qrouter-{router_id}", plane.config().namespace_prefix)
}

/// The router's end of an interface or gateway port.
fn inner_name(prefix: &str, port_id: &str) -> String {
    iface_name(prefix, port_id)
}

/// The bridge's end of a router port.
fn outer_name(port_id: &str) -> String {
    iface_name("rtb", port_id)
}

/// The router's NAT rules, in `nft -f` syntax (one transaction).
pub fn nat_rules(r: &RouterSpec) -> String {
    let mut out = String::from("add table ip router\ndelete table ip router\n");
    let Some(gw) = &r.gateway else {
        return out;
    };
    let qg = inner_name("qg-", &gw.port_id);
    out.push_str("table ip router {\n");
    out.push_str("  chain pre {\n    type nat hook prerouting priority -100; policy accept;\n");
    for f in &r.floating_ips {
        let _ = writeln!(out, "    ip daddr {} dnat to {}", f.floating_ip, f.fixed_ip);
    }
    out.push_str("  }\n");
    out.push_str("  chain post {\n    type nat hook postrouting priority 100; policy accept;\n");
    for f in &r.floating_ips {
        let _ = writeln!(
            out,
            "    oifname \"{qg}\" ip saddr {} snat to {}",
            f.fixed_ip, f.floating_ip
        );
    }
    if gw.snat && !r.interfaces.is_empty() {
        let subnets: Vec<String> = r.interfaces.iter().map(|i| i.cidr.to_string()).collect();
        let _ = writeln!(
            out,
            "    oifname \"{qg}\" ip saddr {{ {} }} snat to {}",
            subnets.join(", "),
            gw.address
        );
    }
    out.push_str("  }\n}\n");
    out
}

impl DataPlane {
    /// Brings one router to its desired shape: namespace, interfaces,
    /// gateway, addresses, routes and NAT.
    pub(crate) async fn router_ensure(
        &self,
        r: &RouterSpec,
        desired: &HostNetwork,
    ) -> anyhow::Result<()> {
        let ns = namespace(self, &r.id);
        netns::ensure(&ns).await?;
        cmd::run_in(Some(&ns), "sysctl", ["-qw", "net.ipv4.ip_forward=1"]).await?;
        let mut wanted = BTreeSet::new();
        for i in &r.interfaces {
            let inner = inner_name("qr-", &i.port_id);
            let addr = format!("{}/{}", i.address, i.cidr.prefix());
            self.router_leg(
                &ns,
                &inner,
                &i.port_id,
                &i.network_id,
                &i.mac,
                &[addr],
                desired,
            )
            .await?;
            wanted.insert(inner);
        }
        if let Some(gw) = &r.gateway {
            let inner = inner_name("qg-", &gw.port_id);
            let mut addrs = vec![format!("{}/{}", gw.address, gw.cidr.prefix())];
            addrs.extend(
                r.floating_ips
                    .iter()
                    .map(|f| format!("{}/32", f.floating_ip)),
            );
            self.router_leg(
                &ns,
                &inner,
                &gw.port_id,
                &gw.network_id,
                &gw.mac,
                &addrs,
                desired,
            )
            .await?;
            wanted.insert(inner.clone());
            if let Some(hop) = gw.next_hop {
                let hop = hop.to_string();
                cmd::run(
                    "ip",
                    ["-n", &ns, "route", "replace", "default", "via", &hop],
                )
                .await?;
            }
        }
        self.router_prune_legs(&ns, &wanted).await?;
        for route in &r.routes {
            let (dst, hop) = (route.destination.to_string(), route.nexthop.to_string());
            cmd::run("ip", ["-n", &ns, "route", "replace", &dst, "via", &hop]).await?;
        }
        cmd::run_in_with_input(Some(&ns), "nft", ["-f", "-"], Some(&nat_rules(r)))
            .await
            .with_context(|| format!("NAT of router {}", r.id))?;
        Ok(())
    }

    /// One leg of a router: a veth from the namespace to the network's
    /// bridge, with the port's MAC and exactly `addrs`.
    #[allow(clippy::too_many_arguments)] // the fields of one port
    async fn router_leg(
        &self,
        ns: &str,
        inner: &str,
        port_id: &str,
        network_id: &str,
        mac: &str,
        addrs: &[String],
        desired: &HostNetwork,
    ) -> anyhow::Result<()> {
        let outer = outer_name(port_id);
        let bridge = crate::names::bridge_name(network_id);
        let mtu = desired
            .networks
            .iter()
            .find(|n: &&NetworkSpec| n.id == network_id)
            .map(|n| n.mtu)
            .unwrap_or(1500)
            .to_string();
        let exists = cmd::run("ip", ["-n", ns, "link", "show", "dev", inner])
            .await
            .is_ok();
        if !exists {
            if self.link_exists(&outer).await {
                self.ip(["link", "del", "dev", &outer]).await?;
            }
            self.ip([
                "link", "add", &outer, "type", "veth", "peer", "name", inner, "netns", ns,
            ])
            .await?;
        }
        self.ip([
            "link", "set", "dev", &outer, "mtu", &mtu, "master", &bridge, "up",
        ])
        .await?;
        cmd::run(
            "ip",
            [
                "-n", ns, "link", "set", "dev", inner, "address", mac, "mtu", &mtu, "up",
            ],
        )
        .await?;
        let want: BTreeSet<String> = addrs.iter().cloned().collect();
        for a in netns::set_ipv4_addresses(ns, inner, &want).await? {
            // Tell the segment the address moved here (a floating IP that
            // was on another router, a router that moved).
            if let Some(ip) = a.split('/').next() {
                let _ = cmd::run_in(
                    Some(ns),
                    "busybox",
                    ["arping", "-U", "-c", "1", "-I", inner, ip],
                )
                .await;
            }
        }
        Ok(())
    }

    /// Removes the router's legs that are no longer wanted.
    async fn router_prune_legs(&self, ns: &str, wanted: &BTreeSet<String>) -> anyhow::Result<()> {
        let shown = cmd::run("ip", ["-n", ns, "-o", "link"]).await?;
        for line in shown.lines() {
            let Some(name) = line.split(": ").nth(1).and_then(|n| n.split('@').next()) else {
                continue;
            };
            if (name.starts_with("qr-") || name.starts_with("qg-")) && !wanted.contains(name) {
                cmd::run("ip", ["-n", ns, "link", "del", "dev", name]).await?;
            }
        }
        Ok(())
    }

    /// Removes a router from this host (its legs go with its namespace).
    pub(crate) async fn router_remove(&self, id: &str) -> anyhow::Result<()> {
        netns::delete(&namespace(self, id)).await?;
        tracing::info!(router = id, "router removed from this host");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_driver::network::{FloatingIpSpec, RouterGateway, RouterPort};
    use cloud_model::network::Ipv4Cidr;

    fn router(snat: bool) -> RouterSpec {
        RouterSpec {
            id: "r1".into(),
            interfaces: vec![RouterPort {
                port_id: "p-int".into(),
                network_id: "n1".into(),
                mac: "fa:16:3e:00:00:01".into(),
                address: "10.0.0.1".parse().unwrap(),
                cidr: Ipv4Cidr::parse("10.0.0.0/24").unwrap(),
            }],
            gateway: Some(RouterGateway {
                port_id: "p-gw".into(),
                network_id: "ext".into(),
                mac: "fa:16:3e:00:00:02".into(),
                address: "172.24.4.10".parse().unwrap(),
                cidr: Ipv4Cidr::parse("172.24.4.0/24").unwrap(),
                next_hop: Some("172.24.4.1".parse().unwrap()),
                snat,
            }),
            floating_ips: vec![FloatingIpSpec {
                floating_ip: "172.24.4.20".parse().unwrap(),
                fixed_ip: "10.0.0.5".parse().unwrap(),
            }],
            routes: Vec::new(),
        }
    }

    #[test]
    fn floating_ips_are_one_to_one_and_the_rest_is_snatted_when_asked() {
        let r = nat_rules(&router(true));
        for line in [
            "ip daddr 172.24.4.20 dnat to 10.0.0.5",
            "oifname \"qg-p-gw\" ip saddr 10.0.0.5 snat to 172.24.4.20",
            "oifname \"qg-p-gw\" ip saddr { 10.0.0.0/24 } snat to 172.24.4.10",
        ] {
            assert!(
                r.lines().any(|l| l.trim() == line),
                "missing {line} in\n{r}"
            );
        }
        // The floating IP's own SNAT comes before the router's.
        assert!(r.find("snat to 172.24.4.20").unwrap() < r.find("snat to 172.24.4.10").unwrap());
        let no_snat = nat_rules(&router(false));
        assert!(!no_snat.contains("snat to 172.24.4.10"), "{no_snat}");
        let mut bare = router(true);
        bare.gateway = None;
        assert_eq!(
            nat_rules(&bare),
            "add table ip router\ndelete table ip router\n"
        );
    }
}
