//! Namespace guests for real: a host namespace with a network's bridge, a
//! DHCP server namespace on it (dnsmasq, standing in for the data plane
//! whose `apply` is not written yet), and a guest spawned by the driver
//! that must get its lease, route and MTU, say so on its console, ping the
//! server, lose its link when powered off, get it back (rebuilt if its NIC
//! vanished) when powered on or rebooted, and vanish when destroyed.
//!
//! The same guest then gets its lease from the real data plane
//! (`cloud-dataplane`'s bridge, network namespace, dnsmasq and nftables),
//! applied through the driver as an agent does.
//!
//! Needs root (namespaces), `ip`, `busybox` and `dnsmasq`. Every name is
//! unique to the run and everything is deleted at the end, even when an
//! assertion fails (see [`Cleanup`]). Traffic only ever goes to addresses
//! inside the namespaces made here (10.234.17.0/24).

use cloud_dataplane::names::{bridge_name, tap_name};
use cloud_dataplane::{DataPlane, DataPlaneConfig};
use cloud_driver::network::{
    Direction, EtherType, NetworkSpec, PortSpec, RuleSpec, SecurityGroupSpec, SegmentSpec,
    SubnetSpec,
};
use cloud_driver::{
    Driver, DriverError, FlavorSpec, HostNetwork, ImageSpec, NicSpec, RebootKind, VmSpec,
};
use cloud_driver_netns::records::GuestFiles;
use cloud_driver_netns::{NetnsConfig, NetnsDriver};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use cloud_model::network::{HostRoute, Ipv4Cidr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER_IP: &str = "10.234.17.1";
const GUEST_IP: &str = "10.234.17.5";

/// Runs `args` (a command line) and returns whether it succeeded and its
/// stdout and stderr.
fn sh(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Like [`sh`], failing the test if the command fails.
fn must(args: &[&str]) -> String {
    let (ok, text) = sh(args);
    assert!(ok, "{args:?} failed: {text}");
    text
}

/// Deletes the namespaces of the test (every one whose name starts with
/// the run's tag: hosts, guests, the data plane's network namespaces),
/// and kills what runs in them (dnsmasq, the guests' DHCP clients), when
/// the test ends however it ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut all: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&self.0))
                    .collect()
            })
            .unwrap_or_default();
        // Guests and network namespaces first, hosts last.
        all.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for ns in &all {
            let (_, pids) = sh(&["ip", "netns", "pids", ns]);
            for pid in pids.split_whitespace() {
                let _ = sh(&["kill", "-9", pid]);
            }
            let _ = sh(&["ip", "netns", "delete", ns]);
        }
    }
}

/// Whether this machine can run the test; `false` (skip) only outside CI,
/// where a machine that cannot is a failure.
fn runnable(probe_ns: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut missing: Vec<&str> = ["ip", "busybox", "dnsmasq"]
        .into_iter()
        .filter(|p| cloud_dataplane::cmd::find_program(p).is_none())
        .collect();
    let (ok, why) = sh(&["ip", "netns", "add", probe_ns]);
    if ok {
        let _ = sh(&["ip", "netns", "delete", probe_ns]);
    } else {
        missing.push("the right to create network namespaces (root)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("the netns driver test needs {}: {why}", missing.join(", "));
    assert!(!ci, "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}

/// A unique tag for this run's names (8 hex digits keep interface names
/// under 15 characters).
fn run_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

fn spec(nics: Vec<NicSpec>) -> VmSpec {
    let id = InstanceId::new();
    VmSpec {
        id,
        name: "web-1".into(),
        hostname: "web-1".into(),
        project_id: "p".into(),
        user_id: "u".into(),
        flavor: FlavorSpec {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            swap_mb: 0,
            ephemeral_gb: 0,
            extra_specs: Default::default(),
        },
        image: ImageSpec {
            id: "img".into(),
            disk_format: "raw".into(),
            size: 0,
            checksum: String::new(),
            sha512: None,
            properties: Default::default(),
        },
        kernel: None,
        ramdisk: None,
        nics,
        user_data: None,
        metadata: Default::default(),
        key: None,
        availability_zone: "nova".into(),
        launch_index: 0,
        numa: None,
    }
}

fn nic(network_id: &str, mac: &str) -> NicSpec {
    NicSpec {
        port_id: uuid::Uuid::new_v4().to_string(),
        network_id: network_id.into(),
        mac: mac.into(),
        ip: Some(GUEST_IP.parse().unwrap()),
        prefix: Some(24),
        gateway: Some(SERVER_IP.parse().unwrap()),
        dns: vec![SERVER_IP.parse().unwrap()],
        dhcp: true,
        mtu: 1400,
    }
}

/// Polls `check` for up to 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Some(state) = check() else { return };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A driver for host `host_ns` keeping its guests' state in `state`;
/// `dp` adjusts the data plane's settings.
fn driver(
    host_ns: &str,
    state: &Path,
    prefix: &str,
    dp: impl FnOnce(&mut DataPlaneConfig),
) -> NetnsDriver {
    let mut config = DataPlaneConfig {
        host_namespace: Some(host_ns.to_owned()),
        ..DataPlaneConfig::default()
    };
    dp(&mut config);
    NetnsDriver::new(
        NetnsConfig {
            state_dir: state.to_owned(),
            guest_prefix: prefix.to_owned(),
            dhcp_timeout_secs: 5,
            ..NetnsConfig::default()
        },
        Arc::new(DataPlane::new(config)),
    )
}

/// Whether the guest in `guest_ns` gets an answer from `ip`.
fn pings(guest_ns: &str, ip: &str) -> bool {
    sh(&[
        "ip", "netns", "exec", guest_ns, "busybox", "ping", "-c1", "-W1", ip,
    ])
    .0
}

#[tokio::test]
async fn a_namespace_guest_gets_its_lease_powers_off_and_on_and_is_destroyed() {
    let tag = run_tag();
    let (host, server) = (format!("cnt{tag}h"), format!("cnt{tag}d"));
    let prefix = format!("cnt{tag}-");
    let _cleanup = Cleanup(format!("cnt{tag}"));
    if !runnable(&format!("cnt{tag}p")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    // The host with the network's bridge, and the DHCP server on it.
    let network = uuid::Uuid::new_v4().to_string();
    let bridge = bridge_name(&network);
    for ns in [&host, &server] {
        must(&["ip", "netns", "add", ns]);
        must(&["ip", "-n", ns, "link", "set", "dev", "lo", "up"]);
    }
    must(&["ip", "-n", &host, "link", "add", &bridge, "type", "bridge"]);
    must(&["ip", "-n", &host, "link", "set", "dev", &bridge, "up"]);
    let uplink = format!("dh{tag}");
    must(&[
        "ip", "-n", &host, "link", "add", &uplink, "type", "veth", "peer", "name", "eth0", "netns",
        &server,
    ]);
    must(&[
        "ip", "-n", &host, "link", "set", "dev", &uplink, "master", &bridge, "up",
    ]);
    must(&[
        "ip",
        "-n",
        &server,
        "addr",
        "add",
        &format!("{SERVER_IP}/24"),
        "dev",
        "eth0",
    ]);
    must(&["ip", "-n", &server, "link", "set", "dev", "eth0", "up"]);
    let mac = format!("fa:16:3e:{}:{}:{}", &tag[0..2], &tag[2..4], &tag[4..6]);
    let dir = tmp.path().display().to_string();
    must(&[
        "ip",
        "netns",
        "exec",
        &server,
        "dnsmasq",
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--port=0",
        "--bind-interfaces",
        "--interface=eth0",
        "--except-interface=lo",
        "--dhcp-range=10.234.17.0,static,255.255.255.0,1h",
        &format!("--dhcp-host={mac},{GUEST_IP}"),
        &format!("--dhcp-option=option:router,{SERVER_IP}"),
        &format!("--dhcp-option=option:dns-server,{SERVER_IP}"),
        "--dhcp-option=option:mtu,1400",
        &format!("--pid-file={dir}/dnsmasq.pid"),
        &format!("--dhcp-leasefile={dir}/dnsmasq.leases"),
    ]);

    // The guest.
    let state = tmp.path().join("state");
    let d = driver(&host, &state, &prefix, |_| ());
    let vm = spec(vec![nic(&network, &mac)]);
    let guest = d.guest_ns(vm.id);
    let tap = tap_name(&vm.nics[0].port_id);
    d.spawn(&vm).await.unwrap();
    d.spawn(&vm).await.expect("a second spawn is Ok");
    assert_eq!(
        d.info(vm.id).await.unwrap().power_state,
        PowerState::Running
    );
    assert_eq!(d.list().await.unwrap().len(), 1);
    let host_tap = must(&["ip", "-n", &host, "link", "show", "dev", &tap]);
    assert!(host_tap.contains(&format!("master {bridge}")), "{host_tap}");

    let has_lease = || {
        let addr = sh(&["ip", "-n", &guest, "-4", "addr", "show", "dev", "eth0"]).1;
        let route = sh(&["ip", "-n", &guest, "-4", "route", "show", "default"]).1;
        let ok = addr.contains(&format!("inet {GUEST_IP}/24"))
            && route.contains(&format!("default via {SERVER_IP} dev eth0"));
        (!ok).then(|| format!("{addr}{route}"))
    };
    eventually("the lease", has_lease).await;
    let link = must(&["ip", "-n", &guest, "link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1400") && link.contains(&mac), "{link}");
    let console = GuestFiles::new(&state, vm.id);
    eventually("READY on the console", || {
        let out = console.console_tail(4096).unwrap();
        (!out.contains("TESTGUEST READY")).then_some(out)
    })
    .await;
    let console = d.console_output(vm.id, 4096).await.unwrap();
    for marker in [
        "TESTGUEST BOOTED".to_owned(),
        format!("TESTGUEST NIC=eth0 MAC={mac} IP={GUEST_IP}"),
        format!("TESTGUEST GATEWAY={SERVER_IP}"),
    ] {
        assert!(console.contains(&marker), "no {marker} in:\n{console}");
    }
    let resolv =
        std::fs::read_to_string(state.join(vm.id.to_string()).join("resolv.conf")).unwrap();
    assert_eq!(resolv, format!("nameserver {SERVER_IP}\n"));
    assert!(
        pings(&guest, SERVER_IP),
        "the guest cannot ping the DHCP server"
    );

    // Off: the link is down and nothing gets through.
    d.power_off(vm.id, Duration::from_secs(1)).await.unwrap();
    d.power_off(vm.id, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        d.info(vm.id).await.unwrap().power_state,
        PowerState::Shutdown
    );
    let link = must(&["ip", "-n", &guest, "link", "show", "dev", "eth0"]);
    assert!(link.contains("state DOWN"), "{link}");
    assert!(!pings(&guest, SERVER_IP), "a powered-off guest pings");

    // Its NIC vanishes while it is off (as when a simulated host's
    // namespace is recreated): power on rebuilds it from the record.
    must(&["ip", "-n", &host, "link", "delete", "dev", &tap]);

    // On again: a fresh lease.
    d.power_on(vm.id).await.unwrap();
    d.power_on(vm.id).await.unwrap();
    assert_eq!(
        d.info(vm.id).await.unwrap().power_state,
        PowerState::Running
    );
    eventually("the lease after power on", has_lease).await;
    assert!(
        pings(&guest, SERVER_IP),
        "the guest cannot ping after power on"
    );
    let host_tap = must(&["ip", "-n", &host, "link", "show", "dev", &tap]);
    assert!(host_tap.contains(&format!("master {bridge}")), "{host_tap}");

    // A reboot is off and on.
    d.reboot(vm.id, RebootKind::Soft).await.unwrap();
    eventually("the lease after a reboot", has_lease).await;
    let console = d.console_output(vm.id, 1 << 20).await.unwrap();
    assert!(console.contains("TESTGUEST POWEROFF"), "{console}");
    assert!(console.contains("TESTGUEST REBOOT"), "{console}");
    assert_eq!(console.matches("TESTGUEST BOOTED").count(), 3, "{console}");
    d.power_off(vm.id, Duration::ZERO).await.unwrap();
    assert!(matches!(
        d.reboot(vm.id, RebootKind::Soft).await,
        Err(DriverError::InvalidState { .. })
    ));

    // Gone, and gone again.
    d.destroy(vm.id).await.unwrap();
    assert!(
        !Path::new("/run/netns").join(&guest).exists(),
        "the guest namespace is left"
    );
    assert!(
        !sh(&["ip", "-n", &host, "link", "show", "dev", &tap]).0,
        "the tap is left"
    );
    assert!(!state.join(vm.id.to_string()).exists(), "its state is left");
    assert!(matches!(d.info(vm.id).await, Err(DriverError::NotFound(_))));
    d.destroy(vm.id).await.unwrap();
}

#[tokio::test]
async fn a_guest_on_a_network_the_host_does_not_carry_fails_to_spawn_and_destroys_cleanly() {
    let tag = run_tag();
    let host = format!("cnt{tag}h");
    let prefix = format!("cnt{tag}-");
    let _cleanup = Cleanup(format!("cnt{tag}"));
    if !runnable(&format!("cnt{tag}p")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    must(&["ip", "netns", "add", &host]);
    let d = driver(&host, tmp.path(), &prefix, |_| ());
    let vm = spec(vec![nic(
        &uuid::Uuid::new_v4().to_string(),
        "fa:16:3e:00:00:09",
    )]);
    let err = d.spawn(&vm).await.unwrap_err().full_message();
    assert!(
        err.contains("must be applied before a guest is spawned"),
        "{err}"
    );
    d.destroy(vm.id).await.unwrap();
    assert!(!Path::new("/run/netns").join(d.guest_ns(vm.id)).exists());
    assert!(d.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_namespace_guest_gets_its_lease_from_the_real_data_plane() {
    let tag = run_tag();
    let host = format!("cnt{tag}h");
    let prefix = format!("cnt{tag}-");
    let _cleanup = Cleanup(format!("cnt{tag}"));
    if !runnable(&format!("cnt{tag}p")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    must(&["ip", "netns", "add", &host]);
    must(&["ip", "-n", &host, "link", "set", "dev", "lo", "up"]);
    let d = driver(&host, &tmp.path().join("state"), &prefix, |c| {
        c.namespace_prefix = format!("cnt{tag}n-");
        c.state_dir = tmp.path().join("dataplane");
    });

    let network = uuid::Uuid::new_v4().to_string();
    let mac = format!("fa:16:3e:{}:{}:{}", &tag[0..2], &tag[2..4], &tag[4..6]);
    let mut vm = spec(vec![nic(&network, &mac)]);
    vm.nics[0].mtu = 1450;
    let any = |direction| RuleSpec {
        direction,
        ethertype: EtherType::IPv4,
        protocol: None,
        port_min: None,
        port_max: None,
        remote_ip_prefix: None,
        remote_group: None,
    };
    let desired = HostNetwork {
        revision: 1,
        networks: vec![NetworkSpec {
            id: network.clone(),
            segment: SegmentSpec::Vxlan { vni: 4242 },
            mtu: 1450,
            subnets: vec![SubnetSpec {
                id: "subnet".into(),
                cidr: Ipv4Cidr::parse("10.235.0.0/24").unwrap(),
                gateway: Some("10.235.0.1".parse().unwrap()),
                dhcp: true,
                dns: vec!["10.235.0.2".parse().unwrap()],
                host_routes: vec![HostRoute {
                    destination: Ipv4Cidr::parse("10.236.0.0/16").unwrap(),
                    nexthop: "10.235.0.254".parse().unwrap(),
                }],
                dhcp_address: None,
                gateway_elsewhere: false,
            }],
            peers: Vec::new(),
            remote_ports: Vec::new(),
        }],
        ports: vec![PortSpec {
            id: vm.nics[0].port_id.clone(),
            network_id: network.clone(),
            instance_id: Some(vm.id),
            mac: mac.clone(),
            fixed_ips: vec!["10.235.0.11".parse().unwrap()],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            security_groups: vec!["sg".into()],
        }],
        routers: Vec::new(),
        security_groups: vec![SecurityGroupSpec {
            id: "sg".into(),
            rules: vec![any(Direction::Egress), any(Direction::Ingress)],
            members: vec![Ipv4Cidr::parse("10.235.0.11/32").unwrap()],
        }],
    };
    // As the agent does: the host's state first, then the guest.
    d.apply_network(&desired).await.unwrap();
    d.spawn(&vm).await.unwrap();
    let guest = d.guest_ns(vm.id);
    eventually("the lease from the data plane", || {
        let addr = sh(&["ip", "-n", &guest, "-4", "addr", "show", "dev", "eth0"]).1;
        let routes = sh(&["ip", "-n", &guest, "-4", "route"]).1;
        let ok = addr.contains("inet 10.235.0.11/24")
            && addr.contains("mtu 1450")
            && routes.contains("default via 10.235.0.1 dev eth0")
            && routes.contains("10.236.0.0/16 via 10.235.0.254 dev eth0");
        (!ok).then(|| format!("{addr}{routes}"))
    })
    .await;
    let files = GuestFiles::new(&tmp.path().join("state"), vm.id);
    eventually("READY on the console", || {
        let out = files.console_tail(4096).unwrap();
        (!out.contains("TESTGUEST GATEWAY=10.235.0.1\nTESTGUEST READY")).then_some(out)
    })
    .await;
    let resolv = std::fs::read_to_string(files.resolv_conf()).unwrap();
    assert_eq!(resolv, "nameserver 10.235.0.2\n");
    assert!(
        pings(&guest, "10.235.0.1"),
        "the guest cannot ping its gateway"
    );

    // Destroyed, then the host no longer carries the network.
    d.destroy(vm.id).await.unwrap();
    let empty = HostNetwork {
        revision: 2,
        ..HostNetwork::default()
    };
    {
        d.apply_network(&empty).await.unwrap();
    }
    assert!(
        !sh(&[
            "ip",
            "-n",
            &host,
            "link",
            "show",
            "dev",
            &bridge_name(&network)
        ])
        .0
    );
}
