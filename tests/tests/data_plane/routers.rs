//! Reaching servers through routers on the test bed: a router on the
//! network node, an external network on the bed's outside namespace,
//! floating IPs and SNAT, as a user sets them up through the API.

use super::support::{Cloud, Server, eventually};
use cloud_store::Backend;
use cloud_test_utils::netbed::in_guest;
use serde_json::{Value, json};

/// What a TCP connection to `ip:port` from namespace `from` reads.
async fn tcp_from(from: &str, ip: &str, port: u16) -> String {
    in_guest(from, &["nc", "-w", "2", ip, &port.to_string()])
        .await
        .unwrap_or_default()
}

/// Listens once on `port` in namespace `ns`; the connecting side reads
/// the listener's `netstat`, which names the peer address as seen there.
fn serve_peer_view(ns: &str, port: u16) -> tokio::task::JoinHandle<()> {
    let ns = ns.to_owned();
    tokio::spawn(async move {
        let _ = in_guest(
            &ns,
            &[
                "timeout",
                "10",
                "busybox",
                "nc",
                "-l",
                "-p",
                &port.to_string(),
                "-e",
                "busybox",
                "netstat",
                "-tn",
            ],
        )
        .await;
    })
}

/// The peer of the established connection on `port` in a netstat output.
fn peer_on(netstat: &str, port: u16) -> Option<String> {
    netstat.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let local = cols.get(3)?;
        // The connection being served (the client may have closed its
        // side already), not older ones waiting out their time.
        (local.ends_with(&format!(":{port}"))
            && (l.contains("ESTABLISHED") || l.contains("CLOSE_WAIT")))
        .then(|| {
            cols.get(4)?
                .rsplit_once(':')
                .map(|(a, _)| a.trim_start_matches("::ffff:").to_owned())
        })
        .flatten()
    })
}

async fn ok(r: cloud_test_utils::Reply, what: &str) -> Value {
    assert!(r.status < 300, "{what}: {} {}", r.status, r.body);
    r.body
}

/// The scenario: the outside reaches a guest through its floating
/// IP and is seen as itself; the guest reaches the outside and is seen as
/// its floating IP, another guest through SNAT as the router; a guest with
/// no floating IP cannot be reached from outside; two networks on the
/// router reach each other; disassociating closes the path; deleting the
/// router and the floating IP leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routers_floating_ips_and_snat_reach_and_isolate_servers() {
    let Some(cloud) = Cloud::start_with_external(Backend::Sqlite, 2).await else {
        return;
    };
    let admin = cloud.admin.clone();
    let c = &admin.client;
    let ext = cloud.external_network().await;
    let outside = cloud.bed.external.as_ref().unwrap().outside.clone();
    let outside_ip = cloud.bed.external.as_ref().unwrap().outside_ip.to_string();
    let net_a = cloud.network(&admin, "l3-a", "10.94.0.0/24").await;
    let net_b = cloud.network(&admin, "l3-b", "10.95.0.0/24").await;
    let body = ok(
        c.post(
            "/network/v2.0/routers",
            json!({"router": {"name": "r1", "external_gateway_info": {"network_id": ext}}}),
        )
        .await,
        "router create",
    )
    .await;
    let router = body["router"]["id"].as_str().unwrap().to_owned();
    let router_ip = body["router"]["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for net in [&net_a, &net_b] {
        let subnet = cloud.subnet_of(net).await;
        ok(
            c.put(
                &format!("/network/v2.0/routers/{router}/add_router_interface"),
                json!({"subnet_id": subnet}),
            )
            .await,
            "add interface",
        )
        .await;
    }
    // A group letting the outside in on TCP 8080 and ICMP.
    let g = ok(
        c.post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "open"}}),
        )
        .await,
        "group",
    )
    .await;
    let open = g["security_group"]["id"].as_str().unwrap().to_owned();
    for (proto, ports) in [("tcp", Some(8080)), ("icmp", None)] {
        let mut rule = json!({"security_group_id": open, "direction": "ingress",
            "ethertype": "IPv4", "protocol": proto, "remote_ip_prefix": "0.0.0.0/0"});
        if let Some(p) = ports {
            rule["port_range_min"] = json!(p);
            rule["port_range_max"] = json!(p);
        }
        ok(
            c.post(
                "/network/v2.0/security-group-rules",
                json!({"security_group_rule": rule}),
            )
            .await,
            "rule",
        )
        .await;
    }
    let groups = json!({"security_groups": [{"name": "default"}, {"name": "open"}]});
    let a1: Server = cloud
        .boot(&admin, "a1", &net_a, Some(1), groups.clone())
        .await;
    let a2: Server = cloud
        .boot(&admin, "a2", &net_a, Some(1), groups.clone())
        .await;
    let b1: Server = cloud.boot(&admin, "b1", &net_b, Some(0), groups).await;

    // Floating IP for a1.
    let port = ok(
        c.get(&format!("/network/v2.0/ports?device_id={}", a1.id))
            .await,
        "ports",
    )
    .await["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fip = ok(
        c.post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": ext, "port_id": port}}),
        )
        .await,
        "floating ip",
    )
    .await;
    let fip_id = fip["floatingip"]["id"].as_str().unwrap().to_owned();
    let fip_ip = fip["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    // The server shows it.
    let s = ok(
        c.get(&format!("/compute/v2.1/servers/{}", a1.id)).await,
        "show",
    )
    .await;
    assert!(
        s.to_string().contains(&fip_ip) && s.to_string().contains("\"floating\""),
        "{s}"
    );

    // Outside -> floating IP -> a1, which sees the outside's own address.
    let seen = std::sync::Mutex::new(String::new());
    eventually(
        "the outside reaching a1 through its floating IP",
        || async {
            let server = serve_peer_view(&a1.ns, 8080);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let view = tcp_from(&outside, &fip_ip, 8080).await;
            server.abort();
            let reached = peer_on(&view, 8080).is_some();
            *seen.lock().unwrap() = view;
            reached
        },
    )
    .await;
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        peer_on(&seen, 8080).as_deref(),
        Some(outside_ip.as_str()),
        "{seen}"
    );

    // a1 out: seen as its floating IP; a2 out: seen as the router.
    for (g, expected) in [(&a1, fip_ip.as_str()), (&a2, router_ip.as_str())] {
        let listener = serve_peer_view(&outside, 9090);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let view = g
            .run(&["nc", "-w", "2", &outside_ip, "9090"])
            .await
            .unwrap_or_default();
        listener.abort();
        assert_eq!(
            peer_on(&view, 9090).as_deref(),
            Some(expected),
            "{}: {view}",
            g.ns
        );
    }
    // a2 has no floating IP: nothing reaches it from outside (its fixed
    // address is not routed there, the router's address maps nothing).
    assert!(tcp_from(&outside, &a2.ip, 8080).await.is_empty());
    assert!(tcp_from(&outside, &router_ip, 8080).await.is_empty());
    // Two networks on one router reach each other.
    assert!(
        a1.pings(&b1.ip).await,
        "a1 cannot reach b1 through the router"
    );

    // Disassociating closes the path.
    ok(
        c.put(
            &format!("/network/v2.0/floatingips/{fip_id}"),
            json!({"floatingip": {"port_id": null}}),
        )
        .await,
        "disassociate",
    )
    .await;
    eventually("the disassociated floating IP closing", || async {
        let _server = serve_peer_view(&a1.ns, 8080);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        tcp_from(&outside, &fip_ip, 8080).await.is_empty()
    })
    .await;

    // Deleting everything leaves no router namespace on the network node.
    ok(
        c.delete(&format!("/network/v2.0/floatingips/{fip_id}"))
            .await,
        "fip delete",
    )
    .await;
    for net in [&net_a, &net_b] {
        let subnet = cloud.subnet_of(net).await;
        ok(
            c.put(
                &format!("/network/v2.0/routers/{router}/remove_router_interface"),
                json!({"subnet_id": subnet}),
            )
            .await,
            "remove interface",
        )
        .await;
    }
    ok(
        c.delete(&format!("/network/v2.0/routers/{router}")).await,
        "router delete",
    )
    .await;
    let ns = format!("{}-qrouter-{router}", cloud.bed.hosts[0].namespace);
    eventually("the router's namespace going", || async {
        !cloud_dataplane::netns::exists(&ns)
    })
    .await;
    assert!(!a1.pings(&b1.ip).await, "a path stayed without the router");
    cloud.stop().await;
}
