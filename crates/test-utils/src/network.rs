//! Network API steps that scenarios of several test crates share: a
//! network with a subnet, an admin's flat external network, a router
//! between it and a subnet, a network's first subnet.

use crate::Client;
use serde_json::{Value, json};

/// Creates, with `c`, the network `name` with the `extra` attributes
/// (`json!({})` for none) and the subnet `{name}-subnet` on `cidr`;
/// returns (network, subnet) ids.
pub async fn create_network(c: &Client, name: &str, cidr: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = c
        .post("/network/v2.0/networks", json!({ "network": body }))
        .await;
    assert_eq!(r.status, 201, "network create: {}", r.body);
    let net = r.body["network"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no network.id in {}", r.body))
        .to_owned();
    let r = c
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4,
                "name": format!("{name}-subnet")}}),
        )
        .await;
    assert_eq!(r.status, 201, "subnet create: {}", r.body);
    let subnet = r.body["subnet"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no subnet.id in {}", r.body))
        .to_owned();
    (net, subnet)
}

/// Creates, with `admin` (an admin's client), the external network `name`,
/// flat on `physnet`, with the subnet `{name}-subnet` on `cidr` without
/// DHCP and with the `subnet` attributes (gateway, pools: `json!({})` for
/// the defaults); returns the network's id.
pub async fn create_external_network(
    admin: &Client,
    name: &str,
    physnet: &str,
    cidr: &str,
    subnet: Value,
) -> String {
    let r = admin
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": name, "router:external": true,
                "provider:network_type": "flat", "provider:physical_network": physnet}}),
        )
        .await;
    assert_eq!(r.status, 201, "external network: {}", r.body);
    let id = r.body["network"]["id"].as_str().unwrap().to_owned();
    let mut body = json!({"name": format!("{name}-subnet"), "network_id": id, "cidr": cidr,
        "ip_version": 4, "enable_dhcp": false});
    if let (Some(b), Some(extra)) = (body.as_object_mut(), subnet.as_object()) {
        b.extend(extra.clone());
    }
    let r = admin
        .post("/network/v2.0/subnets", json!({ "subnet": body }))
        .await;
    assert_eq!(r.status, 201, "external subnet: {}", r.body);
    id
}

/// Creates a router `r` of `c`'s project with a gateway on `external` and
/// an interface on `subnet`; returns its id.
pub async fn create_router(c: &Client, external: &str, subnet: &str) -> String {
    let r = c
        .post(
            "/network/v2.0/routers",
            json!({"router": {"name": "r", "external_gateway_info": {"network_id": external}}}),
        )
        .await;
    assert_eq!(r.status, 201, "router create: {}", r.body);
    let router = r.body["router"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no router.id in {}", r.body))
        .to_owned();
    let r = c
        .put(
            &format!("/network/v2.0/routers/{router}/add_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_eq!(r.status, 200, "add interface: {}", r.body);
    router
}

/// The id of the (first) subnet of `network`, as `c` sees it.
pub async fn first_subnet(c: &Client, network: &str) -> String {
    let r = c
        .get(&format!("/network/v2.0/subnets?network_id={network}"))
        .await;
    assert_eq!(r.status, 200, "subnets: {}", r.body);
    r.body["subnets"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no subnet on {network}: {}", r.body))
        .to_owned()
}
