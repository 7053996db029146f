//! Who may put a port on which server, and which addresses a new server
//! may ask for, over real HTTP (issue 16, items 3 and 4): a port names as
//! its device only a server its project sees (admins: any), and a fixed
//! IP in `POST /servers` gets the checks a port create with that address
//! gets (the network's owner only, not the gateway, network or broadcast
//! address).

use cloud_test_utils::{Client, Reply, TestApi, record_active_image};
use serde_json::{Value, json};
use support::{assert_error, id, network};

mod support;

/// `POST /servers` with `networks`.
async fn boot(c: &Client, image: &str, networks: Value) -> Reply {
    c.post(
        "/compute/v2.1/servers",
        json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
            "networks": networks}}),
    )
    .await
}

async fn put_device(c: &Client, port: &str, device: &str) -> Reply {
    c.put(
        &format!("/network/v2.0/ports/{port}"),
        json!({"port": {"device_id": device, "device_owner": "compute:nova"}}),
    )
    .await
}

#[tokio::test]
async fn ports_attach_only_to_servers_their_project_sees() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let image = record_active_image(&api.db.store, "alpha", "img")
        .await
        .unwrap()
        .to_string();
    let r = boot(&alice, &image, json!("none")).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let alices = id(&r, "server");
    let r = boot(&bob, &image, json!("none")).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let bobs = id(&r, "server");
    let (net, _) = network(&bob, "b-net", "10.1.0.0/24", json!({})).await;
    let r = bob
        .post("/network/v2.0/ports", json!({"port": {"network_id": net}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let port = id(&r, "port");

    // Another project's server: refused, and so is a server nobody has
    // (one answer for both).
    let r = put_device(&bob, &port, &alices).await;
    assert_error(&r, 403, &format!("device_id {alices} is not owned"));
    let nobody = uuid_like();
    let r = put_device(&bob, &port, &nobody).await;
    assert_error(&r, 403, "is not owned by your project");
    let r = bob
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net, "device_id": alices}}),
        )
        .await;
    assert_error(&r, 403, "is not owned by your project");
    let r = alice
        .get(&format!("/network/v2.0/ports?device_id={alices}"))
        .await;
    assert_eq!(r.body["ports"], json!([]));
    let r = admin
        .get(&format!("/network/v2.0/ports?device_id={alices}"))
        .await;
    assert_eq!(r.body["ports"], json!([]));

    // Its own server: fine, and detaching too.
    let r = put_device(&bob, &port, &bobs).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port"]["device_id"], bobs.as_str());
    let r = put_device(&bob, &port, "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port"]["device_id"], "");
    // Admins may name any server.
    let r = put_device(&admin, &port, &alices).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["port"]["device_id"], alices.as_str());
}

fn uuid_like() -> String {
    "0b5c7d3e-1f2a-4b6c-8d9e-0a1b2c3d4e5f".to_owned()
}

#[tokio::test]
async fn server_fixed_ips_get_the_checks_of_a_port() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let alice = api.account("alpha", "alice", "member").await.client;
    let bob = api.account("beta", "bob", "member").await.client;
    let image = record_active_image(&api.db.store, "alpha", "img")
        .await
        .unwrap()
        .to_string();
    let (shared, _) = network(&admin, "shared", "10.20.0.0/24", json!({"shared": true})).await;
    let (own, _) = network(&bob, "own", "10.30.0.0/24", json!({})).await;

    // An address on another project's shared network is its owner's to
    // choose, through a server as through a port.
    let want = json!([{"uuid": shared, "fixed_ip": "10.20.0.77"}]);
    let r = boot(&bob, &image, want.clone()).await;
    assert_error(&r, 403, "belongs to another project");
    let r = bob
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": shared, "fixed_ips": [{"ip_address": "10.20.0.77"}]}}),
        )
        .await;
    assert_error(&r, 403, "belongs to another project");
    let r = boot(&bob, &image, json!([{"uuid": shared}])).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = boot(&admin, &image, want).await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    // The subnet's own addresses are a 400 at once.
    for (ip, what) in [
        ("10.30.0.1", "the gateway address"),
        ("10.30.0.0", "the network address"),
        ("10.30.0.255", "the broadcast address"),
    ] {
        let r = boot(&bob, &image, json!([{"uuid": own, "fixed_ip": ip}])).await;
        assert_error(&r, 400, what);
    }
    let r = boot(
        &bob,
        &image,
        json!([{"uuid": own, "fixed_ip": "10.40.0.5"}]),
    )
    .await;
    assert_error(&r, 400, "is not in any subnet");
    let r = boot(
        &bob,
        &image,
        json!([{"uuid": own, "fixed_ip": "10.30.0.77"}]),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    // Another project's private network stays unknown.
    let r = boot(
        &alice,
        &image,
        json!([{"uuid": own, "fixed_ip": "10.30.0.78"}]),
    )
    .await;
    assert_error(&r, 400, "could not be found");
}
