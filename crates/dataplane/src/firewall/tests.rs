//! The ruleset's text for typical states; the kernel's verdicts are
//! checked by the namespace tests (tests/kernel.rs).

use super::*;
use cloud_driver::network::{AddressPair, NetworkSpec, SegmentSpec};
use cloud_model::network::Ipv4Cidr;

fn port(id: &str, ip: &str, security: bool, groups: &[&str]) -> PortSpec {
    PortSpec {
        id: id.into(),
        network_id: "net-1".into(),
        instance_id: None,
        mac: "fa:16:3e:00:00:01".into(),
        fixed_ips: vec![ip.parse().unwrap()],
        allowed_address_pairs: Vec::new(),
        port_security: security,
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn rule(direction: Direction, protocol: Option<u8>, ports: Option<(u16, u16)>) -> RuleSpec {
    RuleSpec {
        direction,
        ethertype: EtherType::IPv4,
        protocol,
        port_min: ports.map(|p| p.0),
        port_max: ports.map(|p| p.1),
        remote_ip_prefix: None,
        remote_group: None,
    }
}

fn state() -> HostNetwork {
    let mut p1 = port("p1", "10.0.0.5", true, &["default"]);
    p1.allowed_address_pairs.push(AddressPair {
        cidr: Ipv4Cidr::parse("10.0.0.100/32").unwrap(),
        mac: "fa:16:3e:00:00:99".into(),
    });
    HostNetwork {
        revision: 1,
        networks: vec![NetworkSpec {
            id: "net-1".into(),
            segment: SegmentSpec::Vxlan { vni: 7 },
            mtu: 1450,
            subnets: Vec::new(),
            peers: Vec::new(),
            remote_ports: Vec::new(),
        }],
        ports: vec![p1, port("p2", "10.0.0.6", false, &[])],
        security_groups: vec![SecurityGroupSpec {
            id: "default".into(),
            rules: vec![
                rule(Direction::Egress, None, None),
                RuleSpec {
                    remote_group: Some("default".into()),
                    ..rule(Direction::Ingress, None, None)
                },
                rule(Direction::Ingress, Some(6), Some((22, 22))),
                rule(Direction::Ingress, Some(17), Some((1000, 2000))),
                rule(Direction::Ingress, Some(1), Some((8, 0))),
            ],
            members: vec![Ipv4Cidr::parse("10.0.0.5/32").unwrap()],
        }],
        routers: Vec::new(),
    }
}

fn zones() -> BTreeMap<String, u16> {
    BTreeMap::from([("net-1".to_owned(), 7)])
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l.trim() == line),
        "missing `{line}` in\n{text}"
    );
}

#[test]
fn filtered_ports_are_marked_and_checked_unfiltered_ones_pass_unknown_taps_drop() {
    let r = ruleset("cloud", &state(), &zones());
    has(&r, "iifname vmap { \"tapp1\" : jump from_1 }");
    has(&r, "iifname { \"tapp2\" } accept");
    has(&r, "iifname \"tap*\" drop");
    has(&r, "oifname vmap { \"tapp1\" : jump to_1 }");
    has(&r, "meta mark set meta mark or 0x00010000");
    has(&r, "meta mark and 0x0000ffff vmap { 0x1 : jump egress_1 }");
    has(
        &r,
        "meta mark and 0xffff0000 vmap { 0x10000 : jump ingress_1 }",
    );
    has(&r, "ct zone set iifname map { \"brqnet-1\" : 7 }");
    has(
        &r,
        "type filter hook prerouting priority -450; policy accept;",
    );
    // Nothing to or from a tap the host has no rules for.
    has(&r, "oifname { \"tapp1\", \"tapp2\" } accept");
    has(&r, "oifname \"tap*\" drop");
    // Tagged frames never reach the IP hooks' rules.
    has(&r, "ether type { 0x8100, 0x88a8 } drop");
    // Guests never reach the host.
    has(&r, "iifname \"brq*\" drop");
    // The tables are replaced, not appended to.
    assert!(r.starts_with("add table bridge cloud\ndelete table bridge cloud\n"));
}

#[test]
fn anti_spoofing_allows_own_and_pair_addresses_only() {
    let r = ruleset("cloud", &state(), &zones());
    has(
        &r,
        "ether saddr fa:16:3e:00:00:01 ip saddr { 10.0.0.5 } accept",
    );
    has(
        &r,
        "ether saddr fa:16:3e:00:00:99 ip saddr { 10.0.0.100/32 } accept",
    );
    has(
        &r,
        "ether saddr fa:16:3e:00:00:01 arp saddr ether fa:16:3e:00:00:01 arp saddr ip { 10.0.0.5 } accept",
    );
    has(&r, "udp sport 67 drop");
}

#[test]
fn rules_become_matches_with_replies_and_dhcp_allowed() {
    let r = ruleset("cloud", &state(), &zones());
    has(&r, "chain group_0_ingress {");
    has(&r, "meta nfproto ipv4 ip saddr @members_0 accept");
    has(&r, "meta nfproto ipv4 meta l4proto 6 th dport 22 accept");
    has(
        &r,
        "meta nfproto ipv4 meta l4proto 17 th dport 1000-2000 accept",
    );
    has(
        &r,
        "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 accept",
    );
    has(&r, "meta nfproto ipv4 accept");
    has(&r, "ct state established,related accept");
    has(&r, "udp sport 67 udp dport 68 accept");
    has(&r, "jump group_0_ingress");
    has(&r, "elements = { 10.0.0.5/32 }");
}

#[test]
fn a_remote_group_unknown_here_or_for_ipv6_matches_nothing() {
    let groups = BTreeMap::new();
    let mut r = rule(Direction::Ingress, None, None);
    r.remote_group = Some("elsewhere".into());
    assert_eq!(rule_match(&r, &groups), None);
    let mut v6 = rule(Direction::Ingress, None, None);
    v6.ethertype = EtherType::IPv6;
    v6.remote_ip_prefix = Some("10.0.0.0/8".into());
    assert_eq!(rule_match(&v6, &groups), None);
}

#[test]
fn an_empty_host_keeps_no_tables() {
    let r = ruleset("cloud", &HostNetwork::default(), &BTreeMap::new());
    assert_eq!(
        r,
        "add table bridge cloud\ndelete table bridge cloud\nadd table inet cloud\ndelete table inet cloud\n"
    );
}
