//! The `openstack` CLI's layer 3, as a user reaches a server from
//! outside: a router with a gateway on the external network `public` and
//! an interface on the server's subnet, a floating IP added to the server
//! and shown in its addresses, then everything taken apart again; and a
//! member of another project taking a floating IP from `public` by name.
//!
//! `public` is the external network `cloud-aio` creates; on the
//! multi-process layout the admin creates it first, as an operator
//! would: a flat provider network on the physical network `public`
//! (which the API's configuration knows), routed by the compute host
//! that has the network role (see [`crate::cloud`]).

use super::{assert_contains, column, one, with};
use crate::cloud::{Cloud, Layout};
use crate::tools::{DEMO_CLOUD, Tools};
use serde_json::{Value, json};

/// The external network's name.
pub const PUBLIC: &str = "public";

/// Its range, as `cloud-aio` makes it.
const PUBLIC_PREFIX: &str = "172.24.4.";

/// The external network, made by the admin where the layout has none;
/// its `network show`.
pub async fn ensure_public(cloud: &Cloud, t: &Tools) -> Value {
    if cloud.layout == Layout::Processes {
        let net = t
            .osc_json(&[
                "network",
                "create",
                "--external",
                "--provider-network-type",
                "flat",
                "--provider-physical-network",
                "public",
                PUBLIC,
            ])
            .await;
        assert_eq!(net["router:external"], true, "{net}");
        assert_eq!(net["provider:network_type"], "flat", "{net}");
        let sub = t
            .osc_json(&[
                "subnet",
                "create",
                "--network",
                PUBLIC,
                "--subnet-range",
                "172.24.4.0/24",
                "--gateway",
                "172.24.4.1",
                "--allocation-pool",
                "start=172.24.4.10,end=172.24.4.250",
                "--no-dhcp",
                "public-subnet",
            ])
            .await;
        assert_eq!(sub["enable_dhcp"], false, "{sub}");
    }
    let net = t.osc_json(&["network", "show", PUBLIC]).await;
    assert_eq!(net["router:external"], true, "{net}");
    assert_eq!(net["shared"], false, "{net}");
    net
}

/// Removes what [`ensure_public`] made.
pub async fn remove_public(cloud: &Cloud, t: &Tools) {
    if cloud.layout != Layout::Processes {
        return;
    }
    t.osc(&["subnet", "delete", "public-subnet"]).await;
    t.osc(&["network", "delete", PUBLIC]).await;
    let nets = t.osc_json(&["network", "list", "--external"]).await;
    assert!(with(&nets, "Name", PUBLIC).is_empty(), "{nets}");
}

/// The router, the floating IP on `server` (ACTIVE, with one address on
/// `network`'s subnet `subnet`), and their removal.
pub async fn run(t: &Tools, public: &Value, server: &str, network: &str, subnet: &str) {
    let public_id = public["id"].as_str().unwrap();
    let r = t.osc_json(&["router", "create", "c-router"]).await;
    assert_eq!(r["name"], "c-router", "{r}");
    assert_eq!(r["status"], "ACTIVE", "{r}");
    assert_eq!(r["external_gateway_info"], Value::Null, "{r}");
    let router_id = r["id"].as_str().unwrap().to_owned();

    t.osc(&["router", "set", "--external-gateway", PUBLIC, "c-router"])
        .await;
    let r = t.osc_json(&["router", "show", "c-router"]).await;
    let gw = &r["external_gateway_info"];
    assert_eq!(gw["network_id"], public_id, "{r}");
    assert_eq!(gw["enable_snat"], true, "{r}");
    let gw_ip = gw["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap_or_default();
    assert!(gw_ip.starts_with(PUBLIC_PREFIX), "gateway address of {r}");

    t.osc(&["router", "add", "subnet", "c-router", subnet])
        .await;
    let r = t.osc_json(&["router", "show", "c-router"]).await;
    let sub = t.osc_json(&["subnet", "show", subnet]).await;
    let legs = &r["interfaces_info"];
    assert_eq!(legs.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(legs[0]["subnet_id"], sub["id"], "{r}");
    assert_eq!(legs[0]["ip_address"], sub["gateway_ip"], "{r}");
    // Its interface is the router's, not the port API's to delete.
    let leg_port = legs[0]["port_id"].as_str().unwrap().to_owned();
    let err = t.osc_fails(&["port", "delete", &leg_port]).await;
    assert_contains(&err, "cannot be deleted directly via the port API");

    let fip = t.osc_json(&["floating", "ip", "create", PUBLIC]).await;
    assert_eq!(fip["floating_network_id"], public_id, "{fip}");
    assert_eq!(fip["port_id"], Value::Null, "{fip}");
    assert_eq!(fip["status"], "DOWN", "{fip}");
    let address = fip["floating_ip_address"].as_str().unwrap().to_owned();
    assert!(address.starts_with(PUBLIC_PREFIX), "{fip}");
    assert_ne!(address, gw_ip);

    t.osc(&["server", "add", "floating", "ip", server, &address])
        .await;
    let s = t.osc_json(&["server", "show", server]).await;
    let shown: Vec<&str> = s["addresses"][network]
        .as_array()
        .unwrap_or_else(|| panic!("no {network} addresses in {s}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(shown.len(), 2, "{s}");
    assert_eq!(shown[1], address, "{s}");
    let fixed = shown[0].to_owned();
    let port = t
        .osc_json(&["port", "list", "--server", server, "-c", "ID"])
        .await;
    let port_id = port[0]["ID"].as_str().unwrap().to_owned();

    let fips = t.osc_json(&["floating", "ip", "list"]).await;
    let row = one(&fips, "Floating IP Address", &address);
    assert_eq!(row["Fixed IP Address"], fixed.as_str(), "{fips}");
    assert_eq!(row["Port"], port_id.as_str(), "{fips}");
    assert_eq!(row["Floating Network"], public_id, "{fips}");
    let shown = t.osc_json(&["floating", "ip", "show", &address]).await;
    assert_eq!(shown["router_id"], router_id.as_str(), "{shown}");
    assert_eq!(shown["status"], "ACTIVE", "{shown}");

    t.osc(&["server", "remove", "floating", "ip", server, &address])
        .await;
    let shown = t.osc_json(&["floating", "ip", "show", &address]).await;
    assert_eq!(shown["port_id"], Value::Null, "{shown}");
    assert_eq!(shown["fixed_ip_address"], Value::Null, "{shown}");
    let s = t.osc_json(&["server", "show", server]).await;
    assert_eq!(s["addresses"][network], json!([fixed]), "{s}");

    t.osc(&["floating", "ip", "delete", &address]).await;
    let fips = t.osc_json(&["floating", "ip", "list"]).await;
    assert!(
        with(&fips, "Floating IP Address", &address).is_empty(),
        "{fips}"
    );
    t.osc(&["router", "remove", "subnet", "c-router", subnet])
        .await;
    let r = t.osc_json(&["router", "show", "c-router"]).await;
    assert_eq!(r["interfaces_info"], json!([]), "{r}");
    t.osc(&["router", "delete", "c-router"]).await;
    let routers = t.osc_json(&["router", "list"]).await;
    assert!(with(&routers, "Name", "c-router").is_empty(), "{routers}");
}

/// A member of another project (the [`DEMO_CLOUD`] user) sees `public`,
/// takes a floating IP from it by name and gives it back; it plugs no
/// port of its own into it.
pub async fn member(t: &Tools, public: &Value) {
    fn demo<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--os-cloud", DEMO_CLOUD];
        all.extend_from_slice(args);
        all
    }
    let nets = t.osc_json(&demo(&["network", "list", "--external"])).await;
    assert_eq!(one(&nets, "Name", PUBLIC)["ID"], public["id"], "{nets}");
    let fip = t
        .osc_json(&demo(&["floating", "ip", "create", PUBLIC]))
        .await;
    assert_eq!(fip["floating_network_id"], public["id"], "{fip}");
    let address = fip["floating_ip_address"].as_str().unwrap().to_owned();
    assert!(address.starts_with(PUBLIC_PREFIX), "{fip}");
    let fips = t.osc_json(&demo(&["floating", "ip", "list"])).await;
    assert_eq!(column(&fips, "Floating IP Address"), vec![address.as_str()]);
    let err = t
        .osc_fails(&demo(&["port", "create", "--network", PUBLIC, "demo-port"]))
        .await;
    assert_contains(&err, "403");
    t.osc(&demo(&["floating", "ip", "delete", &address])).await;
    let fips = t.osc_json(&demo(&["floating", "ip", "list"])).await;
    assert_eq!(fips, json!([]));
}
