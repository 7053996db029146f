//! Routers and floating IPs through the `cloud` binary, against a control
//! plane whose fake host has the network role and an external network
//! `public` (203.0.113.0/24) an admin made: routers with gateways and
//! subnet interfaces, floating IPs created, associated (by server or
//! port), disassociated and released, each by name, id or address; `boot
//! --floating-ip` with its refusals; and stacks with routers and floating
//! IPs (order, idempotent re-apply, a replaced server keeping its address,
//! interrupted creates resumed, destroy in reverse). Outputs by snapshot.

mod common;

use common::{Cloud, normalize, snapshot, squeeze};
use serde_json::Value;

/// A cloud with the external network `public`, an image, and alice's
/// network `app-net` with subnet `app-v4` (10.0.1.0/24); returns it and
/// the id of `public`.
async fn start() -> (Cloud, String) {
    let cloud = Cloud::start_network_nodes(1).await;
    let public = cloud.external_network("public", "203.0.113.0/24").await;
    cloud.image("cirros").await;
    cloud.network("app-net", "app-v4", "10.0.1.0/24").await;
    (cloud, public)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// The server's addresses of type `floating`.
fn floating(server: &Value) -> Vec<String> {
    server["addresses"]
        .as_object()
        .into_iter()
        .flat_map(|n| n.values())
        .flat_map(|a| a.as_array().cloned().unwrap_or_default())
        .filter(|a| a["OS-EXT-IPS:type"] == "floating")
        .map(|a| text(&a["addr"]).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routers_and_floating_ips_by_hand() {
    let (cloud, public) = start().await;

    // A router with a gateway on public, and an interface on app-v4.
    let r = cloud
        .run(&[
            "router",
            "create",
            "edge",
            "--external-network",
            "public",
            "-f",
            "json",
        ])
        .await
        .json();
    let gw = &r["external_gateway_info"];
    assert_eq!(gw["network_id"], public.as_str(), "{r}");
    assert_eq!(gw["enable_snat"], true);
    assert_eq!(gw["external_fixed_ips"][0]["ip_address"], "203.0.113.2");
    let edge = text(&r["id"]).to_owned();
    let usage = cloud.run(&["router", "create", "x", "--no-snat"]).await;
    assert_eq!(usage.code, 2, "--no-snat needs a gateway: {}", usage.stderr);
    let added = cloud
        .run(&["router", "add-subnet", "edge", "app-v4", "-f", "json"])
        .await
        .json();
    assert_eq!(added["id"], edge.as_str());
    let again = cloud.run(&["router", "add-subnet", &edge, "app-v4"]).await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("Router already has a port on subnet"),
        "{}",
        again.stderr
    );
    let show = cloud.run(&["router", "show", "edge", "-f", "json"]).await;
    snapshot("router-show.json", &normalize(show.ok()));
    let info = &show.json()["interfaces_info"];
    assert_eq!(info[0]["ip_address"], "10.0.1.1", "{info}");
    assert_eq!(info[0]["port_id"], added["port_id"]);
    let list = cloud.run(&["router", "list"]).await;
    snapshot("router-list.table", &squeeze(&normalize(list.ok())));
    assert!(
        list.stdout.contains("public (203.0.113.2)"),
        "{}",
        list.stdout
    );

    // A floating IP, associated with a server by name, then by port.
    let vm = cloud
        .run(&[
            "boot",
            "vm1",
            "--flavor",
            "m1.tiny",
            "--image",
            "cirros",
            "--nic",
            "net-id=app-net",
            "--wait",
            "-f",
            "json",
        ])
        .await
        .json();
    let fixed = text(&vm["addresses"]["app-net"][0]["addr"]).to_owned();
    let fip = cloud
        .run(&["floating-ip", "create", "public", "-f", "json"])
        .await
        .json();
    assert_eq!(fip["floating_ip_address"], "203.0.113.3", "{fip}");
    assert_eq!(fip["status"], "DOWN");
    let fip_id = text(&fip["id"]).to_owned();
    let assoc = cloud
        .run(&[
            "floating-ip",
            "associate",
            "203.0.113.3",
            "vm1",
            "-f",
            "json",
        ])
        .await
        .json();
    assert_eq!(assoc["fixed_ip_address"], fixed.as_str(), "{assoc}");
    assert_eq!(assoc["router_id"], edge.as_str());
    assert_eq!(assoc["status"], "ACTIVE");
    let port = text(&assoc["port_id"]).to_owned();
    let shown = cloud.run(&["show", "vm1", "-f", "json"]).await.json();
    assert_eq!(floating(&shown), ["203.0.113.3"], "{shown}");
    let table = cloud.run(&["floating-ip", "list"]).await;
    snapshot("floating-ip-list.table", &squeeze(&normalize(table.ok())));
    assert!(table.stdout.contains("| public"), "{}", table.stdout);
    let json = cloud.run(&["floating-ip", "list", "-f", "json"]).await;
    snapshot("floating-ip-list.json", &normalize(json.ok()));
    for (filter, n) in [
        (vec!["--network", "public"], 1),
        (vec!["--router", "edge"], 1),
        (vec!["--port", port.as_str()], 1),
        (vec!["--status", "down"], 0),
    ] {
        let mut args = vec!["floating-ip", "list", "-f", "value", "-c", "id"];
        args.extend(filter.iter().copied());
        let out = cloud.run(&args).await;
        assert_eq!(out.ok().lines().count(), n, "{filter:?}: {}", out.stdout);
    }
    let status = cloud
        .run(&[
            "floating-ip",
            "show",
            &fip_id,
            "-f",
            "value",
            "-c",
            "status",
        ])
        .await;
    assert_eq!(status.ok(), "ACTIVE\n");
    let yaml = cloud
        .run(&[
            "floating-ip",
            "show",
            "203.0.113.3",
            "-f",
            "yaml",
            "-c",
            "floating_ip_address",
            "-c",
            "fixed_ip_address",
        ])
        .await;
    assert_eq!(
        yaml.ok(),
        format!("fixed_ip_address: \"{fixed}\"\nfloating_ip_address: \"203.0.113.3\"\n")
    );

    // The interface stays while a floating IP needs it.
    let busy = cloud
        .run(&["router", "remove-subnet", "edge", "app-v4"])
        .await;
    assert_eq!(busy.code, 5, "{}", busy.stderr);
    assert!(
        busy.stderr.contains("required by one or more floating IPs"),
        "{}",
        busy.stderr
    );
    let down = cloud
        .run(&["floating-ip", "disassociate", "203.0.113.3", "-f", "json"])
        .await
        .json();
    assert_eq!(down["port_id"], Value::Null);
    assert_eq!(down["status"], "DOWN");
    let shown = cloud.run(&["show", "vm1", "-f", "json"]).await.json();
    assert!(floating(&shown).is_empty(), "{shown}");
    let by_port = cloud
        .run(&[
            "floating-ip",
            "associate",
            &fip_id,
            "--port",
            &port,
            "--fixed-ip",
            &fixed,
            "-f",
            "value",
            "-c",
            "status",
        ])
        .await;
    assert_eq!(by_port.ok(), "ACTIVE\n");
    let neither = cloud.run(&["floating-ip", "associate", &fip_id]).await;
    assert_eq!(neither.code, 2, "SERVER or --port: {}", neither.stderr);
    let wrong_ip = cloud
        .run(&[
            "floating-ip",
            "associate",
            &fip_id,
            "vm1",
            "--fixed-ip",
            "10.9.9.9",
        ])
        .await;
    assert_eq!(wrong_ip.code, 4, "{}", wrong_ip.stderr);
    assert!(wrong_ip.stderr.contains("no port with fixed IP 10.9.9.9"));
    cloud
        .run(&["floating-ip", "disassociate", &fip_id])
        .await
        .ok();

    // Gateway off and on again (SNAT off); names: unknown and ambiguous.
    let off = cloud
        .run(&[
            "router",
            "set",
            "edge",
            "--no-external-network",
            "-f",
            "json",
        ])
        .await
        .json();
    assert_eq!(off["external_gateway_info"], Value::Null);
    let on = cloud
        .run(&[
            "router",
            "set",
            &edge,
            "--external-network",
            &public,
            "--no-snat",
            "-f",
            "json",
        ])
        .await
        .json();
    assert_eq!(on["external_gateway_info"]["enable_snat"], false, "{on}");
    let nothing = cloud.run(&["router", "set", "edge"]).await;
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    let twin = cloud
        .run(&["router", "create", "edge", "-f", "value", "-c", "id"])
        .await;
    let twin = twin.ok().trim().to_owned();
    let ambiguous = cloud.run(&["router", "show", "edge"]).await;
    assert_eq!(ambiguous.code, 4, "{}", ambiguous.stderr);
    assert!(
        ambiguous
            .stderr
            .contains("2 routers are named 'edge'; use an id:")
            && ambiguous.stderr.contains(&edge)
            && ambiguous.stderr.contains(&twin),
        "{}",
        ambiguous.stderr
    );
    cloud.run(&["router", "delete", &twin]).await.ok();
    let missing = cloud.run(&["router", "show", "nope"]).await;
    assert_eq!(missing.code, 4);
    assert!(missing.stderr.contains("no router named or with id 'nope'"));
    let not_external = cloud.run(&["floating-ip", "create", "app-net"]).await;
    assert_eq!(not_external.code, 2, "{}", not_external.stderr);
    assert!(
        not_external
            .stderr
            .contains("network app-net is not external"),
        "{}",
        not_external.stderr
    );

    // Release; the router goes once its interface is removed.
    cloud
        .run(&["floating-ip", "delete", "203.0.113.3"])
        .await
        .ok();
    let gone = cloud.run(&["floating-ip", "show", "203.0.113.3"]).await;
    assert_eq!(gone.code, 4, "{}", gone.stderr);
    assert!(
        gone.stderr
            .contains("no floating IP named or with id '203.0.113.3'"),
        "{}",
        gone.stderr
    );
    let with_iface = cloud.run(&["router", "delete", "edge"]).await;
    assert_eq!(with_iface.code, 5, "{}", with_iface.stderr);
    cloud
        .run(&["router", "remove-subnet", "edge", "app-v4"])
        .await
        .ok();
    cloud.run(&["router", "delete", "edge"]).await.ok();
    assert_eq!(cloud.run(&["router", "list", "-f", "value"]).await.ok(), "");
    cloud.plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boot_with_a_floating_ip() {
    let (cloud, _) = start().await;
    cloud
        .run(&["router", "create", "edge", "--external-network", "public"])
        .await
        .ok();
    cloud
        .run(&["router", "add-subnet", "edge", "app-v4"])
        .await
        .ok();
    let boot = |name: &'static str, net: &'static str, extra: &'static [&'static str]| {
        let mut args = vec![
            "boot", name, "--flavor", "m1.tiny", "--image", "cirros", "--nic",
        ];
        args.push(net);
        args.extend(["--floating-ip", "public"]);
        args.extend(extra);
        args
    };

    // Allocated, associated, waited for, and shown.
    let out = cloud
        .run(&boot(
            "vm1",
            "net-id=app-net",
            &["--wait", "--client-token", "tok-1", "-f", "json"],
        ))
        .await;
    let server = out.json();
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["floating_ip"], "203.0.113.3", "{server}");
    assert_eq!(floating(&server), ["203.0.113.3"]);
    assert!(
        out.stderr.contains("vm1: ACTIVE")
            && out
                .stderr
                .contains("vm1: floating IP 203.0.113.3 on public"),
        "{}",
        out.stderr
    );
    // Retried with the same client token: the same server and address.
    let again = cloud
        .run(&boot(
            "vm1",
            "net-id=app-net",
            &[
                "--client-token",
                "tok-1",
                "-f",
                "value",
                "-c",
                "id",
                "-c",
                "floating_ip",
            ],
        ))
        .await;
    assert_eq!(
        again.ok(),
        format!("{}\n203.0.113.3\n", text(&server["id"]))
    );
    let fips = cloud
        .run(&[
            "floating-ip",
            "list",
            "-f",
            "value",
            "-c",
            "floating_ip_address",
        ])
        .await;
    assert_eq!(fips.ok(), "203.0.113.3\n");

    // No router from the server's network to public: the server is up,
    // the exit code and message say the floating IP is not, and nothing
    // was allocated.
    cloud.network("lonely", "lonely-v4", "10.0.9.0/24").await;
    let refused = cloud.run(&boot("vm2", "net-id=lonely", &[])).await;
    assert_eq!(refused.code, 4, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("server vm2 (")
            && refused
                .stderr
                .contains("is ACTIVE, but no floating IP could be allocated on public")
            && refused.stderr.contains("is not reachable from subnet"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        cloud
            .run(&["show", "vm2", "-f", "value", "-c", "status"])
            .await
            .ok(),
        "ACTIVE\n"
    );
    let fips = cloud
        .run(&["floating-ip", "list", "-f", "value", "-c", "id"])
        .await;
    assert_eq!(fips.ok().lines().count(), 1);

    // Mistakes caught before anything boots.
    let mut not_external = boot("vm3", "net-id=app-net", &[]);
    if let Some(last) = not_external.last_mut() {
        *last = "app-net";
    }
    let out = cloud.run(&not_external).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not external"), "{}", out.stderr);
    let out = cloud.run(&boot("vm4", "none", &[])).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = cloud
        .run(&boot("vm5", "net-id=app-net", &["--max-count", "2"]))
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let names = cloud.run(&["list", "-f", "value", "-c", "name"]).await;
    let mut names: Vec<&str> = names.ok().lines().collect();
    names.sort();
    assert_eq!(names, ["vm1", "vm2"]);

    // Help with examples; completions know the new commands.
    for cmd in [
        "router create",
        "router add-subnet",
        "floating-ip associate",
        "floating-ip create",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let h = cloud.run(&args).await;
        assert!(h.ok().contains("Example"), "{cmd} --help: {}", h.stdout);
    }
    let bash = cloud.run(&["completion", "bash"]).await;
    assert!(bash.ok().contains("floating-ip") && bash.stdout.contains("add-subnet"));
    cloud.plane.shutdown().await;
}
