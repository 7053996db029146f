//! Neutron's routers over real HTTP: create, show, list, update, delete
//! and who may; gateways on external networks only; interfaces by subnet
//! (the router takes the gateway address) and by port, with Neutron's
//! conflicts; extra routes; placement on a network node; the `router`
//! quota; the extensions; and the `NetworkChanged` casts naming the
//! router's host.

use cloud_bus::{Bus, CONDUCTOR_QUEUE, InProcBus};
use cloud_model::ProjectId;
use cloud_store::Backend;
use cloud_test_utils::{Client, Reply, TestApi, TestDb, record_network_node};
use serde_json::{Value, json};
use std::sync::Arc;
use support::{ConductorQueue, aliases, assert_fault, external_network, id, network};

mod support;

async fn post_router(c: &Client, body: Value) -> Reply {
    c.post("/network/v2.0/routers", json!({ "router": body }))
        .await
}

async fn put_router(c: &Client, router: &str, body: Value) -> Reply {
    c.put(
        &format!("/network/v2.0/routers/{router}"),
        json!({ "router": body }),
    )
    .await
}

async fn interface(c: &Client, router: &str, verb: &str, body: Value) -> Reply {
    c.put(
        &format!("/network/v2.0/routers/{router}/{verb}_router_interface"),
        body,
    )
    .await
}

#[tokio::test]
async fn routers_crud_and_policy() {
    let api = TestApi::start().await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;

    let r = post_router(
        &alice,
        json!({"name": "r1", "external_gateway_info": {"network_id": public}}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let router = &r.body["router"];
    assert_eq!(router["status"], "ACTIVE");
    assert_eq!(router["admin_state_up"], true);
    assert_eq!(router["routes"], json!([]));
    let gw = &router["external_gateway_info"];
    assert_eq!(gw["network_id"], public.as_str());
    assert_eq!(gw["enable_snat"], true);
    assert_eq!(gw["external_fixed_ips"][0]["ip_address"], "203.0.113.2");
    let r1 = id(&r, "router");

    // Only its project (and admins) see it.
    let path = format!("/network/v2.0/routers/{r1}");
    assert_eq!(alice.get(&path).await.body["router"]["name"], "r1");
    assert_fault(&bob.get(&path).await, 404, "could not be found");
    assert_fault(&bob.delete(&path).await, 404, "could not be found");
    assert_eq!(admin.get(&path).await.status, 200);
    let r = bob.get("/network/v2.0/routers").await;
    assert_eq!(r.body["routers"], json!([]));
    let r = alice.get("/network/v2.0/routers?name=r1").await;
    assert_eq!(r.body["routers"].as_array().unwrap().len(), 1);
    assert_fault(
        &alice.get("/network/v2.0/routers/r1").await,
        404,
        "Router r1",
    );

    // Updates: name, SNAT off, gateway removed.
    let r = put_router(
        &alice,
        &r1,
        json!({"name": "edge", "external_gateway_info": {"network_id": public,
                                                          "enable_snat": false}}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["router"]["name"], "edge");
    assert_eq!(
        r.body["router"]["external_gateway_info"]["enable_snat"],
        false
    );
    let r = put_router(&alice, &r1, json!({"external_gateway_info": null})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["router"]["external_gateway_info"], Value::Null);

    // A gateway must be on an external network; explicit addresses are
    // for its owner.
    let (private, _) = network(&alice, "private", "10.0.0.0/24", json!({})).await;
    let r = put_router(
        &alice,
        &r1,
        json!({"external_gateway_info": {"network_id": private}}),
    )
    .await;
    assert_fault(&r, 400, "is not a valid external network");
    let fixed = json!({"external_gateway_info": {"network_id": public,
        "external_fixed_ips": [{"ip_address": "203.0.113.77"}]}});
    assert_fault(&put_router(&alice, &r1, fixed.clone()).await, 403, "");
    let r = put_router(&admin, &r1, fixed).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ips = &r.body["router"]["external_gateway_info"]["external_fixed_ips"];
    assert_eq!(ips[0]["ip_address"], "203.0.113.77");
    let r = post_router(&alice, json!({"unknown": 1})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);

    assert_eq!(alice.delete(&path).await.status, 204);
    assert_eq!(alice.get(&path).await.status, 404);
    // The gateway port went with it: the external network can go.
    assert_eq!(
        admin
            .delete(&format!("/network/v2.0/networks/{public}"))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn interfaces_by_subnet_and_by_port() {
    let api = TestApi::start().await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let c = api.account("alpha", "alice", "member").await.client;
    let (net, subnet) = network(&c, "n1", "10.0.0.0/24", json!({})).await;
    let r1 = id(&post_router(&c, json!({"name": "r1"})).await, "router");
    let r2 = id(&post_router(&c, json!({"name": "r2"})).await, "router");

    let r = interface(&c, &r1, "add", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], r1.as_str());
    assert_eq!(r.body["subnet_id"], subnet.as_str());
    assert_eq!(r.body["subnet_ids"], json!([subnet]));
    assert_eq!(r.body["network_id"], net.as_str());
    let port = r.body["port_id"].as_str().unwrap().to_owned();
    // The router's port holds the gateway address, on the network node.
    let p = c.get(&format!("/network/v2.0/ports/{port}")).await;
    assert_eq!(p.body["port"]["fixed_ips"][0]["ip_address"], "10.0.0.1");
    assert_eq!(p.body["port"]["device_owner"], "network:router_interface");
    assert_eq!(p.body["port"]["device_id"], r1.as_str());
    assert_eq!(p.body["port"]["binding:host_id"], "net1");
    let r = c.get(&format!("/network/v2.0/ports?device_id={r1}")).await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 1);

    // Neutron's refusals.
    let again = interface(&c, &r1, "add", json!({"subnet_id": subnet})).await;
    assert_fault(&again, 400, "Router already has a port on subnet");
    let other = interface(&c, &r2, "add", json!({"subnet_id": subnet})).await;
    assert_fault(&other, 409, "10.0.0.1 already allocated");
    let (_, same_cidr) = network(&c, "n2", "10.0.0.0/24", json!({})).await;
    let overlap = interface(&c, &r1, "add", json!({"subnet_id": same_cidr})).await;
    assert_fault(&overlap, 400, "overlaps");
    let r = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "nogw"}}),
        )
        .await;
    let nogw = id(&r, "network");
    let r = c
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": nogw, "cidr": "10.9.0.0/24", "gateway_ip": null}}),
        )
        .await;
    let nogw_subnet = id(&r, "subnet");
    let r = interface(&c, &r1, "add", json!({"subnet_id": nogw_subnet})).await;
    assert_fault(&r, 400, "must have a gateway IP");
    assert_fault(&interface(&c, &r1, "add", json!({})).await, 400, "Either");
    let both = json!({"subnet_id": subnet, "port_id": port});
    assert_fault(&interface(&c, &r1, "add", both).await, 400, "both");

    // By port: an unbound port with one address becomes the interface.
    let (net3, subnet3) = network(&c, "n3", "10.3.0.0/24", json!({})).await;
    let r = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net3, "fixed_ips": [{"ip_address": "10.3.0.9"}]}}),
        )
        .await;
    let p3 = id(&r, "port");
    let r = interface(&c, &r1, "add", json!({"port_id": p3})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["subnet_id"], subnet3.as_str());
    let p = c.get(&format!("/network/v2.0/ports/{p3}")).await;
    assert_eq!(p.body["port"]["device_owner"], "network:router_interface");
    let r = interface(&c, &r2, "add", json!({"port_id": p3})).await;
    assert_fault(&r, 409, "already has an attached device");

    // A router with interfaces stays.
    let path = format!("/network/v2.0/routers/{r1}");
    assert_fault(&c.delete(&path).await, 409, "still has ports");

    // Removal by subnet and by port, then nothing left to remove.
    let r = interface(&c, &r1, "remove", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port_id"], port.as_str());
    assert_eq!(
        c.get(&format!("/network/v2.0/ports/{port}")).await.status,
        404
    );
    let r = interface(&c, &r1, "remove", json!({"subnet_id": subnet})).await;
    assert_fault(&r, 404, "has no interface on subnet");
    let r = interface(&c, &r1, "remove", json!({"port_id": p3})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = interface(&c, &r1, "remove", json!({"port_id": p3})).await;
    assert_fault(&r, 404, "does not have an interface with id");
    // The subnet is free again: another router may take its gateway.
    let r = interface(&c, &r2, "add", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(c.delete(&path).await.status, 204);
}

#[tokio::test]
async fn extra_routes_need_a_connected_next_hop() {
    let api = TestApi::start().await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let c = api.account("alpha", "alice", "member").await.client;
    let (_, subnet) = network(&c, "n1", "10.0.0.0/24", json!({})).await;
    let r1 = id(&post_router(&c, json!({"name": "r1"})).await, "router");
    let r = interface(&c, &r1, "add", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let route = |dest: &str, hop: &str| json!({"routes": [{"destination": dest, "nexthop": hop}]});
    let r = put_router(&c, &r1, route("192.168.0.0/16", "172.16.0.1")).await;
    assert_fault(&r, 400, "the nexthop is not connected with router");
    let r = put_router(&c, &r1, route("192.168.0.0/16", "10.0.0.1")).await;
    assert_fault(&r, 400, "the nexthop is used by router");
    let r = put_router(&c, &r1, route("192.168.0.1/16", "10.0.0.5")).await;
    assert_fault(&r, 400, "host bits");
    let r = put_router(&c, &r1, route("192.168.0.0/16", "banana")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = put_router(&c, &r1, route("192.168.0.0/16", "10.0.0.5")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["router"]["routes"],
        json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"}])
    );
    // The route holds the interface its next hop is on.
    let r = interface(&c, &r1, "remove", json!({"subnet_id": subnet})).await;
    assert_fault(&r, 409, "required by one or more routes");
    let r = put_router(&c, &r1, json!({"routes": null})).await;
    assert_eq!(r.body["router"]["routes"], json!([]));
    let r = interface(&c, &r1, "remove", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // A gateway and routes change together or not at all; the new
    // gateway's subnet connects next hops.
    let admin = api.admin().await.client;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;
    let both = |hop: &str| {
        json!({"external_gateway_info": {"network_id": public},
               "routes": [{"destination": "192.168.0.0/16", "nexthop": hop}]})
    };
    let r = put_router(&c, &r1, both("172.16.0.1")).await;
    assert_fault(&r, 400, "not connected");
    let r = c.get(&format!("/network/v2.0/routers/{r1}")).await;
    assert_eq!(r.body["router"]["external_gateway_info"], Value::Null);
    let r = put_router(&c, &r1, both("203.0.113.9")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["router"]["routes"][0]["nexthop"], "203.0.113.9");
}

#[tokio::test]
async fn without_a_network_node_routers_wait() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let (_, subnet) = network(&c, "n1", "10.0.0.0/24", json!({})).await;
    let r = post_router(&c, json!({"name": "r1"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["router"]["status"], "ACTIVE");
    let r1 = id(&r, "router");
    let r = interface(&c, &r1, "add", json!({"subnet_id": subnet})).await;
    assert_fault(&r, 409, "No network node is available");
    // Once one reports, the router is placed by its next change.
    record_network_node(&api.db.store, "net1").await.unwrap();
    let r = interface(&c, &r1, "add", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn router_quota_and_extensions() {
    let api = TestApi::start().await;
    let alice = api.account("alpha", "alice", "member").await;
    let c = &alice.client;
    let project = ProjectId::from_string(alice.project_id.clone());
    api.db.store.quota_set(&project, "router", 1).await.unwrap();
    assert_eq!(post_router(c, json!({"name": "a"})).await.status, 201);
    let r = post_router(c, json!({"name": "b"})).await;
    assert_fault(&r, 409, "Quota exceeded for resources: ['router']");
    assert_eq!(r.body["NeutronError"]["type"], "OverQuota");
    let pid = &alice.project_id;
    let r = c.get(&format!("/network/v2.0/quotas/{pid}/details")).await;
    assert_eq!(
        r.body["quota"]["router"],
        json!({"limit": 1, "used": 1, "reserved": 0})
    );
    assert_eq!(r.body["quota"]["floatingip"]["limit"], 50);
    let r = c.get(&format!("/network/v2.0/quotas/{pid}/default")).await;
    assert_eq!(r.body["quota"]["router"], 10);

    let r = c.get("/network/v2.0/extensions").await;
    let aliases = aliases(&r);
    for want in ["router", "extraroute", "ext-gw-mode"] {
        assert!(aliases.contains(&want), "{want} missing from {aliases:?}");
    }
}

#[tokio::test]
async fn changes_are_cast_naming_the_routers_host() {
    let bus = Arc::new(InProcBus::new());
    let api = TestApi::start_full(TestDb::new(Backend::Sqlite).await, bus.clone(), |_| {}).await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let admin = api.admin().await.client;
    let c = api.account("alpha", "alice", "member").await.client;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;
    let (net, subnet) = network(&c, "n1", "10.0.0.0/24", json!({})).await;
    let mut queue = ConductorQueue(bus.consume(CONDUCTOR_QUEUE).await.unwrap());
    queue.drain().await;
    let host = vec!["net1".to_owned()];

    let r1 = id(&post_router(&c, json!({"name": "r1"})).await, "router");
    queue.assert_quiet().await;
    let gw = json!({"external_gateway_info": {"network_id": public}});
    assert_eq!(put_router(&c, &r1, gw).await.status, 200);
    assert_eq!(
        queue.next_networks_and_hosts().await,
        (vec![public.clone()], host.clone())
    );
    let r = interface(&c, &r1, "add", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        queue.next_networks_and_hosts().await,
        (vec![net.clone()], host.clone())
    );
    let route = json!({"routes": [{"destination": "10.8.0.0/16", "nexthop": "10.0.0.9"}]});
    assert_eq!(put_router(&c, &r1, route).await.status, 200);
    assert_eq!(
        queue.next_networks_and_hosts().await,
        (vec![], host.clone())
    );
    assert_eq!(put_router(&c, &r1, json!({"name": "x"})).await.status, 200);
    queue.assert_quiet().await;
    assert_eq!(put_router(&c, &r1, json!({"routes": []})).await.status, 200);
    queue.next_networks_and_hosts().await;
    let r = interface(&c, &r1, "remove", json!({"subnet_id": subnet})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        queue.next_networks_and_hosts().await,
        (vec![net.clone()], host.clone())
    );
    let r = c.delete(&format!("/network/v2.0/routers/{r1}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(queue.next_networks_and_hosts().await, (vec![public], host));
    // A refused change casts nothing.
    let r = post_router(&c, json!({"external_gateway_info": {"network_id": net}})).await;
    assert_eq!(r.status, 400);
    queue.assert_quiet().await;
}
