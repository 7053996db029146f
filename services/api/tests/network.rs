//! The network API over real HTTP: discovery, networks, subnets with their
//! validation, ports with IPAM (each address handed out exactly once, also
//! under concurrent requests, on SQLite and PostgreSQL), security groups
//! and rules, and what each project and role may see and do.

use cloud_store::Backend;
use cloud_test_utils::{Client, Reply, TestApi};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{assert_fault, id, post_port};

mod support;

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn create_network(c: &Client, name: &str) -> String {
    let r = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": name, "admin_state_up": true}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    id(&r, "network")
}

async fn create_subnet(c: &Client, net: &str, cidr: &str) -> Reply {
    c.post(
        "/network/v2.0/subnets",
        json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4, "name": "sub"}}),
    )
    .await
}

#[tokio::test]
async fn discovery_lists_only_v2_and_its_resources() {
    let api = TestApi::start().await;
    for root in ["/network", "/network/"] {
        let r = api.anonymous().get(root).await;
        assert_eq!(r.status, 200);
        assert_eq!(keys(&r.body), ["versions"]);
        let versions = r.body["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["id"], "v2.0");
        assert_eq!(versions[0]["status"], "CURRENT");
        assert_eq!(
            versions[0]["links"][0]["href"],
            format!("{}/network/v2.0/", api.url)
        );
    }
    let r = api.anonymous().get("/network/v2.0/").await;
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "network",
            "subnet",
            "port",
            "security-group",
            "security-group-rule"
        ]
    );
    let r = api.anonymous().get("/network/v2.0/nothing-here").await;
    assert_eq!(r.status, 404);
    assert!(r.body["NeutronError"].is_object());
}

#[tokio::test]
async fn network_lifecycle_and_name_lookup() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let r = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "c_net", "admin_state_up": true}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let net = &r.body["network"];
    assert_eq!(
        keys(net),
        sorted(&[
            "id",
            "name",
            "status",
            "admin_state_up",
            "subnets",
            "shared",
            "project_id",
            "tenant_id",
            "mtu",
            "router:external",
            "port_security_enabled",
            "availability_zones",
            "availability_zone_hints",
            "description",
            "created_at",
            "updated_at",
            "revision_number",
            "tags",
        ])
    );
    assert_eq!(net["status"], "ACTIVE");
    assert_eq!(net["shared"], false);
    assert_eq!(net["subnets"], json!([]));
    assert_eq!(net["project_id"], net["tenant_id"]);
    let net_id = net["id"].as_str().unwrap().to_owned();

    // What OSC does to resolve a name: GET by name (404), then ?name=.
    let r = c.get("/network/v2.0/networks/c_net").await;
    assert_fault(&r, 404, "c_net");
    assert_eq!(r.body["NeutronError"]["type"], "NetworkNotFound");
    let r = c
        .get("/network/v2.0/networks?name=c_net&fields=id&fields=name")
        .await;
    assert_eq!(r.status, 200);
    let found = r.body["networks"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], net_id.as_str());
    let r = c.get("/network/v2.0/networks?name=c_ne").await;
    assert_eq!(r.body["networks"], json!([]));
    let r = c
        .get(&format!(
            "/network/v2.0/networks?id={net_id}&admin_state_up=true&bogus=1"
        ))
        .await;
    assert_eq!(r.body["networks"].as_array().unwrap().len(), 1);
    let r = c.get("/network/v2.0/networks?shared=true").await;
    assert_eq!(r.body["networks"], json!([]));

    let r = c
        .put(
            &format!("/network/v2.0/networks/{net_id}"),
            json!({"network": {"name": "renamed", "mtu": 1400, "description": "d"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["network"]["name"], "renamed");
    assert_eq!(r.body["network"]["mtu"], 1400);
    assert!(r.body["network"]["revision_number"].as_i64().unwrap() > 1);
    // Sharing is for admins; wrong types name the field.
    let r = c
        .put(
            &format!("/network/v2.0/networks/{net_id}"),
            json!({"network": {"shared": true}}),
        )
        .await;
    assert_fault(&r, 403, "shared");
    let r = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"admin_state_up": "yes"}}),
        )
        .await;
    assert_fault(&r, 400, "network.admin_state_up");
    let r = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "x", "mtu": 10}}),
        )
        .await;
    assert_fault(&r, 400, "mtu");

    let r = c.delete(&format!("/network/v2.0/networks/{net_id}")).await;
    assert_eq!(r.status, 204);
    let r = c.get(&format!("/network/v2.0/networks/{net_id}")).await;
    assert_fault(&r, 404, &net_id);
}

#[tokio::test]
async fn subnets_default_validate_and_refuse_overlaps() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let net = create_network(&c, "n").await;
    let r = create_subnet(&c, &net, "10.0.1.0/24").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = &r.body["subnet"];
    assert_eq!(
        keys(s),
        sorted(&[
            "id",
            "name",
            "network_id",
            "cidr",
            "ip_version",
            "gateway_ip",
            "allocation_pools",
            "enable_dhcp",
            "dns_nameservers",
            "host_routes",
            "project_id",
            "tenant_id",
            "ipv6_ra_mode",
            "ipv6_address_mode",
            "subnetpool_id",
            "description",
            "service_types",
            "tags",
            "created_at",
            "updated_at",
            "revision_number",
        ])
    );
    assert_eq!(s["gateway_ip"], "10.0.1.1");
    assert_eq!(
        s["allocation_pools"],
        json!([{"start": "10.0.1.2", "end": "10.0.1.254"}])
    );
    assert_eq!(s["enable_dhcp"], true);
    let sub = s["id"].as_str().unwrap().to_owned();
    let r = c.get(&format!("/network/v2.0/networks/{net}")).await;
    assert_eq!(r.body["network"]["subnets"], json!([sub]));

    for bad in ["10.0.0.300/24", "10.0.0.1/24", "banana", "10.0.0.0/33"] {
        let r = create_subnet(&c, &net, bad).await;
        assert_fault(&r, 400, "cidr");
    }
    let r = c
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": "fd00::/64", "ip_version": 6}}),
        )
        .await;
    assert_fault(&r, 400, "not supported");
    let r = create_subnet(&c, &net, "10.0.0.0/16").await;
    assert_fault(&r, 400, "overlaps");

    // Explicit gateway and pools: inside the CIDR, disjoint, gateway outside.
    let post = |body: Value| {
        let c = c.clone();
        async move {
            c.post("/network/v2.0/subnets", json!({ "subnet": body }))
                .await
        }
    };
    let r = post(json!({"network_id": net, "cidr": "10.0.2.0/24", "gateway_ip": "10.0.3.1"})).await;
    assert_fault(&r, 400, "gateway_ip");
    let r = post(json!({"network_id": net, "cidr": "10.0.2.0/24",
        "allocation_pools": [{"start": "10.0.2.10", "end": "10.0.2.20"},
                             {"start": "10.0.2.15", "end": "10.0.2.30"}]}))
    .await;
    assert_fault(&r, 400, "overlapping");
    let r = post(json!({"network_id": net, "cidr": "10.0.2.0/24",
        "allocation_pools": [{"start": "10.0.2.1", "end": "10.0.2.9"}]}))
    .await;
    assert_fault(&r, 400, "gateway");
    let r = post(json!({"network_id": net, "cidr": "10.0.2.0/24",
        "allocation_pools": [{"start": "10.0.2.200", "end": "10.0.3.9"}]}))
    .await;
    assert_fault(&r, 400, "allocation_pools");
    let r = post(
        json!({"network_id": net, "cidr": "10.0.2.0/24", "gateway_ip": null,
        "dns_nameservers": ["8.8.8.8"]}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["subnet"]["gateway_ip"], Value::Null);
    assert_eq!(
        r.body["subnet"]["allocation_pools"],
        json!([{"start": "10.0.2.1", "end": "10.0.2.254"}])
    );

    // Update, filters, delete.
    let r = c
        .put(
            &format!("/network/v2.0/subnets/{sub}"),
            json!({"subnet": {"name": "renamed", "dns_nameservers": ["1.1.1.1"], "enable_dhcp": false}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["subnet"]["dns_nameservers"], json!(["1.1.1.1"]));
    let r = c
        .put(
            &format!("/network/v2.0/subnets/{sub}"),
            json!({"subnet": {"gateway_ip": "10.0.1.50"}}),
        )
        .await;
    assert_fault(&r, 400, "allocation pool");
    let r = c.get("/network/v2.0/subnets?name=renamed").await;
    assert_eq!(r.body["subnets"].as_array().unwrap().len(), 1);
    let r = c.get("/network/v2.0/subnets?cidr=10.0.2.0/24").await;
    assert_eq!(r.body["subnets"].as_array().unwrap().len(), 1);
    let r = c.get("/network/v2.0/subnets/renamed").await;
    assert_fault(&r, 404, "renamed");
    let r = c.delete(&format!("/network/v2.0/subnets/{sub}")).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn network_delete_cascades_subnets_but_not_ports() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let net = create_network(&c, "n").await;
    let sub = id(&create_subnet(&c, &net, "10.0.0.0/24").await, "subnet");
    let r = post_port(&c, json!({"network_id": net})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let port = id(&r, "port");

    let r = c.delete(&format!("/network/v2.0/networks/{net}")).await;
    assert_fault(&r, 409, "ports");
    let r = c.delete(&format!("/network/v2.0/subnets/{sub}")).await;
    assert_fault(&r, 409, "allocated");

    assert_eq!(
        c.delete(&format!("/network/v2.0/ports/{port}"))
            .await
            .status,
        204
    );
    assert_eq!(
        c.delete(&format!("/network/v2.0/networks/{net}"))
            .await
            .status,
        204
    );
    let r = c.get(&format!("/network/v2.0/subnets/{sub}")).await;
    assert_fault(&r, 404, &sub);
    assert_eq!(r.body["NeutronError"]["type"], "SubnetNotFound");
}

/// 20 concurrent port creates on a /29 (5 usable addresses besides the
/// gateway): exactly 5 succeed, with distinct addresses; the others are
/// told the subnet is exhausted.
async fn concurrent_ports_exhaust_a_small_subnet(backend: Backend) {
    let api = TestApi::start_on(backend).await;
    let c = api.account("alpha", "alice", "member").await.client;
    let net = create_network(&c, "small").await;
    let r = create_subnet(&c, &net, "10.9.0.0/29").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            let net = net.clone();
            tokio::spawn(async move {
                post_port(&c, json!({"network_id": net, "name": format!("p{i}")})).await
            })
        })
        .collect();
    let mut ips = BTreeSet::new();
    let mut refused = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => {
                let fixed = r.body["port"]["fixed_ips"].as_array().unwrap();
                assert_eq!(fixed.len(), 1);
                assert!(ips.insert(fixed[0]["ip_address"].as_str().unwrap().to_owned()));
            }
            409 => {
                assert_fault(&r, 409, "No more IP addresses available");
                refused += 1;
            }
            s => panic!("unexpected {s}: {:?}", r.body),
        }
    }
    let expected: BTreeSet<String> = (2..=6).map(|i| format!("10.9.0.{i}")).collect();
    assert_eq!(ips, expected);
    assert_eq!(refused, 15);
    let r = c
        .get(&format!("/network/v2.0/ports?network_id={net}"))
        .await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ipam_hands_out_each_address_once_sqlite() {
    concurrent_ports_exhaust_a_small_subnet(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ipam_hands_out_each_address_once_postgres() {
    concurrent_ports_exhaust_a_small_subnet(Backend::Postgres).await;
}

#[tokio::test]
async fn ports_with_explicit_addresses_and_filters() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let net = create_network(&c, "n").await;
    let sub = id(&create_subnet(&c, &net, "10.0.0.0/24").await, "subnet");

    let r = post_port(
        &c,
        json!({"network_id": net, "name": "fixed", "fixed_ips": [{"subnet_id": sub, "ip_address": "10.0.0.50"}],
               "mac_address": "FA:16:3E:AA:BB:CC", "device_owner": "compute:nova"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let p = &r.body["port"];
    assert_eq!(
        keys(p),
        sorted(&[
            "id",
            "name",
            "network_id",
            "project_id",
            "tenant_id",
            "mac_address",
            "fixed_ips",
            "device_id",
            "device_owner",
            "status",
            "admin_state_up",
            "security_groups",
            "binding:host_id",
            "binding:vif_type",
            "description",
            "created_at",
            "updated_at",
            "revision_number",
            "tags",
            "port_security_enabled",
            "allowed_address_pairs",
            "extra_dhcp_opts",
        ])
    );
    assert_eq!(
        p["fixed_ips"],
        json!([{"subnet_id": sub, "ip_address": "10.0.0.50"}])
    );
    assert_eq!(p["mac_address"], "fa:16:3e:aa:bb:cc");
    assert_eq!(p["device_id"], "");
    assert_eq!(p["status"], "DOWN");
    let port = p["id"].as_str().unwrap().to_owned();

    // The same address again, by address only: 409.
    let r = post_port(
        &c,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.50"}]}),
    )
    .await;
    assert_fault(&r, 409, "10.0.0.50");
    let r = post_port(
        &c,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.1"}]}),
    )
    .await;
    assert_fault(&r, 409, "gateway");
    let r = post_port(
        &c,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.5.0.1"}]}),
    )
    .await;
    assert_fault(&r, 400, "fixed_ips[0].ip_address");
    let r = post_port(
        &c,
        json!({"network_id": net, "mac_address": "fa:16:3e:aa:bb:cc"}),
    )
    .await;
    assert_fault(&r, 409, "mac address");
    let r = post_port(&c, json!({"network_id": net, "mac_address": "nope"})).await;
    assert_fault(&r, 400, "mac_address");
    let r = post_port(
        &c,
        json!({"network_id": net, "fixed_ips": [{"subnet_id": "nope"}]}),
    )
    .await;
    assert_fault(&r, 400, "fixed_ips[0].subnet_id");
    let r = post_port(&c, json!({"name": "no-net"})).await;
    assert_fault(&r, 400, "network_id");

    let r = post_port(&c, json!({"network_id": net, "name": "auto"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["port"]["fixed_ips"][0]["ip_address"], "10.0.0.2");

    let r = c
        .get("/network/v2.0/ports?fixed_ips=ip_address%3D10.0.0.50")
        .await;
    let found = r.body["ports"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], port.as_str());
    let r = c.get("/network/v2.0/ports?device_owner=compute:nova").await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 1);
    let r = c.get("/network/v2.0/ports?name=auto&name=fixed").await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 2);
    let r = c
        .get("/network/v2.0/ports?mac_address=fa:16:3e:aa:bb:cc")
        .await;
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 1);

    let r = c
        .put(
            &format!("/network/v2.0/ports/{port}"),
            json!({"port": {"name": "renamed", "admin_state_up": false, "security_groups": []}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port"]["name"], "renamed");
    assert_eq!(r.body["port"]["admin_state_up"], false);
    assert_eq!(r.body["port"]["security_groups"], json!([]));
    let r = c
        .put(
            &format!("/network/v2.0/ports/{port}"),
            json!({"port": {"device_id": "not-a-uuid"}}),
        )
        .await;
    assert_fault(&r, 400, "device_id");

    // Deleting the port frees its address.
    assert_eq!(
        c.delete(&format!("/network/v2.0/ports/{port}"))
            .await
            .status,
        204
    );
    let r = post_port(
        &c,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.50"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[tokio::test]
async fn other_projects_resources_are_not_found() {
    let api = TestApi::start().await;
    let alice = api.account("alpha", "alice", "member").await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let net = create_network(&alice, "private").await;
    let sub = id(&create_subnet(&alice, &net, "10.0.0.0/24").await, "subnet");
    let port = id(&post_port(&alice, json!({"network_id": net})).await, "port");
    let r = alice
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sg = id(&r, "security_group");

    for (path, kind) in [
        (format!("/network/v2.0/networks/{net}"), "NetworkNotFound"),
        (format!("/network/v2.0/subnets/{sub}"), "SubnetNotFound"),
        (format!("/network/v2.0/ports/{port}"), "PortNotFound"),
        (
            format!("/network/v2.0/security-groups/{sg}"),
            "SecurityGroupNotFound",
        ),
    ] {
        let r = bob.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {:?}", r.body);
        assert_eq!(r.body["NeutronError"]["type"], kind);
        assert_eq!(bob.delete(&path).await.status, 404, "{path}");
    }
    let r = bob
        .put(
            &format!("/network/v2.0/networks/{net}"),
            json!({"network": {"name": "mine"}}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = post_port(&bob, json!({"network_id": net})).await;
    assert_fault(&r, 404, &net);
    for coll in ["networks", "subnets", "ports"] {
        let r = bob.get(&format!("/network/v2.0/{coll}")).await;
        assert_eq!(r.body[coll], json!([]), "{coll}");
    }
    let r = bob.get("/network/v2.0/security-groups").await;
    let names: Vec<&str> = r.body["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"]);
    // Bob cannot use Alice's group on his own port either.
    let bob_net = create_network(&bob, "b").await;
    let r = post_port(
        &bob,
        json!({"network_id": bob_net, "security_groups": [sg]}),
    )
    .await;
    assert_fault(&r, 404, &sg);
}

#[tokio::test]
async fn shared_networks_and_admin_powers() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let bob = api.account("beta", "bob", "member").await;
    let r = admin
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "public", "shared": true}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let net = id(&r, "network");
    let sub = id(
        &create_subnet(&admin, &net, "192.168.0.0/24").await,
        "subnet",
    );

    // Bob sees the shared network and its subnet and may put a port on it,
    // but may not change it, add subnets to it or pick addresses on it.
    let r = bob.client.get("/network/v2.0/networks?shared=true").await;
    assert_eq!(r.body["networks"].as_array().unwrap().len(), 1);
    assert_eq!(
        bob.client
            .get(&format!("/network/v2.0/subnets/{sub}"))
            .await
            .status,
        200
    );
    let r = bob
        .client
        .put(
            &format!("/network/v2.0/networks/{net}"),
            json!({"network": {"name": "x"}}),
        )
        .await;
    assert_fault(&r, 403, "another project");
    assert_eq!(
        bob.client
            .delete(&format!("/network/v2.0/networks/{net}"))
            .await
            .status,
        403
    );
    assert_eq!(
        create_subnet(&bob.client, &net, "192.168.1.0/24")
            .await
            .status,
        403
    );
    let r = post_port(
        &bob.client,
        json!({"network_id": net, "fixed_ips": [{"ip_address": "192.168.0.9"}]}),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = post_port(&bob.client, json!({"network_id": net})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["port"]["project_id"], bob.project_id.as_str());

    // Un-sharing while Bob has a port on it is refused.
    let r = admin
        .put(
            &format!("/network/v2.0/networks/{net}"),
            json!({"network": {"shared": false}}),
        )
        .await;
    assert_fault(&r, 409, "sharing");

    // Admins may create for another project; members may not.
    let r = admin
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "for-bob", "project_id": bob.project_id}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["network"]["tenant_id"], bob.project_id.as_str());
    let for_bob = id(&r, "network");
    assert_eq!(
        bob.client
            .get(&format!("/network/v2.0/networks/{for_bob}"))
            .await
            .status,
        200
    );
    let r = bob
        .client
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "x", "tenant_id": "someone-else"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    // Admins list every project's networks.
    let r = admin.get("/network/v2.0/networks").await;
    assert_eq!(r.body["networks"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn readers_cannot_write() {
    let api = TestApi::start().await;
    let member = api.account("alpha", "alice", "member").await.client;
    let reader = api.account("alpha", "rita", "reader").await.client;
    let net = create_network(&member, "n").await;
    assert_eq!(
        reader
            .get(&format!("/network/v2.0/networks/{net}"))
            .await
            .status,
        200
    );
    let r = reader
        .post("/network/v2.0/networks", json!({"network": {"name": "x"}}))
        .await;
    assert_fault(&r, 403, "member");
    assert_eq!(
        create_subnet(&reader, &net, "10.0.0.0/24").await.status,
        403
    );
    assert_eq!(
        post_port(&reader, json!({"network_id": net})).await.status,
        403
    );
    let r = reader
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        reader
            .delete(&format!("/network/v2.0/networks/{net}"))
            .await
            .status,
        403
    );
    assert_eq!(
        api.anonymous().get("/network/v2.0/networks").await.status,
        401
    );
}

#[tokio::test]
async fn default_security_group_exists_and_is_protected() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let r = c.get("/network/v2.0/security-groups?name=default").await;
    let groups = r.body["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let sg = &groups[0];
    assert_eq!(
        keys(sg),
        sorted(&[
            "id",
            "name",
            "description",
            "project_id",
            "tenant_id",
            "security_group_rules",
            "stateful",
            "created_at",
            "updated_at",
            "revision_number",
            "tags",
        ])
    );
    let default = sg["id"].as_str().unwrap().to_owned();
    let rules = sg["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert!(rules.iter().any(|r| r["direction"] == "ingress"
        && r["ethertype"] == "IPv4"
        && r["remote_group_id"] == default.as_str()));

    let r = c
        .delete(&format!("/network/v2.0/security-groups/{default}"))
        .await;
    assert_fault(&r, 409, "default");
    let r = c
        .put(
            &format!("/network/v2.0/security-groups/{default}"),
            json!({"security_group": {"name": "x"}}),
        )
        .await;
    assert_fault(&r, 409, "default");
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "default"}}),
        )
        .await;
    assert_fault(&r, 409, "default");

    // A port without groups gets the default one; a group in use cannot go.
    let net = create_network(&c, "n").await;
    create_subnet(&c, &net, "10.0.0.0/24").await;
    let r = post_port(&c, json!({"network_id": net})).await;
    assert_eq!(r.body["port"]["security_groups"], json!([default]));
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web", "description": "w"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let web = id(&r, "security_group");
    assert_eq!(
        r.body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = post_port(&c, json!({"network_id": net, "security_groups": [web]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let port = id(&r, "port");
    let r = c
        .delete(&format!("/network/v2.0/security-groups/{web}"))
        .await;
    assert_fault(&r, 409, "in use");
    assert_eq!(
        c.delete(&format!("/network/v2.0/ports/{port}"))
            .await
            .status,
        204
    );
    let r = c
        .put(
            &format!("/network/v2.0/security-groups/{web}"),
            json!({"security_group": {"name": "web2"}}),
        )
        .await;
    assert_eq!(r.body["security_group"]["name"], "web2");
    assert_eq!(
        c.delete(&format!("/network/v2.0/security-groups/{web}"))
            .await
            .status,
        204
    );
    assert_eq!(
        c.get(&format!("/network/v2.0/security-groups/{web}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn security_group_rules_are_validated() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    let sg = id(&r, "security_group");
    let rule = |extra: Value| {
        let mut body = json!({"security_group_id": sg, "direction": "ingress"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        json!({ "security_group_rule": body })
    };
    let cases = [
        (json!({"direction": "sideways"}), "direction"),
        (json!({"ethertype": "IPv5"}), "ethertype"),
        (json!({"protocol": "bogus"}), "protocol"),
        (
            json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 22}),
            "port_range_min",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 70000}),
            "port_range_max",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}),
            "port_range_min",
        ),
        (
            json!({"port_range_min": 22, "port_range_max": 22}),
            "protocol",
        ),
        (
            json!({"protocol": "icmp", "port_range_min": 300}),
            "port_range_min",
        ),
        (json!({"remote_ip_prefix": "banana"}), "remote_ip_prefix"),
        (json!({"remote_ip_prefix": "fd00::/8"}), "remote_ip_prefix"),
        (
            json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": sg}),
            "remote_group_id",
        ),
        (json!({"port_range_min": "22"}), "port_range_min"),
        (json!({"remote_group_id": "nope"}), "remote_group_id"),
    ];
    for (extra, field) in cases {
        let r = c
            .post("/network/v2.0/security-group-rules", rule(extra.clone()))
            .await;
        assert_fault(&r, 400, field);
    }
    let missing = uuid_like();
    let r = c
        .post(
            "/network/v2.0/security-group-rules",
            rule(json!({"remote_group_id": missing})),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    let ssh = rule(
        json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                          "remote_ip_prefix": "10.1.2.3/16"}),
    );
    let r = c
        .post("/network/v2.0/security-group-rules", ssh.clone())
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["security_group_rule"]["remote_ip_prefix"],
        "10.1.0.0/16"
    );
    assert_eq!(r.body["security_group_rule"]["ethertype"], "IPv4");
    let rule_id = id(&r, "security_group_rule");
    let r = c.post("/network/v2.0/security-group-rules", ssh).await;
    assert_fault(&r, 409, "already exists");

    let r = c
        .get(&format!(
            "/network/v2.0/security-group-rules?security_group_id={sg}&direction=ingress"
        ))
        .await;
    assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 1);
    let r = c.get(&format!("/network/v2.0/security-groups/{sg}")).await;
    assert_eq!(
        r.body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        c.get(&format!("/network/v2.0/security-group-rules/{rule_id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        c.delete(&format!("/network/v2.0/security-group-rules/{rule_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        c.get(&format!("/network/v2.0/security-group-rules/{rule_id}"))
            .await
            .status,
        404
    );

    // Another project cannot add rules to the group.
    let bob = api.account("beta", "bob", "member").await.client;
    let r = bob
        .post(
            "/network/v2.0/security-group-rules",
            rule(json!({"protocol": "udp"})),
        )
        .await;
    assert_fault(&r, 404, &sg);
}

/// A well-formed id nothing has.
fn uuid_like() -> String {
    "6b0c56a4-0d5f-4f0e-9a55-6f0c0c1d2e3f".to_owned()
}
