//! Floating IPs over real HTTP: created on external networks with or
//! without a chosen address (explicit ones for the network's owner),
//! taken addresses, association and disassociation through a router with
//! Neutron's refusals (no path, another project's port, a fixed IP that
//! has one), list filters, the `floatingip` quota, the casts naming the
//! router's host; and through the whole control plane, a server whose
//! `addresses` show its floating IP and whose deletion disassociates it.

use cloud_bus::{Bus, CONDUCTOR_QUEUE, InProcBus};
use cloud_model::ProjectId;
use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, Reply, TestApi, TestDb, boot, create_router,
    record_active_image, record_network_node, wait_for_status,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{ConductorQueue, assert_fault, external_network, id, network, post_port};

mod support;

async fn port(c: &Client, net: &str) -> (String, String) {
    let r = post_port(c, json!({"network_id": net})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ip = r.body["port"]["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    (id(&r, "port"), ip)
}

async fn post_fip(c: &Client, body: Value) -> Reply {
    c.post("/network/v2.0/floatingips", json!({ "floatingip": body }))
        .await
}

async fn put_fip(c: &Client, fip: &str, body: Value) -> Reply {
    c.put(
        &format!("/network/v2.0/floatingips/{fip}"),
        json!({ "floatingip": body }),
    )
    .await
}

fn count(r: &Reply) -> usize {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["floatingips"].as_array().unwrap().len()
}

#[tokio::test]
async fn floating_ips_are_created_associated_and_freed() {
    let api = TestApi::start().await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;
    let (net, subnet) = network(&alice, "n1", "10.0.0.0/24", json!({})).await;
    let r1 = create_router(&alice, &public, &subnet).await;
    let (p1, fixed1) = port(&alice, &net).await;

    // Without an address: the lowest free one (the router's gateway took .2).
    let r = post_fip(
        &alice,
        json!({"floating_network_id": public, "description": "web"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let fip = &r.body["floatingip"];
    assert_eq!(fip["floating_ip_address"], "203.0.113.3");
    assert_eq!(fip["status"], "DOWN");
    assert_eq!(fip["port_id"], Value::Null);
    assert_eq!(fip["router_id"], Value::Null);
    assert_eq!(fip["description"], "web");
    let f1 = id(&r, "floatingip");
    // With an address: the network's owner (admin) only; taken is a 409.
    let chosen = json!({"floating_network_id": public, "floating_ip_address": "203.0.113.99"});
    assert_fault(&post_fip(&alice, chosen.clone()).await, 403, "");
    let r = post_fip(&admin, chosen.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["floatingip"]["floating_ip_address"], "203.0.113.99");
    assert_fault(&post_fip(&admin, chosen).await, 409, "already allocated");
    // Only external networks give floating IPs.
    let r = post_fip(&alice, json!({"floating_network_id": net})).await;
    assert_fault(&r, 400, "is not a valid external network");
    assert_fault(
        &post_fip(&alice, json!({})).await,
        400,
        "floating_network_id",
    );

    // Association through the router.
    let r = put_fip(&alice, &f1, json!({"port_id": p1})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let fip = &r.body["floatingip"];
    assert_eq!(fip["port_id"], p1.as_str());
    assert_eq!(fip["fixed_ip_address"], fixed1.as_str());
    assert_eq!(fip["router_id"], r1.as_str());
    assert_eq!(fip["status"], "ACTIVE");
    // A fixed IP takes one floating IP.
    let r = post_fip(
        &alice,
        json!({"floating_network_id": public, "port_id": p1}),
    )
    .await;
    assert_fault(&r, 409, "already has a floating IP");
    // The router's interface and gateway stay while it is associated.
    let r = alice
        .put(
            &format!("/network/v2.0/routers/{r1}/remove_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_fault(&r, 409, "required by one or more floating IPs");
    let r = alice
        .put(
            &format!("/network/v2.0/routers/{r1}"),
            json!({"router": {"external_gateway_info": null}}),
        )
        .await;
    assert_fault(&r, 409, "required by one or more floating IPs");

    // No path from another network; another project's port is not found.
    let (lonely, lonely_subnet) = network(&alice, "n2", "10.2.0.0/24", json!({})).await;
    let (p2, _) = port(&alice, &lonely).await;
    let r = post_fip(
        &alice,
        json!({"floating_network_id": public, "port_id": p2}),
    )
    .await;
    assert_fault(
        &r,
        404,
        &format!(
            "External network {public} is not reachable from subnet {lonely_subnet}.  \
             Therefore, cannot associate Port {p2} with a Floating IP."
        ),
    );
    let (bob_net, _) = network(&bob, "b", "10.5.0.0/24", json!({})).await;
    let (bob_port, _) = port(&bob, &bob_net).await;
    assert_fault(
        &put_fip(&alice, &f1, json!({"port_id": bob_port})).await,
        404,
        "",
    );
    assert_fault(
        &bob.get(&format!("/network/v2.0/floatingips/{f1}")).await,
        404,
        "",
    );
    assert_eq!(count(&bob.get("/network/v2.0/floatingips").await), 0);
    let r = put_fip(
        &alice,
        &f1,
        json!({"port_id": p1, "fixed_ip_address": "10.0.0.200"}),
    )
    .await;
    assert_fault(&r, 400, "does not have fixed ip");

    // List filters.
    let list = "/network/v2.0/floatingips?";
    let q = |query: String| {
        let path = format!("{list}{query}");
        let alice = alice.clone();
        async move { alice.get(&path).await }
    };
    assert_eq!(count(&q(String::new()).await), 1);
    assert_eq!(count(&q(format!("port_id={p1}")).await), 1);
    assert_eq!(count(&q(format!("router_id={r1}")).await), 1);
    assert_eq!(count(&q("status=ACTIVE".into()).await), 1);
    assert_eq!(count(&q("status=DOWN".into()).await), 0);
    assert_eq!(count(&q("floating_ip_address=203.0.113.3".into()).await), 1);
    assert_eq!(count(&q(format!("floating_network_id={public}")).await), 1);
    assert_eq!(count(&admin.get("/network/v2.0/floatingips").await), 2);

    // Disassociation keeps the floating IP; deletion frees the address.
    let r = put_fip(&alice, &f1, json!({"port_id": null})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(r.body["floatingip"]["fixed_ip_address"], Value::Null);
    assert_eq!(r.body["floatingip"]["status"], "DOWN");
    // A port deleted through the network API disassociates too.
    assert_eq!(
        put_fip(&alice, &f1, json!({"port_id": p1})).await.status,
        200
    );
    let r = alice.delete(&format!("/network/v2.0/ports/{p1}")).await;
    assert_eq!(r.status, 204);
    let r = alice.get(&format!("/network/v2.0/floatingips/{f1}")).await;
    assert_eq!(r.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(r.body["floatingip"]["status"], "DOWN");
    let path = format!("/network/v2.0/floatingips/{f1}");
    assert_eq!(alice.delete(&path).await.status, 204);
    assert_fault(&alice.get(&path).await, 404, "Floating IP");
    let r = post_fip(&alice, json!({"floating_network_id": public})).await;
    assert_eq!(r.body["floatingip"]["floating_ip_address"], "203.0.113.3");
}

#[tokio::test]
async fn floating_ip_quota() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;
    let project = ProjectId::from_string(alice.project_id.clone());
    api.db
        .store
        .quota_set(&project, "floatingip", 1)
        .await
        .unwrap();
    let c = &alice.client;
    let body = json!({"floating_network_id": public});
    assert_eq!(post_fip(c, body.clone()).await.status, 201);
    let r = post_fip(c, body).await;
    assert_fault(&r, 409, "Quota exceeded for resources: ['floatingip']");
    assert_eq!(r.body["NeutronError"]["type"], "OverQuota");
    let r = c
        .get(&format!(
            "/network/v2.0/quotas/{}/details",
            alice.project_id
        ))
        .await;
    assert_eq!(
        r.body["quota"]["floatingip"],
        json!({"limit": 1, "used": 1, "reserved": 0})
    );
    // The refused one left no port behind on the external network.
    let r = admin
        .get(&format!("/network/v2.0/ports?network_id={public}"))
        .await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn associations_are_cast_naming_the_routers_host() {
    let bus = Arc::new(InProcBus::new());
    let api = TestApi::start_full(TestDb::new(Backend::Sqlite).await, bus.clone(), |_| {}).await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let admin = api.admin().await.client;
    let c = api.account("alpha", "alice", "member").await.client;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;
    let (net, subnet) = network(&c, "n1", "10.0.0.0/24", json!({})).await;
    create_router(&c, &public, &subnet).await;
    let (p1, _) = port(&c, &net).await;
    let mut queue = ConductorQueue(bus.consume(CONDUCTOR_QUEUE).await.unwrap());
    queue.drain().await;
    let want = (vec![public.clone()], vec!["net1".to_owned()]);
    let r = post_fip(&c, json!({"floating_network_id": public, "port_id": p1})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let fip = id(&r, "floatingip");
    assert_eq!(queue.next_networks_and_hosts().await, want);
    assert_eq!(
        put_fip(&c, &fip, json!({"port_id": null})).await.status,
        200
    );
    assert_eq!(queue.next_networks_and_hosts().await, want);
    assert_eq!(put_fip(&c, &fip, json!({"port_id": p1})).await.status, 200);
    assert_eq!(queue.next_networks_and_hosts().await, want);
    let r = c.delete(&format!("/network/v2.0/floatingips/{fip}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(queue.next_networks_and_hosts().await, want);
}

#[tokio::test]
async fn servers_show_floating_ips_and_deleting_them_disassociates() {
    let mut options = PlaneOptions::hosts(Backend::Sqlite, 1, Default::default());
    // Quick timings, and the network role.
    options.agent = |a| {
        a.heartbeat_secs = 0.5;
        a.power_sync_secs = 1.0;
        a.shutdown_timeout_secs = 5;
        a.network_node = true;
    };
    let plane = ControlPlane::start(options).await;
    let admin = plane.api.admin().await;
    let c = &admin.client;
    let (public, _) = external_network(c, "public", "203.0.113.0/24").await;
    let (net, subnet) = network(c, "web", "10.0.0.0/24", json!({})).await;
    create_router(c, &public, &subnet).await;
    let image = record_active_image(&plane.api.db.store, &admin.project_id, "img")
        .await
        .unwrap();
    let r = boot(
        c,
        "vm1",
        "1",
        &image.to_string(),
        json!({"networks": [{"uuid": net}]}),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &server, &["ACTIVE", "ERROR"], Duration::from_secs(60)).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let ports = c
        .get(&format!("/network/v2.0/ports?device_id={server}"))
        .await;
    let port = &ports.body["ports"][0];
    let (port_id, mac) = (port["id"].as_str().unwrap(), port["mac_address"].clone());
    let fixed = port["fixed_ips"][0]["ip_address"].clone();

    let r = post_fip(
        c,
        json!({"floating_network_id": public, "port_id": port_id}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let fip = id(&r, "floatingip");
    let address = r.body["floatingip"]["floating_ip_address"].clone();
    let r = c.get(&format!("/compute/v2.1/servers/{server}")).await;
    assert_eq!(
        r.body["server"]["addresses"]["web"],
        json!([
            {"version": 4, "addr": fixed, "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": mac},
            {"version": 4, "addr": address, "OS-EXT-IPS:type": "floating",
             "OS-EXT-IPS-MAC:mac_addr": mac},
        ])
    );
    let r = c.get("/compute/v2.1/servers/detail").await;
    assert_eq!(r.body["servers"][0]["addresses"]["web"][1]["addr"], address);
    let r = c.get(&format!("/compute/v2.1/servers/{server}/ips")).await;
    assert_eq!(
        r.body["addresses"]["web"][1],
        json!({"version": 4, "addr": address})
    );

    // The server goes; its floating IP stays, disassociated.
    let r = c.delete(&format!("/compute/v2.1/servers/{server}")).await;
    assert_eq!(r.status, 204);
    wait_for_status(c, &server, &["DELETED"], Duration::from_secs(60)).await;
    let r = c.get(&format!("/network/v2.0/floatingips/{fip}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["floatingip"]["floating_ip_address"], address);
    assert_eq!(r.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(r.body["floatingip"]["status"], "DOWN");
    plane.shutdown().await;
}
