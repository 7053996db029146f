//! The host data plane across hosts, as tenants see it: namespace hosts on
//! an underlay, namespace guests that get their addresses by DHCP and then
//! ping, connect and fetch metadata, everything made through the API.
//! Needs root; fails (never skips) under `CI=true` when it cannot make
//! namespaces.

mod data_plane {
    pub mod routers;
    pub mod support;
}

use cloud_store::Backend;
use data_plane::support::{Cloud, Server, eventually};
use serde_json::json;

/// 3 hosts, 2 projects, 3 networks of which two share a CIDR: guests of a
/// network reach each other across hosts (ICMP and TCP), nothing crosses
/// between networks or projects, and the overlapping CIDRs both work,
/// side by side on one host.
async fn networks_span_hosts_and_isolate_tenants(backend: Backend) {
    let Some(cloud) = Cloud::start(backend, 3).await else {
        return;
    };
    let admin = cloud.admin.clone();
    let bob = cloud.member("proj-b").await;
    let a_net = cloud.network(&admin, "a-net", "10.50.0.0/24").await;
    let a_other = cloud.network(&admin, "a-other", "10.60.0.0/24").await;
    let b_net = cloud.network(&bob, "b-net", "10.50.0.0/24").await;

    let a1 = cloud.boot(&admin, "a1", &a_net, Some(0), json!({})).await;
    let a2 = cloud.boot(&admin, "a2", &a_net, Some(1), json!({})).await;
    let a3 = cloud.boot(&admin, "a3", &a_other, Some(2), json!({})).await;
    // Project B's servers go where the scheduler puts them; one of them
    // shares a host with a guest of the same CIDR in project A.
    // b1 likely gets the same address as a1; b2 an address only B uses.
    let b1 = cloud.boot(&bob, "b1", &b_net, None, json!({})).await;
    let b2 = cloud
        .boot(
            &bob,
            "b2",
            &b_net,
            None,
            json!({"networks": [{"uuid": b_net, "fixed_ip": "10.50.0.77"}]}),
        )
        .await;
    assert_eq!(&a1.ip[..8], &b1.ip[..8], "both projects use 10.50.0.x");

    // Same network, different hosts.
    assert!(a1.pings(&a2.ip).await, "a1 cannot ping a2 across hosts");
    assert!(a2.pings(&a1.ip).await, "a2 cannot ping a1 across hosts");
    let _srv = a2.serve_tcp(8080, "hello-from-a2");
    eventually("a TCP connection from a1 to a2", || async {
        a1.tcp(&a2.ip, 8080).await == "hello-from-a2"
    })
    .await;
    assert!(b1.pings(&b2.ip).await, "b1 cannot ping b2");
    // Each guest reaches its own gateway (its network's namespace).
    assert!(a1.pings("10.50.0.1").await);
    assert!(b1.pings("10.50.0.1").await);

    // Another network of the same project: no path (no router).
    assert!(!a1.pings(&a3.ip).await, "a1 reached a network it is not on");
    // Another project's network with the same CIDR: its addresses are
    // not reachable, whichever host they are on.
    assert!(!a1.pings("10.50.0.77").await, "a1 reached project B's b2");
    assert!(!a2.pings("10.50.0.77").await, "a2 reached project B's b2");
    let overlap: Vec<&Server> = [&b1, &b2]
        .into_iter()
        .filter(|b| b.host == a1.host || b.host == a2.host)
        .collect();
    assert!(
        !overlap.is_empty(),
        "no host carries both 10.50.0.0/24 networks"
    );

    // The hosts' own addresses are out of reach.
    for h in 0..3 {
        let ip = cloud.bed.hosts[h].underlay_ip.to_string();
        assert!(!a1.pings(&ip).await, "a guest reached host {ip}");
    }
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn networks_span_hosts_and_isolate_tenants_sqlite() {
    networks_span_hosts_and_isolate_tenants(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn networks_span_hosts_and_isolate_tenants_rabbitmq_postgres() {
    networks_span_hosts_and_isolate_tenants(Backend::Postgres).await;
}

/// The default group lets members in and others not; a rule added to a
/// running server opens a port and its removal closes it; a rule naming a
/// remote group follows a server joining and leaving that group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_groups_are_enforced_and_follow_changes() {
    let Some(cloud) = Cloud::start(Backend::Sqlite, 2).await else {
        return;
    };
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "sg-net", "10.70.0.0/24").await;
    let r = admin
        .client
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let web = r.body["security_group"]["id"].as_str().unwrap().to_owned();

    let member = cloud.boot(&admin, "member", &net, Some(0), json!({})).await;
    let other = cloud
        .boot(&admin, "member2", &net, Some(1), json!({}))
        .await;
    let outsider = cloud
        .boot(
            &admin,
            "outsider",
            &net,
            Some(1),
            json!({"security_groups": [{"name": "web"}]}),
        )
        .await;

    // Default group: ingress from members only; egress open.
    assert!(member.pings(&other.ip).await, "members cannot talk");
    assert!(!outsider.pings(&member.ip).await, "a non-member got in");
    assert!(outsider.pings("10.70.0.1").await, "egress is not open");

    // A rule on the running outsider opens TCP 8080; removing it closes it.
    let _srv = outsider.serve_tcp(8080, "web-ok");
    assert_eq!(
        member.tcp(&outsider.ip, 8080).await,
        "",
        "closed port answered"
    );
    let r = admin
        .client
        .post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": web, "direction": "ingress",
                "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 8080,
                "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rule = r.body["security_group_rule"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the new rule opening TCP 8080", || async {
        member.tcp(&outsider.ip, 8080).await == "web-ok"
    })
    .await;
    let r = admin
        .client
        .delete(&format!("/network/v2.0/security-group-rules/{rule}"))
        .await;
    assert_eq!(r.status, 204);
    eventually("the removed rule closing TCP 8080", || async {
        member.tcp(&outsider.ip, 8080).await.is_empty()
    })
    .await;

    // ICMP from members of "web" (a remote group): the member is not one.
    let r = admin
        .client
        .post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": web, "direction": "ingress",
                "ethertype": "IPv4", "protocol": "icmp", "remote_group_id": web}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !member.pings(&outsider.ip).await,
        "a non-member of web got in"
    );
    // The member joins web: the outsider now lets it in.
    let add = admin
        .client
        .post(
            &format!("/compute/v2.1/servers/{}/action", member.id),
            json!({"addSecurityGroup": {"name": "web"}}),
        )
        .await;
    assert_eq!(add.status, 202, "{}", add.body);
    eventually("a new member of web being let in", || async {
        member.pings(&outsider.ip).await
    })
    .await;
    // And leaves it again.
    let remove = admin
        .client
        .post(
            &format!("/compute/v2.1/servers/{}/action", member.id),
            json!({"removeSecurityGroup": {"name": "web"}}),
        )
        .await;
    assert_eq!(remove.status, 202, "{}", remove.body);
    eventually("a former member of web being kept out", || async {
        !member.pings(&outsider.ip).await
    })
    .await;
    cloud.stop().await;
}

/// A guest that sends from an address or MAC not its own gets nothing
/// through; with port security off on its port, it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_sources_are_dropped_unless_port_security_is_off() {
    let Some(cloud) = Cloud::start(Backend::Sqlite, 2).await else {
        return;
    };
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "spoof-net", "10.80.0.0/24").await;
    let honest = cloud.boot(&admin, "honest", &net, Some(0), json!({})).await;
    let r = admin
        .client
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net, "port_security_enabled": false}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let open_port = r.body["port"]["id"].as_str().unwrap().to_owned();
    let open = cloud
        .boot(
            &admin,
            "open",
            "",
            Some(1),
            json!({"networks": [{"port": open_port}]}),
        )
        .await;
    let gateway = "10.80.0.1";
    for guest in [&honest, &open] {
        assert!(
            guest.pings(gateway).await,
            "{} cannot reach its gateway",
            guest.ns
        );
        guest
            .run(&["ip", "addr", "add", "10.80.0.99/24", "dev", "eth0"])
            .await
            .unwrap();
    }
    let forged = |g: &Server| {
        let ns = g.ns.clone();
        async move {
            cloud_test_utils::netbed::in_guest(
                &ns,
                &["ping", "-c", "1", "-W", "1", "-I", "10.80.0.99", gateway],
            )
            .await
            .is_ok()
        }
    };
    assert!(
        !forged(&honest).await,
        "a forged source address got through"
    );
    assert!(forged(&open).await, "port security off still filtered");
    honest
        .run(&["ip", "addr", "del", "10.80.0.99/24", "dev", "eth0"])
        .await
        .unwrap();
    // A forged MAC: the same address, another MAC.
    honest
        .run(&["ip", "link", "set", "eth0", "address", "fa:16:3e:de:ad:01"])
        .await
        .unwrap();
    assert!(!honest.pings(gateway).await, "a forged MAC got through");
    cloud.stop().await;
}

/// From inside a guest, 169.254.169.254 answers with that guest's own
/// data; a guest that takes another guest's address gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_answers_each_guest_with_its_own_data() {
    let Some(cloud) = Cloud::start(Backend::Sqlite, 2).await else {
        return;
    };
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "md-net", "10.90.0.0/24").await;
    let user_data = "#!/bin/sh\necho data-of-md1\n";
    let md1 = cloud
        .boot(
            &admin,
            "md1",
            &net,
            Some(0),
            json!({"user_data": base64(user_data)}),
        )
        .await;
    let md2 = cloud.boot(&admin, "md2", &net, Some(0), json!({})).await;
    let get = |g: &Server, path: &str| {
        let ns = g.ns.clone();
        let url = format!("http://169.254.169.254{path}");
        // Debian's busybox wget crashes with its own -T timeout.
        async move {
            match cloud_test_utils::netbed::in_guest(
                &ns,
                &["timeout", "5", "busybox", "wget", "-q", "-O", "-", &url],
            )
            .await
            {
                Ok(body) => body,
                Err(e) => {
                    eprintln!("GET {url} from {ns}: {e:#}");
                    String::new()
                }
            }
        }
    };
    let meta = get(&md1, "/openstack/latest/meta_data.json").await;
    let meta: serde_json::Value = serde_json::from_str(&meta)
        .unwrap_or_else(|e| panic!("meta_data.json is not JSON ({e}): {meta}"));
    assert_eq!(meta["uuid"], md1.id.as_str());
    assert_eq!(meta["hostname"], "md1");
    assert_eq!(get(&md1, "/openstack/latest/user_data").await, user_data);
    assert_eq!(
        get(&md1, "/latest/meta-data/local-ipv4").await.trim(),
        md1.ip
    );
    assert!(!get(&md1, "/latest/meta-data/instance-id").await.is_empty());
    let meta2 = get(&md2, "/openstack/latest/meta_data.json").await;
    assert!(meta2.contains(&md2.id), "md2 got {meta2}");
    // The proxy leads to the metadata endpoint and nowhere else of the API.
    for path in ["/../metrics", "/%2e%2e/identity/v3", "/..%2fidentity/v3"] {
        let body = get(&md1, path).await;
        assert!(
            !body.contains("# HELP") && !body.contains("\"version\""),
            "{path} reached the API: {body}"
        );
    }

    // Another project's member points its own port at md1: its guest still
    // gets nothing of md1.
    let bob = cloud.member("proj-md").await;
    let bob_net = cloud.network(&bob, "bob-net", "10.93.0.0/24").await;
    let md3 = cloud.boot(&bob, "md3", &bob_net, None, json!({})).await;
    let r = bob
        .client
        .get(&format!("/network/v2.0/ports?device_id={}", md3.id))
        .await;
    let port = r.body["ports"][0]["id"].as_str().unwrap().to_owned();
    let r = bob
        .client
        .put(
            &format!("/network/v2.0/ports/{port}"),
            json!({"port": {"device_id": md1.id}}),
        )
        .await;
    if r.status == 200 {
        // Give the host time to take the change, then ask.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let theirs = get(&md3, "/openstack/latest/meta_data.json").await;
        assert!(!theirs.contains(&md1.id), "md3 got md1's data: {theirs}");
        let data = get(&md3, "/openstack/latest/user_data").await;
        assert!(!data.contains("data-of-md1"), "md3 got md1's user data");
    }

    // md2 takes md1's address: anti-spoofing drops what it sends, so it
    // learns nothing about md1.
    md2.run(&["ip", "addr", "flush", "dev", "eth0"])
        .await
        .unwrap();
    md2.run(&[
        "ip",
        "addr",
        "add",
        &format!("{}/24", md1.ip),
        "dev",
        "eth0",
    ])
    .await
    .unwrap();
    md2.run(&["ip", "route", "add", "default", "via", "10.90.0.1"])
        .await
        .unwrap();
    let stolen = get(&md2, "/openstack/latest/meta_data.json").await;
    assert!(
        !stolen.contains(&md1.id),
        "a forged address got md1's data: {stolen}"
    );
    assert!(
        stolen.is_empty(),
        "a forged address got an answer: {stolen}"
    );
    cloud.stop().await;
}

/// An agent restart keeps its guests' traffic flowing and converges; the
/// last port of a network leaving a host removes its devices there and its
/// entries on the other hosts. Deleting two servers of one host on two
/// networks at once works (it once failed on shared state).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarts_converge_and_last_ports_clean_up() {
    let Some(mut cloud) = Cloud::start(Backend::Sqlite, 2).await else {
        return;
    };
    let admin = cloud.admin.clone();
    let net = cloud.network(&admin, "rs-net", "10.91.0.0/24").await;
    let net2 = cloud.network(&admin, "rs-net2", "10.92.0.0/24").await;
    let s1 = cloud.boot(&admin, "s1", &net, Some(0), json!({})).await;
    let s2 = cloud.boot(&admin, "s2", &net, Some(1), json!({})).await;
    let t2 = cloud.boot(&admin, "t2", &net2, Some(1), json!({})).await;
    assert!(s1.pings(&s2.ip).await);

    // Host 2's agent goes away and comes back: traffic never depended on it.
    let name = cloud.bed.hosts[1].name.clone();
    cloud.plane.stop_host(&name).await;
    assert!(s1.pings(&s2.ip).await, "traffic stopped with the agent");
    cloud.restart_agent(1).await;
    assert!(
        s1.pings(&s2.ip).await,
        "traffic stopped after the agent restart"
    );
    // It converges on what changed while it was away... and after.
    let s3 = cloud.boot(&admin, "s3", &net, Some(1), json!({})).await;
    assert!(
        s1.pings(&s3.ip).await,
        "a guest booted after the restart is unreachable"
    );

    // Both host-2 guests of different networks deleted at once.
    let (d1, d2) = tokio::join!(cloud.delete(&admin, &s2.id), cloud.delete(&admin, &t2.id));
    let _ = (d1, d2);
    cloud.delete(&admin, &s3.id).await;
    let h2 = cloud.bed.hosts[1].namespace.clone();
    let h1 = cloud.bed.hosts[0].namespace.clone();
    let vni_dev = vxlan_of(&h1).await;
    eventually(
        "host 2 dropping the networks it has no ports on",
        || async {
            let links = cloud_dataplane::cmd::run("ip", ["-n", &h2, "-o", "link"])
                .await
                .unwrap_or_default();
            !links.contains("brq") && !links.contains("vxlan-")
        },
    )
    .await;
    let h2_ip = cloud.bed.hosts[1].underlay_ip.to_string();
    eventually("host 1 forgetting host 2's entries", || async {
        let fdb = cloud_dataplane::cmd::run("bridge", ["-n", &h1, "fdb", "show", "dev", &vni_dev])
            .await
            .unwrap_or_default();
        !fdb.contains(&h2_ip)
    })
    .await;
    assert!(
        s1.pings("10.91.0.1").await,
        "host 1's guest lost its network"
    );
    cloud.stop().await;
}

/// The VXLAN device of the only network with ports on host namespace `h`.
async fn vxlan_of(h: &str) -> String {
    let links = cloud_dataplane::cmd::run("ip", ["-n", h, "-o", "link"])
        .await
        .unwrap();
    links
        .split_whitespace()
        .find(|w| w.starts_with("vxlan-"))
        .map(|w| {
            w.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap()
                .to_owned()
        })
        .unwrap_or_else(|| panic!("no VXLAN device on {h}: {links}"))
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
