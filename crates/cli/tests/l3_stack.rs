//! Stacks with routers and floating IPs: plan and apply in dependency
//! order (routers after subnets, interfaces before floating IPs), an
//! unchanged file changes nothing, interrupted creates of an interface
//! and a floating IP resume without duplicates, a replaced server keeps
//! its floating address (re-associated in place), a lost association is
//! restored, a gateway change is made in place, and destroy goes in
//! reverse.

mod common;

use common::{Cloud, snapshot};
use serde_json::Value;

fn stack(flavor: &str, snat: bool) -> String {
    format!(
        "stack: edge
networks: [{{name: app}}]
subnets: [{{name: app-v4, network: app, cidr: 10.0.1.0/24}}]
routers:
  - name: edge
    external_network: public
    enable_snat: {snat}
    interfaces: [app-v4]
servers:
  - {{name: web-1, flavor: {flavor}, image: cirros, networks: [app]}}
floating_ips:
  - {{server: web-1, network: public}}
"
    )
}

/// The stack's floating IP: (address, port, status), from the listing.
async fn the_floating_ip(cloud: &Cloud) -> (String, String, String) {
    let list = cloud
        .run(&["floating-ip", "list", "-f", "json"])
        .await
        .json();
    let all = list.as_array().unwrap();
    assert_eq!(all.len(), 1, "exactly one floating IP: {list}");
    let s = |k: &str| all[0][k].as_str().unwrap_or_default().to_owned();
    (s("floating_ip_address"), s("port_id"), s("status"))
}

/// The first port of server `name`.
async fn port_of(cloud: &Cloud, name: &str) -> String {
    let ports = cloud
        .run(&["port", "list", "--server", name, "-f", "value", "-c", "id"])
        .await;
    ports.ok().lines().next().unwrap_or_default().to_owned()
}

fn state(cloud: &Cloud) -> Value {
    let text = std::fs::read_to_string(cloud.path("stack.state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stacks_with_routers_and_floating_ips() {
    let cloud = Cloud::start_network_nodes(1).await;
    cloud.external_network("public", "203.0.113.0/24").await;
    cloud.image("cirros").await;
    let file = cloud.write("stack.yaml", &stack("m1.tiny", true));
    let f = file.to_str().unwrap();
    let apply = ["apply", "-f", f, "--auto-approve"];

    let plan = cloud.run(&["plan", "-f", f]).await;
    snapshot("plan-l3.txt", &plan.ok().replace(f, "stack.yaml"));

    // Death right after the interface, then right after the floating IP
    // were made: each is resumed, not made twice.
    for (hook, resumes) in [
        ("router_interface.edge/app-v4", None),
        (
            "floating_ip.web-1",
            Some("+   router_interface edge/app-v4 (resuming an interrupted create)"),
        ),
    ] {
        let crash = cloud
            .run_env(&apply, &[("CLOUD_TEST_CRASH_AFTER_CREATE", hook)])
            .await;
        assert_eq!(crash.code, 137, "{}\n{}", crash.stdout, crash.stderr);
        if let Some(line) = resumes {
            assert!(crash.stdout.contains(line), "{}", crash.stdout);
        }
        let st = state(&cloud);
        assert!(st["resources"][hook]["pending"]["key"].is_string(), "{st}");
    }
    let resumed = cloud.run(&apply).await;
    snapshot(
        "apply-l3-resumed.txt",
        &resumed.ok().replace(f, "stack.yaml"),
    );
    let router = cloud
        .run(&["router", "show", "edge", "-f", "json"])
        .await
        .json();
    let interfaces = router["interfaces_info"].as_array().unwrap();
    assert_eq!(interfaces.len(), 1, "{router}");
    assert_eq!(interfaces[0]["ip_address"], "10.0.1.1");
    assert_eq!(router["external_gateway_info"]["enable_snat"], true);
    let (address, port, status) = the_floating_ip(&cloud).await;
    assert_eq!(
        (address.as_str(), status.as_str()),
        ("203.0.113.3", "ACTIVE")
    );
    assert_eq!(port, port_of(&cloud, "web-1").await);
    let web = cloud.run(&["show", "web-1", "-f", "json"]).await.json();
    assert_eq!(web["addresses"]["app"][1]["addr"], "203.0.113.3", "{web}");
    // The state holds ids: the router's, its interface's port, the
    // floating IP's.
    let st = state(&cloud);
    let r = &st["resources"];
    assert_eq!(r["router.edge"]["id"], router["id"], "{st}");
    assert_eq!(
        r["router_interface.edge/app-v4"]["id"],
        interfaces[0]["port_id"]
    );
    assert!(r["floating_ip.web-1"]["id"].is_string());
    assert!(r["floating_ip.web-1"]["pending"].is_null(), "{st}");

    let again = cloud.run(&apply).await;
    assert_eq!(again.ok(), format!("No changes: the cloud matches {f}.\n"));

    // A replaced server keeps its floating address; SNAT off in place.
    cloud.write("stack.yaml", &stack("m1.small", false));
    let plan = cloud.run(&["plan", "-f", f]).await;
    snapshot("plan-l3-replace.txt", plan.ok());
    cloud.run(&apply).await.ok();
    let (address, port, status) = the_floating_ip(&cloud).await;
    assert_eq!(
        (address.as_str(), status.as_str()),
        ("203.0.113.3", "ACTIVE")
    );
    assert_eq!(
        port,
        port_of(&cloud, "web-1").await,
        "the new server's port"
    );
    let snat = cloud
        .run(&[
            "router",
            "show",
            "edge",
            "-f",
            "json",
            "-c",
            "external_gateway_info",
        ])
        .await
        .json();
    assert_eq!(snat["external_gateway_info"]["enable_snat"], false);

    // An association lost behind the stack's back is restored.
    cloud
        .run(&["floating-ip", "disassociate", "203.0.113.3"])
        .await
        .ok();
    let plan = cloud.run(&["plan", "-f", f]).await;
    assert!(
        plan.ok()
            .contains("~   floating_ip web-1 (it is not associated)"),
        "{}",
        plan.stdout
    );
    cloud.run(&apply).await.ok();
    assert_eq!(the_floating_ip(&cloud).await.2, "ACTIVE");
    let again = cloud.run(&apply).await;
    assert!(again.ok().starts_with("No changes"), "{}", again.stdout);

    // A file that drops the server but keeps its floating IP is refused.
    cloud.write(
        "stack.yaml",
        &stack("m1.small", false).replace(
            "servers:\n  - {name: web-1, flavor: m1.small, image: cirros, networks: [app]}\n",
            "",
        ),
    );
    let refused = cloud.run(&["plan", "-f", f]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("floating_ip web-1 refers to server web-1"),
        "{}",
        refused.stderr
    );

    // Destroy: floating IP, server, interface, router, subnet, network.
    cloud.write("stack.yaml", &stack("m1.small", false));
    let destroy = cloud.run(&["destroy", "-f", f, "--auto-approve"]).await;
    snapshot("destroy-l3.txt", &destroy.ok().replace(f, "stack.yaml"));
    for what in ["router", "floating-ip"] {
        let left = cloud.run(&[what, "list", "-f", "value"]).await;
        assert_eq!(left.ok(), "", "{what}");
    }
    assert_eq!(cloud.run(&["list", "-f", "value"]).await.ok(), "");
    let nets = cloud
        .run(&["network", "list", "-f", "value", "-c", "name"])
        .await;
    assert!(!nets.ok().lines().any(|n| n == "app"), "{}", nets.stdout);
    assert!(!cloud.path("stack.state.json").exists());
    cloud.plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stack_mistakes_are_caught_by_the_plan() {
    let cloud = Cloud::start_network_nodes(1).await;
    cloud.external_network("public", "203.0.113.0/24").await;
    cloud.image("cirros").await;
    cloud.run(&["network", "create", "inside"]).await.ok();
    for (name, text, code, needle) in [
        (
            "not external",
            stack("m1.tiny", true).replace("external_network: public", "external_network: inside"),
            2,
            "router edge: network inside is not external",
        ),
        (
            "unknown network",
            stack("m1.tiny", true).replace(
                "{server: web-1, network: public}",
                "{server: web-1, network: nowhere}",
            ),
            4,
            "floating_ip web-1: no network named or with id 'nowhere'",
        ),
        (
            "unknown server",
            stack("m1.tiny", true).replace("{server: web-1,", "{server: web-9,"),
            4,
            "floating_ip web-9: no server named or with id 'web-9'",
        ),
        (
            "unknown subnet",
            stack("m1.tiny", true).replace("interfaces: [app-v4]", "interfaces: [nope]"),
            4,
            "router_interface edge/nope: no subnet named or with id 'nope'",
        ),
        (
            "typo",
            stack("m1.tiny", true).replace("enable_snat", "enable_nat"),
            2,
            "unknown field",
        ),
    ] {
        let file = cloud.write("bad.yaml", &text);
        let out = cloud.run(&["plan", "-f", file.to_str().unwrap()]).await;
        assert_eq!(out.code, code, "{name}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{name}: {}", out.stderr);
    }
    cloud.plane.shutdown().await;
}
