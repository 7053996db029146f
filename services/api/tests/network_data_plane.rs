//! The network API's data plane attributes over real HTTP: provider
//! attributes (admin only; VNIs allocated once each, also under 20
//! concurrent creates on SQLite and PostgreSQL; taken segments are 409s),
//! MTUs bounded by the segment, port security and allowed address pairs
//! with Neutron's rules between them and security groups, subnet host
//! routes, the extensions that announce them, and the `NetworkChanged`
//! casts that tell the conductors about every change hosts enforce.

use cloud_bus::{Bus, CONDUCTOR_QUEUE, InProcBus};
use cloud_store::{Backend, Scope, VniRange};
use cloud_test_utils::{Client, Reply, TestApi, TestDb, both_backends};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::{ConductorQueue, aliases, assert_fault, id, network, post_port, put_port};

mod support;

const PROVIDER_KEYS: [&str; 3] = [
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
];

async fn post_network(c: &Client, body: Value) -> Reply {
    c.post("/network/v2.0/networks", json!({ "network": body }))
        .await
}

async fn put_network(c: &Client, id: &str, body: Value) -> Reply {
    c.put(
        &format!("/network/v2.0/networks/{id}"),
        json!({ "network": body }),
    )
    .await
}

async fn post_subnet(c: &Client, body: Value) -> Reply {
    c.post("/network/v2.0/subnets", json!({ "subnet": body }))
        .await
}

async fn security_group(c: &Client, name: &str) -> String {
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": name}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    id(&r, "security_group")
}

fn vni(r: &Reply) -> i64 {
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["network"]["provider:network_type"], "vxlan");
    r.body["network"]["provider:segmentation_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no VNI in {:?}", r.body))
}

#[tokio::test]
async fn provider_attributes_are_for_admins_only() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let member = api.account("alpha", "alice", "member").await.client;

    let r = post_network(
        &admin,
        json!({"name": "vlan100", "shared": true, "provider:network_type": "vlan",
               "provider:physical_network": "physnet1", "provider:segmentation_id": 100}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let net = &r.body["network"];
    assert_eq!(net["provider:network_type"], "vlan");
    assert_eq!(net["provider:physical_network"], "physnet1");
    assert_eq!(net["provider:segmentation_id"], 100);
    assert_eq!(net["mtu"], 1500);
    let vlan = id(&r, "network");
    let r = admin.get(&format!("/network/v2.0/networks/{vlan}")).await;
    assert_eq!(r.body["network"]["provider:segmentation_id"], 100);
    let r = admin
        .get("/network/v2.0/networks?provider:network_type=vlan")
        .await;
    let listed = r.body["networks"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["provider:physical_network"], "physnet1");

    // A member sees the shared network, and its own, without the keys.
    let r = member.get(&format!("/network/v2.0/networks/{vlan}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for key in PROVIDER_KEYS {
        assert!(
            r.body["network"].get(key).is_none(),
            "{key} shown to a member"
        );
    }
    let r = post_network(&member, json!({"name": "mine"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mine = id(&r, "network");
    for key in PROVIDER_KEYS {
        assert!(
            r.body["network"].get(key).is_none(),
            "{key} shown to a member"
        );
    }
    let r = member.get("/network/v2.0/networks").await;
    for n in r.body["networks"].as_array().unwrap() {
        assert!(n.get("provider:network_type").is_none(), "{n}");
    }
    // ...while an admin sees the member's network's segment.
    let r = admin.get(&format!("/network/v2.0/networks/{mine}")).await;
    assert_eq!(r.body["network"]["provider:network_type"], "vxlan");
    assert!(r.body["network"]["provider:physical_network"].is_null());

    // Setting any of them is an admin's business.
    for key in PROVIDER_KEYS {
        let value = if key == "provider:segmentation_id" {
            json!(7)
        } else {
            json!("vxlan")
        };
        let r = post_network(&member, json!({"name": "x", key: value})).await;
        assert_fault(&r, 403, key);
    }
    let r = put_network(&member, &mine, json!({"provider:segmentation_id": 9})).await;
    assert_fault(&r, 403, "provider:segmentation_id");
    // And a segment never changes.
    let r = put_network(&admin, &mine, json!({"provider:segmentation_id": 9})).await;
    assert_fault(&r, 400, "provider attributes");
    let r = put_network(&admin, &vlan, json!({"provider:network_type": "flat"})).await;
    assert_fault(&r, 400, "provider attributes");
}

#[tokio::test]
async fn segments_are_validated_and_never_shared() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;

    let a = vni(&post_network(&admin, json!({"name": "a"})).await);
    let b = vni(&post_network(&admin, json!({"name": "b"})).await);
    assert_ne!(a, b);
    let r = post_network(
        &admin,
        json!({"name": "same", "provider:network_type": "vxlan", "provider:segmentation_id": a}),
    )
    .await;
    assert_fault(&r, 409, "in use");
    let r = post_network(
        &admin,
        json!({"name": "chosen", "provider:network_type": "vxlan",
               "provider:segmentation_id": 70000}),
    )
    .await;
    assert_eq!(vni(&r), 70000);

    let flat = json!({"name": "flat", "provider:network_type": "flat",
                      "provider:physical_network": "physnet1"});
    let r = post_network(&admin, flat.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["network"]["provider:network_type"], "flat");
    assert!(r.body["network"]["provider:segmentation_id"].is_null());
    assert_eq!(r.body["network"]["mtu"], 1500);
    let r = post_network(&admin, flat).await;
    assert_fault(&r, 409, "physnet1");

    let vlan = |id: Value| {
        json!({"name": "v", "provider:network_type": "vlan",
               "provider:physical_network": "physnet1", "provider:segmentation_id": id})
    };
    assert_eq!(post_network(&admin, vlan(json!(4094))).await.status, 201);
    assert_fault(
        &post_network(&admin, vlan(json!(4094))).await,
        409,
        "in use",
    );
    for bad in [json!(0), json!(4095), json!(-1)] {
        let r = post_network(&admin, vlan(bad)).await;
        assert_fault(&r, 400, "out of range (1 through 4094)");
    }
    assert_fault(
        &post_network(&admin, vlan(json!("ten"))).await,
        400,
        "provider:segmentation_id",
    );
    let cases = [
        (
            json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1"}),
            "segmentation_id required",
        ),
        (
            json!({"provider:network_type": "flat"}),
            "physical_network required",
        ),
        (
            json!({"provider:network_type": "flat", "provider:physical_network": "physnet1",
                   "provider:segmentation_id": 3}),
            "segmentation_id prohibited",
        ),
        (
            json!({"provider:network_type": "flat", "provider:physical_network": "nowhere"}),
            "'nowhere' unknown",
        ),
        (
            json!({"provider:network_type": "vxlan", "provider:physical_network": "physnet1"}),
            "physical_network prohibited",
        ),
        (
            json!({"provider:network_type": "vxlan", "provider:segmentation_id": 16_777_216}),
            "1 through 16777215",
        ),
        (
            json!({"provider:network_type": "gre"}),
            "'gre' not supported",
        ),
        (
            json!({"provider:physical_network": "physnet1"}),
            "network_type required",
        ),
    ];
    for (body, needle) in cases {
        let r = post_network(&admin, body.clone()).await;
        assert_fault(&r, 400, needle);
    }
}

#[tokio::test]
async fn configured_physical_networks_and_vni_range() {
    let db = TestDb::new(Backend::Sqlite).await;
    let api = TestApi::start_with(db, |c| {
        c.network.physical_networks = vec!["datacentre".to_owned()];
        c.network.vni_range = VniRange {
            first: 100,
            last: 101,
        };
    })
    .await;
    let admin = api.admin().await.client;
    let r = post_network(
        &admin,
        json!({"provider:network_type": "flat", "provider:physical_network": "physnet1"}),
    )
    .await;
    assert_fault(&r, 400, "datacentre");
    let r = post_network(
        &admin,
        json!({"provider:network_type": "flat", "provider:physical_network": "datacentre"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(vni(&post_network(&admin, json!({"name": "a"})).await), 100);
    assert_eq!(vni(&post_network(&admin, json!({"name": "b"})).await), 101);
    let r = post_network(&admin, json!({"name": "c"})).await;
    assert_fault(&r, 409, "100..101");
    // An explicit VNI outside the range is still an admin's choice.
    let r = post_network(
        &admin,
        json!({"provider:network_type": "vxlan", "provider:segmentation_id": 5}),
    )
    .await;
    assert_eq!(vni(&r), 5);
}

both_backends!(concurrent_creates_get_distinct_vnis, |db| async move {
    let api = TestApi::start_with(db, |_| {}).await;
    let admin = api.admin().await.client;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = admin.clone();
            tokio::spawn(async move { post_network(&c, json!({"name": format!("n{i}")})).await })
        })
        .collect();
    let mut vnis = BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(vnis.insert(vni(&r)), "VNI handed out twice: {:?}", r.body);
    }
    assert_eq!(vnis.len(), 20);
    // The lowest free ones, since the database started empty.
    assert_eq!(vnis, (1..=20).collect::<BTreeSet<i64>>());
});

#[tokio::test]
async fn mtu_defaults_to_and_is_bounded_by_the_segment() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let r = post_network(&admin, json!({"name": "overlay"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["network"]["mtu"], 1450);
    let overlay = id(&r, "network");
    let r = post_network(&admin, json!({"name": "big", "mtu": 1451})).await;
    assert_fault(&r, 400, "maximum is 1450");
    let r = post_network(&admin, json!({"name": "small", "mtu": 1400})).await;
    assert_eq!(r.body["network"]["mtu"], 1400);
    let r = post_network(
        &admin,
        json!({"provider:network_type": "flat", "provider:physical_network": "physnet1"}),
    )
    .await;
    assert_eq!(r.body["network"]["mtu"], 1500);
    let flat = id(&r, "network");
    let r = post_network(
        &admin,
        json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
               "provider:segmentation_id": 10, "mtu": 1501}),
    )
    .await;
    assert_fault(&r, 400, "maximum is 1500");

    let r = put_network(&admin, &overlay, json!({"mtu": 1500})).await;
    assert_fault(&r, 400, "maximum is 1450");
    let r = put_network(&admin, &overlay, json!({"mtu": 1300})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["network"]["mtu"], 1300);
    let r = put_network(&admin, &flat, json!({"mtu": 1500})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = put_network(&admin, &flat, json!({"mtu": 67})).await;
    assert_fault(&r, 400, "mtu");
}

#[tokio::test]
async fn network_port_security_is_the_default_of_its_ports() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let r = post_network(&c, json!({"name": "open", "port_security_enabled": false})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["network"]["port_security_enabled"], false);
    let net = id(&r, "network");
    let r = post_subnet(&c, json!({"network_id": net, "cidr": "10.0.0.0/24"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // A port inherits it, and then has no security group at all.
    let r = post_port(&c, json!({"network_id": net})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["port"]["port_security_enabled"], false);
    assert_eq!(r.body["port"]["security_groups"], json!([]));
    // Asking for it gives the default group as usual.
    let r = post_port(
        &c,
        json!({"network_id": net, "port_security_enabled": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["port"]["port_security_enabled"], true);
    assert_eq!(
        r.body["port"]["security_groups"].as_array().unwrap().len(),
        1
    );

    let r = put_network(&c, &net, json!({"port_security_enabled": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["network"]["port_security_enabled"], true);
    let r = c.get(&format!("/network/v2.0/networks/{net}")).await;
    assert_eq!(r.body["network"]["port_security_enabled"], true);
    let r = post_port(&c, json!({"network_id": net})).await;
    assert_eq!(r.body["port"]["port_security_enabled"], true);
}

#[tokio::test]
async fn port_security_and_address_pairs_follow_neutrons_rules() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let (net, _) = network(&c, "n", "10.0.0.0/24", json!({})).await;
    let sg = security_group(&c, "web").await;

    // Creating: groups, or pairs, with port security off are refused.
    let r = post_port(
        &c,
        json!({"network_id": net, "port_security_enabled": false, "security_groups": [sg]}),
    )
    .await;
    assert_fault(&r, 400, "Port security must be enabled");
    let r = post_port(
        &c,
        json!({"network_id": net, "port_security_enabled": false,
               "allowed_address_pairs": [{"ip_address": "10.0.0.100"}]}),
    )
    .await;
    assert_fault(&r, 409, "Address pairs");
    let r = post_port(
        &c,
        json!({"network_id": net, "port_security_enabled": false, "security_groups": []}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["port"]["security_groups"], json!([]));

    // Pairs take the port's MAC unless they name one.
    let r = post_port(
        &c,
        json!({"network_id": net, "security_groups": [sg], "allowed_address_pairs": [
            {"ip_address": "10.0.0.100"},
            {"ip_address": "10.0.1.0/24", "mac_address": "FA:16:3E:00:00:99"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let p = &r.body["port"];
    let mac = p["mac_address"].as_str().unwrap().to_owned();
    assert_eq!(
        p["allowed_address_pairs"],
        json!([{"ip_address": "10.0.0.100", "mac_address": mac},
               {"ip_address": "10.0.1.0/24", "mac_address": "fa:16:3e:00:00:99"}])
    );
    assert_eq!(p["port_security_enabled"], true);
    let port = id(&r, "port");
    let r = c.get(&format!("/network/v2.0/ports/{port}")).await;
    assert_eq!(
        r.body["port"]["allowed_address_pairs"][0]["mac_address"],
        mac
    );
    let r = post_port(
        &c,
        json!({"network_id": net, "mac_address": "fa:16:3e:12:34:56",
               "allowed_address_pairs": [{"ip_address": "10.0.0.101"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["port"]["allowed_address_pairs"][0]["mac_address"],
        "fa:16:3e:12:34:56"
    );

    // Updating: port security cannot go while groups or pairs stay.
    let r = put_port(&c, &port, json!({"port_security_enabled": false})).await;
    assert_fault(&r, 409, "Port has security group associated");
    let r = put_port(
        &c,
        &port,
        json!({"port_security_enabled": false, "security_groups": []}),
    )
    .await;
    assert_fault(&r, 409, "Address pairs");
    let r = put_port(
        &c,
        &port,
        json!({"port_security_enabled": false, "security_groups": [sg],
               "allowed_address_pairs": []}),
    )
    .await;
    assert_fault(&r, 400, "Port security must be enabled");
    let r = put_port(
        &c,
        &port,
        json!({"port_security_enabled": false, "security_groups": [],
               "allowed_address_pairs": []}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let p = &r.body["port"];
    assert_eq!(p["port_security_enabled"], false);
    assert_eq!(p["security_groups"], json!([]));
    assert_eq!(p["allowed_address_pairs"], json!([]));
    // While it is off, neither groups nor pairs come back.
    let r = put_port(&c, &port, json!({"security_groups": [sg]})).await;
    assert_fault(&r, 400, "Port security must be enabled");
    let r = put_port(
        &c,
        &port,
        json!({"allowed_address_pairs": [{"ip_address": "10.0.0.7"}]}),
    )
    .await;
    assert_fault(&r, 409, "Address pairs");
    let r = put_port(
        &c,
        &port,
        json!({"port_security_enabled": true, "security_groups": [sg],
               "allowed_address_pairs": [{"ip_address": "10.0.0.7"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port"]["security_groups"], json!([sg]));
    assert_eq!(
        r.body["port"]["allowed_address_pairs"],
        json!([{"ip_address": "10.0.0.7", "mac_address": mac}])
    );
}

#[tokio::test]
async fn invalid_address_pairs_are_400s() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let (net, _) = network(&c, "n", "10.0.0.0/24", json!({})).await;
    let r = post_port(&c, json!({"network_id": net})).await;
    let port = id(&r, "port");
    let too_many: Vec<Value> = (0..11)
        .map(|i| json!({"ip_address": format!("10.0.0.{}", 100 + i)}))
        .collect();
    let cases = [
        (json!([{"mac_address": "fa:16:3e:00:00:01"}]), "ip_address"),
        (
            json!([{"ip_address": "10.0.0.256"}]),
            "allowed_address_pairs[0].ip_address",
        ),
        (json!([{"ip_address": "10.0.0.1/24"}]), "host bits"),
        (json!([{"ip_address": "fd00::5"}]), "IPv6"),
        (
            json!([{"ip_address": "10.0.0.5", "mac_address": "01:00:5e:00:00:01"}]),
            "allowed_address_pairs[0].mac_address",
        ),
        (
            json!([{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.5"}]),
            "duplicate",
        ),
        (json!([{"ip_address": "10.0.0.5", "color": "red"}]), "color"),
        (json!("10.0.0.5"), "allowed_address_pairs"),
        (Value::Array(too_many), "maximum 10"),
    ];
    for (pairs, needle) in cases {
        let r = post_port(
            &c,
            json!({"network_id": net, "allowed_address_pairs": pairs}),
        )
        .await;
        assert_fault(&r, 400, needle);
        let r = put_port(&c, &port, json!({"allowed_address_pairs": pairs})).await;
        assert_fault(&r, 400, needle);
    }
}

#[tokio::test]
async fn only_the_network_owner_sets_port_security_and_pairs() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let r = post_network(&admin, json!({"name": "public", "shared": true})).await;
    let net = id(&r, "network");
    let r = post_subnet(&admin, json!({"network_id": net, "cidr": "192.168.0.0/24"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = post_port(
        &bob,
        json!({"network_id": net, "port_security_enabled": false}),
    )
    .await;
    assert_fault(&r, 403, "port security");
    let r = post_port(
        &bob,
        json!({"network_id": net, "allowed_address_pairs": [{"ip_address": "192.168.0.50"}]}),
    )
    .await;
    assert_fault(&r, 403, "address pairs");
    let r = post_port(&bob, json!({"network_id": net})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let port = id(&r, "port");
    let r = put_port(
        &bob,
        &port,
        json!({"allowed_address_pairs": [{"ip_address": "192.168.0.50"}]}),
    )
    .await;
    assert_fault(&r, 403, "address pairs");
    let r = put_port(&bob, &port, json!({"name": "mine"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn host_routes_round_trip_and_are_validated() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let r = post_network(&c, json!({"name": "n"})).await;
    let net = id(&r, "network");
    let routes = json!([
        {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"},
        {"destination": "0.0.0.0/0", "nexthop": "10.0.0.253"}
    ]);
    let r = post_subnet(
        &c,
        json!({"network_id": net, "cidr": "10.0.0.0/24", "host_routes": routes}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["subnet"]["host_routes"], routes);
    let sub = id(&r, "subnet");
    let r = c.get(&format!("/network/v2.0/subnets/{sub}")).await;
    assert_eq!(r.body["subnet"]["host_routes"], routes);

    let path = format!("/network/v2.0/subnets/{sub}");
    let one = json!([{"destination": "172.16.0.0/12", "nexthop": "10.0.0.1"}]);
    let r = c.put(&path, json!({"subnet": {"host_routes": one}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["subnet"]["host_routes"], one);
    // Other changes keep them.
    let r = c.put(&path, json!({"subnet": {"name": "renamed"}})).await;
    assert_eq!(r.body["subnet"]["host_routes"], one);
    let r = c.put(&path, json!({"subnet": {"host_routes": []}})).await;
    assert_eq!(r.body["subnet"]["host_routes"], json!([]));

    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"destination": format!("172.{i}.0.0/16"), "nexthop": "10.0.0.1"}))
        .collect();
    let cases = [
        (
            json!([{"destination": "192.168.0.1/16", "nexthop": "10.0.0.1"}]),
            "host_routes[0].destination",
        ),
        (
            json!([{"destination": "nowhere", "nexthop": "10.0.0.1"}]),
            "host_routes[0].destination",
        ),
        (
            json!([{"destination": "fd00::/64", "nexthop": "10.0.0.1"}]),
            "host_routes[0].destination",
        ),
        (
            json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.300"}]),
            "host_routes[0].nexthop",
        ),
        (json!([{"destination": "192.168.0.0/16"}]), "nexthop"),
        (
            json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.1", "metric": 1}]),
            "metric",
        ),
        (Value::Array(too_many), "maximum of 20"),
    ];
    for (routes, needle) in cases {
        let r = c
            .put(&path, json!({"subnet": {"host_routes": routes}}))
            .await;
        assert_fault(&r, 400, needle);
        let r = post_subnet(
            &c,
            json!({"network_id": net, "cidr": "10.1.0.0/24", "host_routes": routes}),
        )
        .await;
        assert_fault(&r, 400, needle);
    }
}

#[tokio::test]
async fn extensions_announce_the_data_plane_attributes() {
    let api = TestApi::start().await;
    let c = api.account("alpha", "alice", "member").await.client;
    let r = c.get("/network/v2.0/extensions").await;
    let aliases = aliases(&r);
    for want in [
        "provider",
        "port-security",
        "allowed-address-pairs",
        "net-mtu",
        "net-mtu-writable",
    ] {
        assert!(aliases.contains(&want), "{want} missing from {aliases:?}");
        let r = c.get(&format!("/network/v2.0/extensions/{want}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for absent in ["multi-provider", "extra_dhcp_opt", "segment"] {
        assert!(!aliases.contains(&absent), "{absent} listed");
    }
}

#[tokio::test]
async fn committed_changes_are_cast_to_the_conductors() {
    let bus = Arc::new(InProcBus::new());
    let db = TestDb::new(Backend::Sqlite).await;
    let api = TestApi::start_full(db, bus.clone(), |_| {}).await;
    let mut queue = ConductorQueue(bus.consume(CONDUCTOR_QUEUE).await.unwrap());
    let c = api.account("alpha", "alice", "member").await.client;

    // A rule names its group.
    let sg = security_group(&c, "web").await;
    queue.assert_quiet().await;
    let r = c
        .post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
                   "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let rule = id(&r, "security_group_rule");
    let (nets, groups, hosts) = queue.next_changed().await;
    assert_eq!((nets.len(), groups, hosts.len()), (0, vec![sg.clone()], 0));
    assert_eq!(
        c.delete(&format!("/network/v2.0/security-group-rules/{rule}"))
            .await
            .status,
        204
    );
    assert_eq!(queue.next_changed().await.1, [sg.as_str()]);

    // Networks and subnets name the network.
    let r = post_network(&c, json!({"name": "n"})).await;
    let net = id(&r, "network");
    queue.assert_quiet().await;
    let r = post_subnet(&c, json!({"network_id": net, "cidr": "10.0.0.0/24"})).await;
    let sub = id(&r, "subnet");
    assert_eq!(queue.next_changed().await.0, [net.as_str()]);
    let r = c
        .put(
            &format!("/network/v2.0/subnets/{sub}"),
            json!({"subnet": {"host_routes": [{"destination": "10.8.0.0/16",
                                               "nexthop": "10.0.0.9"}]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(queue.next_changed().await.0, [net.as_str()]);
    let r = put_network(&c, &net, json!({"mtu": 1400})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(queue.next_changed().await.0, [net.as_str()]);

    // A port's creation names its groups (their members changed); its
    // update names its network and its old and new groups; its deletion
    // also names the host it was bound to.
    let r = post_port(&c, json!({"network_id": net, "security_groups": [sg]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let port = id(&r, "port");
    assert_eq!(queue.next_changed().await.1, [sg.as_str()]);
    let other = security_group(&c, "db").await;
    let r = put_port(&c, &port, json!({"security_groups": [other]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (nets, groups, _) = queue.next_changed().await;
    assert_eq!(nets, [net.as_str()]);
    assert_eq!(
        groups.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([sg.clone(), other.clone()])
    );
    let store = &api.db.store;
    let mut bound = store
        .port_get(port.parse().unwrap(), &Scope::All)
        .await
        .unwrap();
    bound.binding_host = Some("host-a".to_owned());
    store.port_update(&bound).await.unwrap();
    assert_eq!(
        c.delete(&format!("/network/v2.0/ports/{port}"))
            .await
            .status,
        204
    );
    let (nets, groups, hosts) = queue.next_changed().await;
    assert_eq!(
        (nets, groups, hosts),
        (
            vec![net.clone()],
            vec![other.clone()],
            vec!["host-a".to_owned()]
        )
    );

    // Deleting a group names it and the groups whose rules named it.
    let r = c
        .post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
                   "remote_group_id": other}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(queue.next_changed().await.1, [sg.as_str()]);
    assert_eq!(
        c.delete(&format!("/network/v2.0/security-groups/{other}"))
            .await
            .status,
        204
    );
    let groups: BTreeSet<String> = queue.next_changed().await.1.into_iter().collect();
    assert_eq!(groups, BTreeSet::from([sg.clone(), other.clone()]));

    // A refused change casts nothing.
    let r = put_network(&c, &net, json!({"mtu": 9000})).await;
    assert_eq!(r.status, 400);
    queue.assert_quiet().await;
}

#[tokio::test]
async fn server_security_group_actions_are_cast() {
    let bus = Arc::new(InProcBus::new());
    let db = TestDb::new(Backend::Sqlite).await;
    let api = TestApi::start_full(db, bus.clone(), |_| {}).await;
    let alice = api.account("alpha", "alice", "member").await;
    let c = &alice.client;
    let image = cloud_test_utils::upload_image(c, "img", "raw", vec![7u8; 64], json!({})).await;
    let r = cloud_test_utils::boot(c, "vm", "1", &image, json!({})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_owned();
    // Only now: the build was cast before.
    let mut queue = ConductorQueue(bus.consume(CONDUCTOR_QUEUE).await.unwrap());
    let d = tokio::time::timeout(Duration::from_secs(5), queue.0.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.envelope.kind, "build_instance");
    d.ack().await.unwrap();

    let (net, _) = network(c, "n", "10.0.0.0/24", json!({})).await;
    queue.next_changed().await; // the subnet
    let r = post_port(
        c,
        json!({"network_id": net, "device_id": server, "device_owner": "compute:nova"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let port = id(&r, "port");
    queue.next_changed().await; // the port joined the default group
    let sg = security_group(c, "web").await;

    let action = format!("/compute/v2.1/servers/{server}/action");
    let r = c
        .post(&action, json!({"addSecurityGroup": {"name": "web"}}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let (nets, groups, _) = queue.next_changed().await;
    assert_eq!((nets, groups), (vec![net.clone()], vec![sg.clone()]));
    let r = c
        .post(&action, json!({"removeSecurityGroup": {"name": "web"}}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(queue.next_changed().await.1, [sg.as_str()]);

    // A port that cannot enforce groups makes adding one a 400 (Nova's
    // SecurityGroupCannotBeApplied), and nothing is cast.
    let r = put_port(
        c,
        &port,
        json!({"port_security_enabled": false, "security_groups": []}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    queue.next_changed().await;
    let r = c
        .post(&action, json!({"addSecurityGroup": {"name": "web"}}))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_message().contains("port_security_enabled"),
        "{:?}",
        r.body
    );
    queue.assert_quiet().await;
}
