//! `GET /servers/{id}/os-interface[/{port_id}]` through the whole control
//! plane (issue 13): a server on two networks lists both of its ports in
//! Nova's `interfaceAttachments` shape with the addresses Neutron gave
//! them; one is shown by its port id; a port that is not the server's and
//! another project's server are 404s.

use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, boot, record_active_image, wait_for_status,
};
use serde_json::{Value, json};
use std::time::Duration;
use support::{assert_error, id, network, post_port};

mod support;

async fn interfaces(c: &Client, server: &str) -> (u16, Value) {
    let r = c
        .get(&format!("/compute/v2.1/servers/{server}/os-interface"))
        .await;
    (r.status, r.body)
}

/// What Nova shows for `port` (a Neutron port body).
fn expected(port: &Value) -> Value {
    let fixed: Vec<Value> = port["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| json!({"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}))
        .collect();
    json!({
        "port_state": port["status"],
        "fixed_ips": fixed,
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port["mac_address"],
    })
}

/// The server's ports once the host has bound them all (ACTIVE), so their
/// state is settled when compared.
async fn active_ports(c: &Client, server: &str) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let r = c
            .get(&format!("/network/v2.0/ports?device_id={server}"))
            .await;
        let ports = r.body["ports"].as_array().unwrap().clone();
        if !ports.is_empty() && ports.iter().all(|p| p["status"] == "ACTIVE") {
            return ports;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ports not ACTIVE: {ports:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn list_and_show(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, Default::default())).await;
    let admin = plane.api.admin().await;
    let c = &admin.client;
    let (web, _) = network(c, "web", "10.0.0.0/24", json!({})).await;
    let (db, _) = network(c, "db", "10.0.1.0/24", json!({})).await;
    let image = record_active_image(&plane.api.db.store, &admin.project_id, "img")
        .await
        .unwrap();
    let r = boot(
        c,
        "vm1",
        "1",
        &image.to_string(),
        json!({"networks": [{"uuid": web}, {"uuid": db}]}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &server, &["ACTIVE", "ERROR"], Duration::from_secs(60)).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");

    let ports = active_ports(c, &server).await;
    assert_eq!(ports.len(), 2, "{ports:?}");

    // The list: both ports, as Nova renders them.
    let (status, body) = interfaces(c, &server).await;
    assert_eq!(status, 200, "{body}");
    let mut got = body["interfaceAttachments"].as_array().unwrap().clone();
    let mut want: Vec<Value> = ports.iter().map(expected).collect();
    let key = |v: &Value| v["port_id"].as_str().unwrap().to_owned();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
    let nets: Vec<&str> = got.iter().map(|i| i["net_id"].as_str().unwrap()).collect();
    assert!(
        nets.contains(&web.as_str()) && nets.contains(&db.as_str()),
        "{nets:?}"
    );
    assert!(got.iter().all(|i| {
        i["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap()
            .starts_with("10.0.")
    }));

    // One of them by its port id.
    let port = ports[0]["id"].as_str().unwrap();
    let r = c
        .get(&format!(
            "/compute/v2.1/servers/{server}/os-interface/{port}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["interfaceAttachment"], expected(&ports[0]));

    // A port of the same network that is not the server's, and no port.
    let r = post_port(c, json!({"network_id": web})).await;
    let loose = id(&r, "port");
    for other in [loose.as_str(), "not-a-port"] {
        let r = c
            .get(&format!(
                "/compute/v2.1/servers/{server}/os-interface/{other}"
            ))
            .await;
        assert_error(&r, 404, &format!("is not attached to port {other}"));
    }

    // Another project's user does not see the server or its interfaces.
    let mallory = plane.api.account("other", "mallory", "member").await;
    let (status, body) = interfaces(&mallory.client, &server).await;
    assert_eq!(status, 404, "{body}");
    let r = mallory
        .client
        .get(&format!(
            "/compute/v2.1/servers/{server}/os-interface/{port}"
        ))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interfaces_sqlite() {
    list_and_show(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interfaces_rabbitmq_postgres() {
    list_and_show(Backend::Postgres).await;
}
