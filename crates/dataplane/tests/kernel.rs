//! The data plane on the real kernel: two hosts and their guests as
//! network namespaces on an underlay bridge this test makes, each host's
//! data plane applied as the agent would. Needs root (namespaces, nft,
//! dnsmasq); under `CI=true` a machine that cannot run it fails the test.

use cloud_dataplane::names::{bridge_name, tap_name, vxlan_name};
use cloud_dataplane::{DataPlane, DataPlaneConfig, cmd, netns};
use cloud_driver::HostNetwork;
use cloud_driver::network::{
    Direction, EtherType, NetworkSpec, PortSpec, RemotePort, RuleSpec, SecurityGroupSpec,
    SegmentSpec, SubnetSpec,
};
use cloud_model::network::Ipv4Cidr;
use std::net::Ipv4Addr;

/// Deletes what the test made, even when it fails.
struct Bed {
    tag: String,
    namespaces: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", ns])
                .status();
        }
        for ns in netns::list(&self.tag) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &ns])
                .status();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &format!("ul{}", self.tag)])
            .status();
        // dnsmasq of the test's networks ran in namespaces now gone.
        let _ = std::process::Command::new("pkill")
            .args(["-f", &format!("cloudtest-{}", self.tag)])
            .status();
    }
}

fn can_run() -> bool {
    let root = nix_is_root();
    let tools = ["ip", "nft", "dnsmasq", "busybox", "bridge"]
        .iter()
        .all(|t| cmd::find_program(t).is_some());
    if root && tools {
        return true;
    }
    let why = format!("needs root ({root}) and ip, nft, dnsmasq, busybox, bridge ({tools})");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run the kernel data plane test: {why}");
    }
    eprintln!("skipping: {why}");
    false
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

async fn sh(args: &[&str]) -> anyhow::Result<String> {
    cmd::run(args[0], &args[1..]).await
}

/// Runs busybox `args` in guest namespace `ns`; Ok when it exits 0.
async fn in_guest(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    cmd::run_in(Some(ns), "busybox", args).await
}

async fn ping(ns: &str, ip: &str) -> bool {
    in_guest(ns, &["ping", "-c", "1", "-W", "1", ip])
        .await
        .is_ok()
}

/// A guest: a namespace with `eth0` whose host end is the port's tap in
/// the host namespace, attached to the network's bridge.
async fn guest(host_ns: &str, ns: &str, port: &PortSpec) {
    netns::ensure(ns).await.unwrap();
    let tap = tap_name(&port.id);
    sh(&[
        "ip", "-n", host_ns, "link", "add", &tap, "type", "veth", "peer", "name", "eth0", "netns",
        ns,
    ])
    .await
    .unwrap();
    sh(&[
        "ip",
        "-n",
        host_ns,
        "link",
        "set",
        &tap,
        "master",
        &bridge_name(&port.network_id),
        "up",
    ])
    .await
    .unwrap();
    sh(&[
        "ip", "-n", ns, "link", "set", "eth0", "address", &port.mac, "mtu", "1450", "up",
    ])
    .await
    .unwrap();
}

fn port(id: &str, mac: &str, ip: &str, security: bool) -> PortSpec {
    PortSpec {
        id: id.into(),
        network_id: "kt-net".into(),
        instance_id: None,
        mac: mac.into(),
        fixed_ips: vec![ip.parse().unwrap()],
        allowed_address_pairs: Vec::new(),
        port_security: security,
        security_groups: if security {
            vec!["sg".into()]
        } else {
            Vec::new()
        },
    }
}

fn state(local: &PortSpec, remote: &PortSpec, peer: Ipv4Addr) -> HostNetwork {
    let ip = |p: &PortSpec| Ipv4Cidr::parse(&format!("{}/32", p.fixed_ips[0])).unwrap();
    HostNetwork {
        revision: 1,
        networks: vec![NetworkSpec {
            id: "kt-net".into(),
            segment: SegmentSpec::Vxlan { vni: 4242 },
            mtu: 1450,
            subnets: vec![SubnetSpec {
                id: "kt-sub".into(),
                cidr: Ipv4Cidr::parse("10.251.0.0/24").unwrap(),
                gateway: Some("10.251.0.1".parse().unwrap()),
                dhcp: true,
                dns: Vec::new(),
                host_routes: Vec::new(),
                dhcp_address: None,
                gateway_elsewhere: false,
            }],
            peers: vec![peer],
            remote_ports: vec![RemotePort {
                mac: remote.mac.clone(),
                ips: remote.fixed_ips.clone(),
                host_ip: peer,
            }],
        }],
        ports: vec![local.clone()],
        // OpenStack's default group: all egress, ingress from members.
        security_groups: vec![SecurityGroupSpec {
            id: "sg".into(),
            rules: vec![
                RuleSpec {
                    direction: Direction::Egress,
                    ethertype: EtherType::IPv4,
                    protocol: None,
                    port_min: None,
                    port_max: None,
                    remote_ip_prefix: None,
                    remote_group: None,
                },
                RuleSpec {
                    direction: Direction::Ingress,
                    ethertype: EtherType::IPv4,
                    protocol: None,
                    port_min: None,
                    port_max: None,
                    remote_ip_prefix: None,
                    remote_group: Some("sg".into()),
                },
            ],
            members: vec![ip(local), ip(remote)],
        }],
        routers: Vec::new(),
    }
}

/// Runs a DHCP client in the guest; returns what it was given.
async fn dhcp(ns: &str, dir: &std::path::Path) -> String {
    let script = dir.join(format!("{ns}.sh"));
    let out = dir.join(format!("{ns}.lease"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip $subnet $router $mtu\" > {}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = script.display().to_string();
    in_guest(
        ns,
        &[
            "udhcpc", "-i", "eth0", "-n", "-q", "-t", "5", "-T", "1", "-O", "mtu", "-s", &s,
        ],
    )
    .await
    .unwrap();
    std::fs::read_to_string(out).unwrap_or_default()
}

#[tokio::test]
async fn two_hosts_carry_a_network_filter_it_and_tear_it_down() {
    if !can_run() {
        return;
    }
    let tag = format!("kt{:04x}", std::process::id() % 0xffff);
    let mut bed = Bed {
        tag: tag.clone(),
        namespaces: Vec::new(),
        _dirs: Vec::new(),
    };
    let ul = format!("ul{tag}");
    sh(&["ip", "link", "add", &ul, "type", "bridge"])
        .await
        .unwrap();
    sh(&["ip", "link", "set", &ul, "up"]).await.unwrap();
    let mut planes = Vec::new();
    for i in 1..=2u8 {
        let h = format!("{tag}h{i}");
        netns::ensure(&h).await.unwrap();
        bed.namespaces.push(h.clone());
        let outer = format!("{ul}{i}");
        sh(&[
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", "ul0", "netns", &h,
        ])
        .await
        .unwrap();
        sh(&["ip", "link", "set", &outer, "master", &ul, "up"])
            .await
            .unwrap();
        let addr = format!("10.250.0.{i}/24");
        sh(&["ip", "-n", &h, "addr", "add", &addr, "dev", "ul0"])
            .await
            .unwrap();
        sh(&["ip", "-n", &h, "link", "set", "ul0", "up"])
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        planes.push(DataPlane::new(DataPlaneConfig {
            local_ip: Some(Ipv4Addr::new(10, 250, 0, i)),
            host_namespace: Some(h.clone()),
            namespace_prefix: format!("{h}-"),
            state_dir: dir.path().join(format!("cloudtest-{tag}")),
            ..DataPlaneConfig::default()
        }));
        bed._dirs.push(dir);
    }
    let p1 = port("kt-port-1", "fa:16:3e:10:00:01", "10.251.0.11", true);
    let p2 = port("kt-port-2", "fa:16:3e:10:00:02", "10.251.0.12", true);
    let (h1, h2) = (format!("{tag}h1"), format!("{tag}h2"));
    planes[0]
        .apply(&state(&p1, &p2, Ipv4Addr::new(10, 250, 0, 2)))
        .await
        .unwrap();
    planes[1]
        .apply(&state(&p2, &p1, Ipv4Addr::new(10, 250, 0, 1)))
        .await
        .unwrap();
    // Applying the same state again changes nothing and fails nothing.
    planes[0]
        .apply(&state(&p1, &p2, Ipv4Addr::new(10, 250, 0, 2)))
        .await
        .unwrap();
    let (g1, g2) = (format!("{tag}g1"), format!("{tag}g2"));
    bed.namespaces.extend([g1.clone(), g2.clone()]);
    guest(&h1, &g1, &p1).await;
    guest(&h2, &g2, &p2).await;

    // DHCP from the network's namespace on each guest's own host.
    let dir = tempfile::tempdir().unwrap();
    let lease = dhcp(&g1, dir.path()).await;
    assert_eq!(lease.trim(), "10.251.0.11 255.255.255.0 10.251.0.1 1450");
    let lease = dhcp(&g2, dir.path()).await;
    assert!(lease.starts_with("10.251.0.12 "), "{lease}");
    for (g, ip) in [(&g1, "10.251.0.11/24"), (&g2, "10.251.0.12/24")] {
        sh(&["ip", "-n", g, "addr", "add", ip, "dev", "eth0"])
            .await
            .unwrap();
    }

    // Across hosts over VXLAN, and to the gateway in the namespace.
    assert!(ping(&g1, "10.251.0.12").await, "g1 cannot reach g2");
    assert!(ping(&g2, "10.251.0.11").await, "g2 cannot reach g1");
    assert!(ping(&g1, "10.251.0.1").await, "g1 cannot reach its gateway");
    // The bridge has no address of any kind: no IPv6 link-local either.
    let v6 = sh(&[
        "ip",
        "-n",
        &h1,
        "-6",
        "addr",
        "show",
        "dev",
        &bridge_name("kt-net"),
    ])
    .await
    .unwrap();
    assert!(
        !v6.contains("inet6"),
        "the bridge has an IPv6 address: {v6}"
    );
    // The host's own underlay address is not reachable from the guest.
    assert!(!ping(&g1, "10.250.0.1").await, "a guest reached its host");

    // A forged source address gets nothing through.
    sh(&[
        "ip",
        "-n",
        &g1,
        "addr",
        "add",
        "10.251.0.99/24",
        "dev",
        "eth0",
    ])
    .await
    .unwrap();
    assert!(
        in_guest(
            &g1,
            &[
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                "-I",
                "10.251.0.99",
                "10.251.0.12"
            ]
        )
        .await
        .is_err(),
        "a spoofed source got through"
    );

    // The forwarding entries name the peer and the remote port.
    let fdb = sh(&["bridge", "-n", &h1, "fdb", "show", "dev", &vxlan_name(4242)])
        .await
        .unwrap();
    assert!(fdb.contains("00:00:00:00:00:00 dst 10.250.0.2"), "{fdb}");
    assert!(fdb.contains("fa:16:3e:10:00:02 dst 10.250.0.2"), "{fdb}");

    // The last port leaves host 2: its devices go, and host 1 forgets it.
    planes[1].apply(&HostNetwork::default()).await.unwrap();
    let mut s1 = state(&p1, &p2, Ipv4Addr::new(10, 250, 0, 2));
    s1.networks[0].peers.clear();
    s1.networks[0].remote_ports.clear();
    planes[0].apply(&s1).await.unwrap();
    let links = sh(&["ip", "-n", &h2, "-o", "link"]).await.unwrap();
    assert!(
        !links.contains(&bridge_name("kt-net")) && !links.contains(&vxlan_name(4242)),
        "{links}"
    );
    assert!(!netns::exists(&format!("{h2}-qdhcp-kt-net")));
    let fdb = sh(&["bridge", "-n", &h1, "fdb", "show", "dev", &vxlan_name(4242)])
        .await
        .unwrap();
    assert!(!fdb.contains("10.250.0.2"), "{fdb}");
}

fn subnet(id: &str, cidr: &str, gateway: &str, dhcp_address: Option<&str>) -> SubnetSpec {
    SubnetSpec {
        id: id.into(),
        cidr: Ipv4Cidr::parse(cidr).unwrap(),
        gateway: Some(gateway.parse().unwrap()),
        dhcp: dhcp_address.is_some(),
        dns: Vec::new(),
        host_routes: Vec::new(),
        dhcp_address: dhcp_address.map(|a| a.parse().unwrap()),
        gateway_elsewhere: true,
    }
}

fn network(id: &str, segment: SegmentSpec, subnets: Vec<SubnetSpec>) -> NetworkSpec {
    NetworkSpec {
        id: id.into(),
        segment,
        mtu: 1450,
        subnets,
        peers: Vec::new(),
        remote_ports: Vec::new(),
    }
}

/// A router on a host with the network role: floating IPs reach guests
/// from outside (who see the outside address), a guest without one goes
/// out through SNAT as the router, two subnets on the router reach each
/// other, and removing the router leaves nothing behind.
#[tokio::test]
async fn a_router_routes_snats_and_maps_floating_ips() {
    use cloud_driver::network::{FloatingIpSpec, RouterGateway, RouterPort, RouterSpec};
    if !can_run() {
        return;
    }
    let tag = format!("kr{:04x}", std::process::id() % 0xffff);
    let mut bed = Bed {
        tag: tag.clone(),
        namespaces: Vec::new(),
        _dirs: Vec::new(),
    };
    let (h, outside) = (format!("{tag}h"), format!("{tag}out"));
    for ns in [&h, &outside] {
        netns::ensure(ns).await.unwrap();
        bed.namespaces.push(ns.clone());
    }
    // The external network: the host's ext0 wired to an outside namespace.
    sh(&[
        "ip", "-n", &h, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns",
        &outside,
    ])
    .await
    .unwrap();
    sh(&[
        "ip",
        "-n",
        &outside,
        "addr",
        "add",
        "172.31.9.1/24",
        "dev",
        "eth0",
    ])
    .await
    .unwrap();
    sh(&["ip", "-n", &outside, "link", "set", "eth0", "up"])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plane = DataPlane::new(DataPlaneConfig {
        host_namespace: Some(h.clone()),
        namespace_prefix: format!("{h}-"),
        state_dir: dir.path().join(format!("cloudtest-{tag}")),
        physical_interfaces: [("public".to_owned(), "ext0".to_owned())].into(),
        ..DataPlaneConfig::default()
    });
    bed._dirs.push(dir);
    let mut p1 = port("kr-p1", "fa:16:3e:20:00:01", "10.252.0.11", true);
    p1.network_id = "kr-a".into();
    let mut p2 = port("kr-p2", "fa:16:3e:20:00:02", "10.252.0.12", true);
    p2.network_id = "kr-a".into();
    let mut p3 = port("kr-p3", "fa:16:3e:20:00:03", "10.253.0.11", true);
    p3.network_id = "kr-b".into();
    let mut group = state(&p1, &p2, Ipv4Addr::new(10, 250, 0, 9)).security_groups;
    // Let anyone reach TCP 8080, and members each other.
    group[0].rules.push(RuleSpec {
        direction: Direction::Ingress,
        ethertype: EtherType::IPv4,
        protocol: Some(6),
        port_min: Some(8080),
        port_max: Some(8080),
        remote_ip_prefix: Some("0.0.0.0/0".into()),
        remote_group: None,
    });
    group[0]
        .members
        .push(Ipv4Cidr::parse("10.253.0.11/32").unwrap());
    let router = RouterSpec {
        id: "kr-router".into(),
        interfaces: vec![
            RouterPort {
                port_id: "kr-ra".into(),
                network_id: "kr-a".into(),
                mac: "fa:16:3e:20:00:a1".into(),
                address: "10.252.0.1".parse().unwrap(),
                cidr: Ipv4Cidr::parse("10.252.0.0/24").unwrap(),
            },
            RouterPort {
                port_id: "kr-rb".into(),
                network_id: "kr-b".into(),
                mac: "fa:16:3e:20:00:b1".into(),
                address: "10.253.0.1".parse().unwrap(),
                cidr: Ipv4Cidr::parse("10.253.0.0/24").unwrap(),
            },
        ],
        gateway: Some(RouterGateway {
            port_id: "kr-rg".into(),
            network_id: "kr-ext".into(),
            mac: "fa:16:3e:20:00:e1".into(),
            address: "172.31.9.10".parse().unwrap(),
            cidr: Ipv4Cidr::parse("172.31.9.0/24").unwrap(),
            next_hop: Some("172.31.9.1".parse().unwrap()),
            snat: true,
        }),
        floating_ips: vec![FloatingIpSpec {
            floating_ip: "172.31.9.20".parse().unwrap(),
            fixed_ip: "10.252.0.11".parse().unwrap(),
        }],
        routes: Vec::new(),
    };
    let desired = HostNetwork {
        revision: 1,
        networks: vec![
            network(
                "kr-a",
                SegmentSpec::Vxlan { vni: 4301 },
                vec![subnet(
                    "kr-sa",
                    "10.252.0.0/24",
                    "10.252.0.1",
                    Some("10.252.0.2"),
                )],
            ),
            network(
                "kr-b",
                SegmentSpec::Vxlan { vni: 4302 },
                vec![subnet(
                    "kr-sb",
                    "10.253.0.0/24",
                    "10.253.0.1",
                    Some("10.253.0.2"),
                )],
            ),
            network(
                "kr-ext",
                SegmentSpec::Flat {
                    physical_network: "public".into(),
                },
                vec![subnet("kr-se", "172.31.9.0/24", "172.31.9.1", None)],
            ),
        ],
        ports: vec![p1.clone(), p2.clone(), p3.clone()],
        security_groups: group,
        routers: vec![router.clone()],
    };
    let failed = plane.apply(&desired).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let (g1, g2, g3) = (format!("{tag}g1"), format!("{tag}g2"), format!("{tag}g3"));
    bed.namespaces.extend([g1.clone(), g2.clone(), g3.clone()]);
    for (g, p, cidr, gw) in [
        (&g1, &p1, "10.252.0.11/24", "10.252.0.1"),
        (&g2, &p2, "10.252.0.12/24", "10.252.0.1"),
        (&g3, &p3, "10.253.0.11/24", "10.253.0.1"),
    ] {
        guest(&h, g, p).await;
        sh(&["ip", "-n", g, "addr", "add", cidr, "dev", "eth0"])
            .await
            .unwrap();
        sh(&["ip", "-n", g, "route", "add", "default", "via", gw])
            .await
            .unwrap();
    }
    // DHCP on a routed subnet: the router is the gateway, metadata goes
    // through the namespace's own address.
    let lease_dir = tempfile::tempdir().unwrap();
    let lease = dhcp(&g1, lease_dir.path()).await;
    assert_eq!(lease.trim(), "10.252.0.11 255.255.255.0 10.252.0.1 1450");

    // Outside -> floating IP -> guest.
    let server = tokio::spawn({
        let g1 = g1.clone();
        async move {
            in_guest(
                &g1,
                &[
                    "timeout", "10", "busybox", "nc", "-l", "-p", "8080", "-e", "echo", "via-fip",
                ],
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let got = in_guest(&outside, &["nc", "-w", "3", "172.31.9.20", "8080"])
        .await
        .unwrap_or_default();
    let _ = server.await;
    assert_eq!(got.trim(), "via-fip", "no answer through the floating IP");
    // ... and the guest saw the outside's own address (no SNAT inward):
    // the host's tracking of the guest's traffic says so.
    let tracked = sh(&["ip", "netns", "exec", &h, "conntrack", "-L", "-p", "tcp"])
        .await
        .unwrap_or_default();
    assert!(
        tracked.contains("src=172.31.9.1 dst=10.252.0.11"),
        "the guest did not see the outside address: {tracked}"
    );
    // Out: the guest with a floating IP leaves as it, the other through
    // SNAT as the router.
    assert!(ping(&g1, "172.31.9.1").await, "g1 cannot reach the outside");
    assert!(ping(&g2, "172.31.9.1").await, "g2 cannot reach the outside");
    let routed = sh(&[
        "ip",
        "netns",
        "exec",
        &format!("{h}-qrouter-kr-router"),
        "conntrack",
        "-L",
        "-p",
        "icmp",
    ])
    .await
    .unwrap_or_default();
    assert!(
        routed.contains("src=10.252.0.11 dst=172.31.9.1") && routed.contains("dst=172.31.9.20"),
        "g1 did not leave as its floating IP: {routed}"
    );
    assert!(
        routed.contains("src=10.252.0.12 dst=172.31.9.1") && routed.contains("dst=172.31.9.10"),
        "g2 did not leave as the router: {routed}"
    );
    // Two subnets on one router reach each other.
    assert!(
        ping(&g1, "10.253.0.11").await,
        "g1 cannot reach g3 through the router"
    );
    // The router's address forwards nothing from outside.
    assert!(
        in_guest(&outside, &["nc", "-w", "2", "172.31.9.10", "8080"])
            .await
            .unwrap_or_default()
            .is_empty()
    );

    // Without the router: no namespace, and the guests lose the outside.
    let mut bare = desired.clone();
    bare.routers.clear();
    plane.apply(&bare).await.unwrap();
    assert!(!netns::exists(&format!("{h}-qrouter-kr-router")));
    assert!(!ping(&g1, "172.31.9.1").await);
    plane.apply(&HostNetwork::default()).await.unwrap();
}
