//! Security groups and anti-spoofing as one nftables ruleset, replaced in
//! one transaction (`nft -f`) on every change, so a packet never sees a
//! half-applied state.
//!
//! How a frame between two guests is checked (the kernel's bridge
//! netfilter, `br_netfilter`, hands bridged IP traffic to the `inet`
//! hooks, which is where connection tracking is):
//! 1. `bridge` prerouting: a frame from a filtered port's tap must carry
//!    the port's MAC and one of its addresses (or an allowed address
//!    pair), else it is dropped; it then gets the port's index in the low
//!    16 bits of the packet mark. Frames from taps this host does not know
//!    (a guest whose port's rules are not installed yet) are dropped.
//! 2. `bridge` forward: a frame going out to a filtered port's tap gets that
//!    port's index in the high 16 bits of the mark.
//! 3. `inet` prerouting: a connection-tracking zone per network, so equal
//!    addresses on two networks (overlapping CIDRs) never share state.
//! 4. `inet` prerouting, after tracking: the sender's egress rules (by the
//!    low mark); `inet` forward: the receiver's ingress rules (by the high
//!    mark). Replies to allowed traffic pass both (stateful); what no rule
//!    allows is dropped.
//!
//! Frames of unfiltered ports (port security off), of the overlay uplink
//! and of the network namespaces carry no mark and are left alone here:
//! their receivers' ingress rules still apply.

use cloud_driver::HostNetwork;
use cloud_driver::network::{Direction, EtherType, PortSpec, RuleSpec, SecurityGroupSpec};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The ruleset for `desired`, in `nft -f` syntax: deletes our tables (if
/// they exist) and recreates them, all in one transaction; with nothing
/// on the host, only deletes them. `zones` gives each network its
/// connection-tracking zone (stable across applies: a renumbered zone
/// would drop live connections).
pub fn ruleset(table: &str, desired: &HostNetwork, zones: &BTreeMap<String, u16>) -> String {
    let filtered: Vec<&PortSpec> = desired.ports.iter().filter(|p| p.port_security).collect();
    let groups: BTreeMap<&str, (usize, &SecurityGroupSpec)> = desired
        .security_groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), (i, g)))
        .collect();
    let mut out = String::new();
    // `add` then `delete` makes the delete succeed on a first run too.
    let _ = writeln!(out, "add table bridge {table}\ndelete table bridge {table}");
    let _ = writeln!(out, "add table inet {table}\ndelete table inet {table}");
    if desired.ports.is_empty() && desired.networks.is_empty() {
        // Nothing to guard: a host without guests keeps no tables.
        return out;
    }
    bridge_table(&mut out, table, desired, &filtered);
    inet_table(&mut out, table, desired, zones, &filtered, &groups);
    out
}

/// 1-based index of a port in the marks.
fn index(i: usize) -> usize {
    i + 1
}

fn bridge_table(out: &mut String, table: &str, desired: &HostNetwork, filtered: &[&PortSpec]) {
    let _ = writeln!(out, "table bridge {table} {{");
    // Ingress from taps: anti-spoofing per filtered port.
    out.push_str(
        "  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n",
    );
    if !filtered.is_empty() {
        let entries: Vec<String> = filtered
            .iter()
            .enumerate()
            .map(|(i, p)| format!("\"{}\" : jump from_{}", tap(p), index(i)))
            .collect();
        let _ = writeln!(out, "    iifname vmap {{ {} }}", entries.join(", "));
    }
    let unfiltered: Vec<String> = desired
        .ports
        .iter()
        .filter(|p| !p.port_security)
        .map(|p| format!("\"{}\"", tap(p)))
        .collect();
    if !unfiltered.is_empty() {
        let _ = writeln!(out, "    iifname {{ {} }} accept", unfiltered.join(", "));
    }
    // A tap we have no rules for yet (or any more) gets nothing through.
    out.push_str("    iifname \"tap*\" drop\n  }\n");
    for (i, p) in filtered.iter().enumerate() {
        anti_spoofing_chain(out, index(i), p);
    }
    // Egress to taps: mark the receiving port.
    out.push_str("  chain forward {\n    type filter hook forward priority -100; policy accept;\n");
    if !filtered.is_empty() {
        let entries: Vec<String> = filtered
            .iter()
            .enumerate()
            .map(|(i, p)| format!("\"{}\" : jump to_{}", tap(p), index(i)))
            .collect();
        let _ = writeln!(out, "    oifname vmap {{ {} }}", entries.join(", "));
    }
    // Nothing goes to a tap whose port this host has no rules for.
    let known: Vec<String> = desired
        .ports
        .iter()
        .map(|p| format!("\"{}\"", tap(p)))
        .collect();
    if !known.is_empty() {
        let _ = writeln!(out, "    oifname {{ {} }} accept", known.join(", "));
    }
    out.push_str("    oifname \"tap*\" drop\n  }\n");
    for i in 0..filtered.len() {
        let _ = writeln!(
            out,
            "  chain to_{n} {{\n    ether type {{ 0x8100, 0x88a8 }} drop\n    meta mark set meta mark or 0x{m:08x}\n  }}",
            n = index(i),
            m = index(i) << 16
        );
    }
    out.push_str("}\n");
}

/// What a filtered port may send: its MAC with its addresses, the pairs'
/// MACs with theirs, DHCP discovery before it has an address, ARP for its
/// own addresses, IPv6 link-local (neighbour discovery). Never DHCP or
/// router advertisements as a server.
fn anti_spoofing_chain(out: &mut String, n: usize, p: &PortSpec) {
    let _ = writeln!(out, "  chain from_{n} {{");
    // A VLAN tag (even priority-tagged, id 0) would carry the frame past
    // the IP hooks where security groups are: guests send untagged.
    out.push_str("    ether type { 0x8100, 0x88a8 } drop\n");
    let _ = writeln!(out, "    meta mark set 0x{n:08x}");
    out.push_str("    udp sport 67 drop\n");
    out.push_str("    icmpv6 type nd-router-advert drop\n");
    let mac = &p.mac;
    let _ = writeln!(
        out,
        "    ether saddr {mac} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept"
    );
    // Addresses per MAC: the port's own, then each pair's.
    let mut by_mac: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    by_mac
        .entry(mac.as_str())
        .or_default()
        .extend(p.fixed_ips.iter().map(|ip| ip.to_string()));
    for pair in &p.allowed_address_pairs {
        by_mac
            .entry(pair.mac.as_str())
            .or_default()
            .push(pair.cidr.to_string());
    }
    for (m, addrs) in &by_mac {
        if addrs.is_empty() {
            continue;
        }
        let set = addrs.join(", ");
        let _ = writeln!(out, "    ether saddr {m} ip saddr {{ {set} }} accept");
        let _ = writeln!(
            out,
            "    ether saddr {m} arp saddr ether {m} arp saddr ip {{ {set} }} accept"
        );
    }
    for m in by_mac.keys() {
        let _ = writeln!(out, "    ether saddr {m} ip6 saddr fe80::/10 accept");
    }
    out.push_str("    drop\n  }\n");
}

fn inet_table(
    out: &mut String,
    table: &str,
    desired: &HostNetwork,
    zones: &BTreeMap<String, u16>,
    filtered: &[&PortSpec],
    groups: &BTreeMap<&str, (usize, &SecurityGroupSpec)>,
) {
    let _ = writeln!(out, "table inet {table} {{");
    // Member sets of the groups rules name as remote.
    for (i, g) in groups.values() {
        let members: Vec<String> = g.members.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "  set members_{i} {{\n    type ipv4_addr\n    flags interval\n    auto-merge"
        );
        if !members.is_empty() {
            let _ = writeln!(out, "    elements = {{ {} }}", members.join(", "));
        }
        out.push_str("  }\n");
    }
    // One tracking zone per network (bridged traffic enters the inet hooks
    // with the bridge as its input device), set before defragmentation
    // (-400) so fragments of two networks are never reassembled together.
    let zone_map: Vec<String> = desired
        .networks
        .iter()
        .filter_map(|n| {
            let z = zones.get(&n.id)?;
            Some(format!("\"{}\" : {z}", crate::names::bridge_name(&n.id)))
        })
        .collect();
    if !zone_map.is_empty() {
        let _ = writeln!(
            out,
            "  chain zones {{\n    type filter hook prerouting priority -450; policy accept;\n    ct zone set iifname map {{ {} }}\n  }}",
            zone_map.join(", ")
        );
    }
    // Guests never reach the host itself through a network's bridge.
    out.push_str(
        "  chain host {\n    type filter hook input priority 0; policy accept;\n    iifname \"brq*\" drop\n  }\n",
    );
    out.push_str("  chain egress {\n    type filter hook prerouting priority 0; policy accept;\n");
    if !filtered.is_empty() {
        let entries: Vec<String> = (0..filtered.len())
            .map(|i| format!("0x{:x} : jump egress_{}", index(i), index(i)))
            .collect();
        let _ = writeln!(
            out,
            "    meta mark and 0x0000ffff vmap {{ {} }}",
            entries.join(", ")
        );
    }
    out.push_str("  }\n");
    out.push_str("  chain ingress {\n    type filter hook forward priority 0; policy accept;\n");
    if !filtered.is_empty() {
        let entries: Vec<String> = (0..filtered.len())
            .map(|i| format!("0x{:x} : jump ingress_{}", index(i) << 16, index(i)))
            .collect();
        let _ = writeln!(
            out,
            "    meta mark and 0xffff0000 vmap {{ {} }}",
            entries.join(", ")
        );
    }
    out.push_str("  }\n");
    for (i, p) in filtered.iter().enumerate() {
        let n = index(i);
        let mine: Vec<usize> = p
            .security_groups
            .iter()
            .filter_map(|g| groups.get(g.as_str()).map(|(gi, _)| *gi))
            .collect();
        port_chain(out, "egress", n, &mine, "udp sport 68 udp dport 67 accept");
        port_chain(out, "ingress", n, &mine, "udp sport 67 udp dport 68 accept");
    }
    for (gi, g) in groups.values() {
        for dir in [Direction::Ingress, Direction::Egress] {
            group_chain(out, *gi, g, dir, groups);
        }
    }
    out.push_str("}\n");
}

/// A port's chain for one direction: replies pass, DHCP passes, then its
/// groups' rules; anything else is dropped.
fn port_chain(out: &mut String, dir: &str, n: usize, groups: &[usize], dhcp: &str) {
    let _ = writeln!(out, "  chain {dir}_{n} {{");
    out.push_str("    ct state established,related accept\n    ct state invalid drop\n");
    let _ = writeln!(out, "    {dhcp}");
    for g in groups {
        let _ = writeln!(out, "    jump group_{g}_{dir}");
    }
    out.push_str("    drop\n  }\n");
}

fn group_chain(
    out: &mut String,
    gi: usize,
    g: &SecurityGroupSpec,
    dir: Direction,
    groups: &BTreeMap<&str, (usize, &SecurityGroupSpec)>,
) {
    let name = match dir {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    let _ = writeln!(out, "  chain group_{gi}_{name} {{");
    for rule in g.rules.iter().filter(|r| r.direction == dir) {
        if let Some(m) = rule_match(rule, groups) {
            let _ = writeln!(out, "    {m}accept");
        }
    }
    out.push_str("  }\n");
}

/// The match of one rule (ending in a space, or empty for "anything"), or
/// `None` when it can match nothing here (a remote group unknown to this
/// host, a remote group for IPv6: groups' members are IPv4 addresses).
fn rule_match(
    r: &RuleSpec,
    groups: &BTreeMap<&str, (usize, &SecurityGroupSpec)>,
) -> Option<String> {
    let mut m = String::new();
    let (family, addr) = match r.ethertype {
        EtherType::IPv4 => ("ipv4", "ip"),
        EtherType::IPv6 => ("ipv6", "ip6"),
    };
    let _ = write!(m, "meta nfproto {family} ");
    // The remote end: the source of ingress traffic, the destination of
    // egress traffic.
    let side = match r.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    if let Some(prefix) = r.remote_ip_prefix.as_deref().filter(|p| !p.is_empty()) {
        let zero = prefix == "0.0.0.0/0" || prefix == "::/0";
        let fits = match r.ethertype {
            EtherType::IPv4 => !prefix.contains(':'),
            EtherType::IPv6 => prefix.contains(':'),
        };
        if !fits {
            return None;
        }
        if !zero {
            let _ = write!(m, "{addr} {side} {prefix} ");
        }
    }
    if let Some(remote) = &r.remote_group {
        if r.ethertype == EtherType::IPv6 {
            return None;
        }
        let (gi, _) = groups.get(remote.as_str())?;
        let _ = write!(m, "ip {side} @members_{gi} ");
    }
    if let Some(proto) = r.protocol {
        let _ = write!(m, "meta l4proto {proto} ");
        match proto {
            // ICMP: the "ports" are type and code.
            1 | 58 => {
                let kw = if proto == 1 { "icmp" } else { "icmpv6" };
                if let Some(t) = r.port_min {
                    let _ = write!(m, "{kw} type {t} ");
                    if let Some(c) = r.port_max {
                        let _ = write!(m, "{kw} code {c} ");
                    }
                }
            }
            6 | 17 | 33 | 132 | 136 => match (r.port_min, r.port_max) {
                (Some(a), Some(b)) if a != b => {
                    let _ = write!(m, "th dport {a}-{b} ");
                }
                (Some(a), _) | (None, Some(a)) => {
                    let _ = write!(m, "th dport {a} ");
                }
                (None, None) => {}
            },
            _ => {}
        }
    }
    Some(m)
}

fn tap(p: &PortSpec) -> String {
    crate::names::tap_name(&p.id)
}

#[cfg(test)]
mod tests;
