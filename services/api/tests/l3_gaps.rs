//! The network API around layer 3, over real HTTP: every project sees the
//! external networks and their subnets (read only, and no ports of its
//! own on them); deleting a subnet or network takes its DHCP ports with
//! it; the ports of routers and floating IPs belong to their APIs; and a
//! subnet keeps its gateway while a router's interface holds it.

use cloud_model::{NetworkId, SubnetId};
use cloud_store::{Backend, Store};
use cloud_test_utils::{
    Client, Reply, TestApi, create_router, record_active_image, record_network_node,
};
use serde_json::{Value, json};
use support::{assert_fault, external_network, id, network, put_port};

mod support;

/// The names in a listing of `key`.
fn names(r: &Reply, key: &str) -> Vec<String> {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn every_project_sees_external_networks_read_only() {
    let api = TestApi::start().await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let (public, public_sub) = external_network(&admin, "public", "203.0.113.0/24").await;
    let (private, _) = network(&bob, "bob-net", "10.9.0.0/24", json!({})).await;

    // What `openstack floating ip create public` does first: find the
    // network by name.
    let r = alice.get("/network/v2.0/networks?name=public").await;
    assert_eq!(names(&r, "networks"), ["public"]);
    assert_eq!(r.body["networks"][0]["router:external"], true);
    assert_eq!(r.body["networks"][0]["shared"], false);
    assert_eq!(r.body["networks"][0]["subnets"], json!([public_sub]));
    // Segments stay the admins'.
    assert!(r.body["networks"][0].get("provider:network_type").is_none());
    let r = alice
        .get("/network/v2.0/networks?router:external=true")
        .await;
    assert_eq!(names(&r, "networks"), ["public"]);
    let r = alice.get("/network/v2.0/networks").await;
    assert_eq!(names(&r, "networks"), ["public"]);
    let r = alice.get(&format!("/network/v2.0/networks/{public}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Its subnets too.
    let r = alice
        .get(&format!("/network/v2.0/subnets?network_id={public}"))
        .await;
    assert_eq!(names(&r, "subnets"), ["public-subnet"]);
    let r = alice
        .get(&format!("/network/v2.0/subnets/{public_sub}"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["subnet"]["cidr"], "203.0.113.0/24");
    // Another project's private network stays invisible.
    let r = alice
        .get(&format!("/network/v2.0/networks/{private}"))
        .await;
    assert_fault(&r, 404, "could not be found");
    assert_eq!(
        names(&alice.get("/network/v2.0/subnets").await, "subnets"),
        ["public-subnet"]
    );

    // Read only.
    let r = alice
        .put(
            &format!("/network/v2.0/networks/{public}"),
            json!({"network": {"name": "mine"}}),
        )
        .await;
    assert_fault(&r, 403, "belongs to another project");
    let r = alice
        .delete(&format!("/network/v2.0/networks/{public}"))
        .await;
    assert_fault(&r, 403, "belongs to another project");
    let r = alice
        .put(
            &format!("/network/v2.0/subnets/{public_sub}"),
            json!({"subnet": {"name": "mine"}}),
        )
        .await;
    assert_fault(&r, 403, "belongs to another project");
    let r = alice
        .delete(&format!("/network/v2.0/subnets/{public_sub}"))
        .await;
    assert_fault(&r, 403, "belongs to another project");
    let r = alice
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": public, "cidr": "198.51.100.0/24", "ip_version": 4}}),
        )
        .await;
    assert_fault(&r, 403, "belongs to another project");
    // No ports of its own on it: floating IPs and router gateways only.
    let r = alice
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": public}}),
        )
        .await;
    assert_fault(&r, 403, "external network");
    let r = alice
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = alice
        .post(
            "/network/v2.0/routers",
            json!({"router": {"name": "r", "external_gateway_info": {"network_id": public}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let router = id(&r, "router");
    // Its subnet is the network owner's to give a router.
    let r = alice
        .put(
            &format!("/network/v2.0/routers/{router}/add_router_interface"),
            json!({"subnet_id": public_sub}),
        )
        .await;
    assert_fault(&r, 403, "belongs to another project");
    // The gateway's and floating IP's ports are the admins' to see.
    let r = alice
        .get(&format!("/network/v2.0/ports?network_id={public}"))
        .await;
    assert_eq!(r.body["ports"], json!([]), "{:?}", r.body);
    let r = admin
        .get(&format!("/network/v2.0/ports?network_id={public}"))
        .await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 2, "{:?}", r.body);
    // The owner still plugs ports into it.
    let r = admin
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": public}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Servers go on a project's own or shared networks, not on another
    // project's external one (Nova's 400).
    let image = record_active_image(&api.db.store, "alpha", "img")
        .await
        .unwrap();
    let r = alice
        .post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image.to_string(),
                "networks": [{"uuid": public}]}}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_message().contains("could not be found"),
        "{:?}",
        r.body
    );
    // Without a choice, the one usable network is not the external one:
    // alice has none, so the server has none.
    let r = alice
        .post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image.to_string()}}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

/// The DHCP port the data plane gets on a routed or provider subnet.
async fn dhcp_port(store: &Store, net: &str, subnet: &str) {
    store
        .dhcp_port_ensure(
            NetworkId::parse(net).unwrap(),
            SubnetId::parse(subnet).unwrap(),
        )
        .await
        .unwrap();
}

async fn ports_on(c: &Client, net: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/network/v2.0/ports?network_id={net}"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["ports"].as_array().unwrap().clone()
}

async fn dhcp_ports_go_with_their_subnet_and_network(backend: Backend) {
    let api = TestApi::start_on(backend).await;
    let store = &api.db.store;
    let alice = api.account("alpha", "alice", "member").await.client;
    let (net, subnet) = network(&alice, "n1", "10.0.0.0/24", json!({})).await;
    dhcp_port(store, &net, &subnet).await;
    let ports = ports_on(&alice, &net).await;
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["device_owner"], "network:dhcp");

    // A port of a user keeps the subnet, and its DHCP port with it.
    let r = alice
        .post("/network/v2.0/ports", json!({"port": {"network_id": net}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let user_port = id(&r, "port");
    let r = alice
        .delete(&format!("/network/v2.0/subnets/{subnet}"))
        .await;
    assert_fault(&r, 409, "1 IP address(es) of it are still allocated");
    assert_eq!(ports_on(&alice, &net).await.len(), 2);
    let r = alice.delete(&format!("/network/v2.0/networks/{net}")).await;
    assert_fault(&r, 409, "ports still in use");
    assert_eq!(ports_on(&alice, &net).await.len(), 2);

    // Without it, the subnet goes, with its DHCP port.
    let r = alice
        .delete(&format!("/network/v2.0/ports/{user_port}"))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = alice
        .delete(&format!("/network/v2.0/subnets/{subnet}"))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(ports_on(&alice, &net).await, Vec::<Value>::new());

    // A network goes with the DHCP ports of its subnets.
    let r = alice
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "10.1.0.0/24", "ip_version": 4}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let second = id(&r, "subnet");
    dhcp_port(store, &net, &second).await;
    let r = alice
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "10.2.0.0/24", "ip_version": 4}}),
        )
        .await;
    let third = id(&r, "subnet");
    dhcp_port(store, &net, &third).await;
    assert_eq!(ports_on(&alice, &net).await.len(), 2);
    let r = alice.delete(&format!("/network/v2.0/networks/{net}")).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = alice.get(&format!("/network/v2.0/subnets/{second}")).await;
    assert_eq!(r.status, 404);
}

/// The one port of `owner` on `router`, as `c` sees ports.
async fn router_port(c: &Client, router: &str, owner: &str) -> String {
    let r = c
        .get(&format!(
            "/network/v2.0/ports?device_id={router}&device_owner={owner}"
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ports = r.body["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "{:?}", r.body);
    ports[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn router_and_floating_ip_ports_belong_to_their_apis() {
    let api = TestApi::start().await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await.client;
    let (public, _) = external_network(&admin, "public", "203.0.113.0/24").await;
    let (net, subnet) = network(&alice, "n1", "10.0.0.0/24", json!({})).await;
    let router = create_router(&alice, &public, &subnet).await;
    let r = alice
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let fip = id(&r, "floatingip");

    // The router's interface: the member sees it, and may rename it, but
    // not delete it or move it to another device.
    let interface = router_port(&alice, &router, "network:router_interface").await;
    let r = alice
        .delete(&format!("/network/v2.0/ports/{interface}"))
        .await;
    assert_fault(
        &r,
        409,
        &format!(
            "Port {interface} cannot be deleted directly via the port API: has device owner \
             network:router_interface"
        ),
    );
    let r = put_port(&alice, &interface, json!({"device_owner": ""})).await;
    assert_fault(&r, 409, "cannot have its device_owner changed");
    let r = put_port(&alice, &interface, json!({"device_id": ""})).await;
    assert_fault(&r, 409, "cannot have its device_id changed");
    // Unchanged values are no change.
    let r = put_port(
        &alice,
        &interface,
        json!({"name": "leg", "device_id": router, "device_owner": "network:router_interface"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port"]["name"], "leg");
    // Admins neither.
    let r = admin
        .delete(&format!("/network/v2.0/ports/{interface}"))
        .await;
    assert_fault(&r, 409, "has device owner network:router_interface");
    // The gateway's and floating IP's ports: invisible to the member,
    // and the admin cannot delete them either.
    let gateway = router_port(&admin, &router, "network:router_gateway").await;
    let r = alice
        .delete(&format!("/network/v2.0/ports/{gateway}"))
        .await;
    assert_fault(&r, 404, "could not be found");
    let r = admin
        .delete(&format!("/network/v2.0/ports/{gateway}"))
        .await;
    assert_fault(&r, 409, "has device owner network:router_gateway");
    let r = put_port(&admin, &gateway, json!({"device_owner": "compute:nova"})).await;
    assert_fault(&r, 409, "cannot have its device_owner changed");
    let fip_port = router_port(&admin, &fip, "network:floatingip").await;
    let r = admin
        .delete(&format!("/network/v2.0/ports/{fip_port}"))
        .await;
    assert_fault(&r, 409, "has device owner network:floatingip");

    // Their APIs remove them.
    let r = alice
        .put(
            &format!("/network/v2.0/routers/{router}/remove_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(ports_on(&alice, &net).await, Vec::<Value>::new());
    let r = alice
        .delete(&format!("/network/v2.0/floatingips/{fip}"))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = alice
        .delete(&format!("/network/v2.0/routers/{router}"))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = admin
        .get(&format!("/network/v2.0/ports?network_id={public}"))
        .await;
    assert_eq!(r.body["ports"], json!([]), "{:?}", r.body);

    // A `network:*` owner is the network owner's to give (Neutron's
    // policy): on another project's shared network it is a 403.
    let (shared, _) = network(&admin, "shared", "10.50.0.0/24", json!({"shared": true})).await;
    let r = alice
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": shared, "device_owner": "network:dhcp"}}),
        )
        .await;
    assert_fault(&r, 403, "device_owner network:dhcp");
    let r = alice
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": shared, "device_owner": "compute:nova"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let p = id(&r, "port");
    let r = put_port(
        &alice,
        &p,
        json!({"device_owner": "network:router_interface"}),
    )
    .await;
    assert_fault(&r, 403, "device_owner network:router_interface");
    let r = alice
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net, "device_owner": "network:dhcp"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[tokio::test]
async fn subnets_and_networks_go_with_their_dhcp_ports_sqlite() {
    dhcp_ports_go_with_their_subnet_and_network(Backend::Sqlite).await;
}

#[tokio::test]
async fn subnets_and_networks_go_with_their_dhcp_ports_postgres() {
    dhcp_ports_go_with_their_subnet_and_network(Backend::Postgres).await;
}

async fn gateway_held_by_a_router(backend: Backend) {
    let api = TestApi::start_on(backend).await;
    record_network_node(&api.db.store, "net1").await.unwrap();
    let alice = api.account("alpha", "alice", "member").await.client;
    let r = alice
        .post("/network/v2.0/networks", json!({"network": {"name": "n1"}}))
        .await;
    let net = id(&r, "network");
    let r = alice
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4,
                "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.200"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let subnet = id(&r, "subnet");
    let r = alice
        .post("/network/v2.0/routers", json!({"router": {"name": "r"}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let router = id(&r, "router");
    let r = alice
        .put(
            &format!("/network/v2.0/routers/{router}/add_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let port = r.body["port_id"].as_str().unwrap().to_owned();

    let put = |body: Value| {
        let alice = alice.clone();
        let subnet = subnet.clone();
        async move {
            alice
                .put(
                    &format!("/network/v2.0/subnets/{subnet}"),
                    json!({ "subnet": body }),
                )
                .await
        }
    };
    let r = put(json!({"gateway_ip": "10.0.0.254"})).await;
    assert_fault(
        &r,
        409,
        &format!("Current gateway ip 10.0.0.1 already in use by port {port}"),
    );
    let r = put(json!({"gateway_ip": null})).await;
    assert_fault(&r, 409, "already in use by port");
    // Other changes, and the same gateway, are fine.
    let r = put(json!({"name": "web", "gateway_ip": "10.0.0.1"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = alice.get(&format!("/network/v2.0/subnets/{subnet}")).await;
    assert_eq!(r.body["subnet"]["gateway_ip"], "10.0.0.1");

    // Without the interface the gateway moves.
    let r = alice
        .put(
            &format!("/network/v2.0/routers/{router}/remove_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = put(json!({"gateway_ip": "10.0.0.254"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["subnet"]["gateway_ip"], "10.0.0.254");
}

#[tokio::test]
async fn a_subnet_keeps_the_gateway_a_router_holds_sqlite() {
    gateway_held_by_a_router(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_subnet_keeps_the_gateway_a_router_holds_postgres() {
    gateway_held_by_a_router(Backend::Postgres).await;
}
