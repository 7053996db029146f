//! A server's life through the whole control plane: boot, stop, start,
//! reboots, delete; on the in-process bus + SQLite and on PostgreSQL.

use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_store::Backend;
use cloud_test_utils::{ControlPlane, PlaneOptions, boot, create_network, wait_for_status};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn lifecycle(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 2, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = &admin.client;

    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap()
            .ends_with(r.body["server"]["id"].as_str().unwrap())
    );
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(s["OS-EXT-STS:vm_state"], "active");
    let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    assert!(plane.driver(&host).vm_count() == 1);

    // Stop -> SHUTOFF; stopping again conflicts and says why.
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"os-stop": null}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["SHUTOFF"], T).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    assert!(s.get("progress").is_none(), "no progress in SHUTOFF");
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"os-stop": null}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.error_message().contains("vm_state stopped"),
        "{}",
        r.error_message()
    );

    let r = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"os-start": null}),
        )
        .await;
    assert_eq!(r.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    for kind in ["SOFT", "HARD"] {
        let r = c
            .post(
                &format!("/compute/v2.1/servers/{id}/action"),
                json!({"reboot": {"type": kind}}),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let s = wait_for_status(c, &id, &["ACTIVE"], T).await;
        assert_eq!(s["OS-EXT-STS:task_state"], serde_json::Value::Null);
    }
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let names: Vec<&str> = actions.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in ["create", "stop", "start", "reboot"] {
        assert!(names.contains(&a), "{names:?}");
    }

    let console = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"os-getConsoleOutput": {"length": 2}}),
        )
        .await;
    assert_eq!(console.status, 200, "{}", console.body);
    assert_eq!(
        console.body["output"].as_str().unwrap().split('\n').count(),
        2
    );

    // Delete releases every allocation.
    let r = c.delete(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(r.status, 204);
    wait_for_status(c, &id, &["DELETED"], T).await;
    let node = plane.api.db.store.compute_node(&host).await.unwrap();
    assert_eq!(node.vcpu.used, 0);
    assert_eq!(node.memory_mb.used, 0);
    let inst_id = cloud_model::InstanceId::parse(&id).unwrap();
    assert!(
        plane
            .api
            .db
            .store
            .allocations_of(inst_id)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(plane.driver(&host).vm_count(), 0);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_rabbitmq_postgres() {
    lifecycle(Backend::Postgres).await;
}

async fn listing_metadata_and_details(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let demo = plane.api.account("demo", "demo", "member").await;
    let c = &demo.client;
    let mut ids = Vec::new();
    for name in ["web-1", "web-2", "db-1"] {
        let r = boot(c, name, "1", &image, json!({"metadata": {"role": name}})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        wait_for_status(c, &id, &["ACTIVE"], T).await;
        ids.push(id);
    }
    // Name is a regex; newest first; paging with next links.
    let r = c.get("/compute/v2.1/servers/detail?name=^web").await;
    let names: Vec<&str> = r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-2", "web-1"]);
    let page = c.get("/compute/v2.1/servers?limit=2").await;
    assert_eq!(page.body["servers"].as_array().unwrap().len(), 2);
    let next = page.body["servers_links"][0]["href"].as_str().unwrap();
    let rest = c.get(&next[next.find("/compute").unwrap()..]).await;
    assert_eq!(rest.body["servers"][0]["name"], "web-1");
    assert!(rest.body.get("servers_links").is_none());
    let r = c.get("/compute/v2.1/servers/detail?status=active").await;
    assert_eq!(r.body["servers"].as_array().unwrap().len(), 3);
    // Non-admins see no host attributes; the admin sees them.
    let s = c.get(&format!("/compute/v2.1/servers/{}", ids[0])).await;
    assert!(s.body["server"].get("OS-EXT-SRV-ATTR:host").is_none());
    assert!(
        admin
            .client
            .get(&format!("/compute/v2.1/servers/{}", ids[0]))
            .await
            .body["server"]["OS-EXT-SRV-ATTR:host"]
            .is_string()
    );
    // Another project's server is a 404.
    assert_eq!(
        admin.client.get("/compute/v2.1/servers").await.body["servers"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let other = plane.api.account("other", "mallory", "member").await;
    assert_eq!(
        other
            .client
            .get(&format!("/compute/v2.1/servers/{}", ids[0]))
            .await
            .status,
        404
    );
    assert_eq!(
        other
            .client
            .delete(&format!("/compute/v2.1/servers/{}", ids[0]))
            .await
            .status,
        404
    );
    // Rename: the answer is the basic view.
    let r = c
        .put(
            &format!("/compute/v2.1/servers/{}", ids[2]),
            json!({"server": {"name": "db-renamed"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["server"]["name"], "db-renamed");
    assert!(r.body["server"].get("OS-EXT-STS:vm_state").is_none());
    // Metadata.
    let m = format!("/compute/v2.1/servers/{}/metadata", ids[0]);
    assert_eq!(c.get(&m).await.body["metadata"]["role"], "web-1");
    let r = c.post(&m, json!({"metadata": {"tier": "front"}})).await;
    assert_eq!(
        r.body["metadata"],
        json!({"role": "web-1", "tier": "front"})
    );
    let r = c
        .put(&format!("{m}/tier"), json!({"meta": {"other": "x"}}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(c.delete(&format!("{m}/tier")).await.status, 204);
    assert_eq!(c.get(&format!("{m}/tier")).await.status, 404);
    // Tags.
    let t = format!("/compute/v2.1/servers/{}/tags", ids[0]);
    assert_eq!(c.put(&format!("{t}/blue"), json!(null)).await.status, 201);
    assert_eq!(c.get(&t).await.body["tags"], json!(["blue"]));
    assert_eq!(c.get(&format!("{t}/red")).await.status, 404);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_metadata_and_details_sqlite() {
    listing_metadata_and_details(Backend::Sqlite).await;
}

/// Security groups added to and removed from a running server reach its
/// ports, as `addSecurityGroup` / `removeSecurityGroup` do in Nova.
async fn security_groups_of_a_running_server(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = &admin.client;
    let (net, _) = create_network(c, "sg-net", "10.9.0.0/24", json!({})).await;
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let web = r.body["security_group"]["id"].as_str().unwrap().to_owned();
    let r = boot(
        c,
        "sg-vm",
        "1",
        &image.to_string(),
        json!({"networks": [{"uuid": net}]}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");

    let action = |body: serde_json::Value| {
        let id = id.clone();
        async move {
            c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
                .await
        }
    };
    let port_groups = || async {
        let r = c.get(&format!("/network/v2.0/ports?device_id={id}")).await;
        assert_eq!(r.body["ports"].as_array().unwrap().len(), 1, "{}", r.body);
        r.body["ports"][0]["security_groups"].clone()
    };
    let server_groups = || async {
        let r = c.get(&format!("/compute/v2.1/servers/{id}")).await;
        r.body["server"]["security_groups"].clone()
    };
    assert!(
        !port_groups()
            .await
            .as_array()
            .unwrap()
            .contains(&json!(web))
    );

    let r = action(json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        port_groups()
            .await
            .as_array()
            .unwrap()
            .contains(&json!(web))
    );
    assert_eq!(
        server_groups().await,
        json!([{"name": "default"}, {"name": "web"}])
    );
    // Already there: 400 that says so. Unknown group: 404.
    let r = action(json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_message().contains("already associated"),
        "{}",
        r.body
    );
    let r = action(json!({"addSecurityGroup": {"name": "nope"}})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error_message().contains("nope"), "{}", r.body);
    let r = action(json!({"addSecurityGroup": {}})).await;
    assert_eq!(r.status, 400, "{}", r.body);

    let r = action(json!({"removeSecurityGroup": {"name": web}})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        !port_groups()
            .await
            .as_array()
            .unwrap()
            .contains(&json!(web))
    );
    assert_eq!(server_groups().await, json!([{"name": "default"}]));
    let r = action(json!({"removeSecurityGroup": {"name": "web"}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error_message().contains("not associated"), "{}", r.body);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_groups_of_a_running_server_sqlite() {
    security_groups_of_a_running_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_groups_of_a_running_server_rabbitmq_postgres() {
    security_groups_of_a_running_server(Backend::Postgres).await;
}

/// A host whose data plane cannot be set up fails the build with a fault
/// that says why (not only that the ports never arrived), and the fake
/// host recorded what it was asked to carry once it works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_cannot_set_up_its_network_says_why() {
    let mut opts = PlaneOptions::hosts(Backend::Sqlite, 1, FakeConfig::default());
    opts.agent = |a| {
        a.heartbeat_secs = 0.5;
        a.power_sync_secs = 1.0;
        a.ports_ready_timeout_secs = 2.0;
    };
    let plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = &admin.client;
    let (net, _) = create_network(c, "n", "10.9.0.0/24", json!({})).await;
    let driver = plane.driver("host-1");
    driver.fail_network_applies(Some("nft: Operation not supported"));
    let boot_on_net = |name: &'static str| {
        let image = image.to_string();
        let net = net.clone();
        async move {
            let r = boot(c, name, "1", &image, json!({"networks": [{"uuid": net}]})).await;
            assert_eq!(r.status, 202, "{}", r.body);
            r.body["server"]["id"].as_str().unwrap().to_owned()
        }
    };
    let id = boot_on_net("no-net").await;
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ERROR", "{s}");
    let fault = s["fault"]["message"].as_str().unwrap_or_default();
    assert!(
        fault.contains("does not carry port") && fault.contains("nft: Operation not supported"),
        "{s}"
    );
    driver.fail_network_applies(None);
    let id = boot_on_net("with-net").await;
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let (state, applies) = driver.network();
    assert!(applies > 0);
    assert_eq!(state.ports.len(), 1, "{state:?}");
    assert_eq!(state.networks[0].id, net);
    plane.shutdown().await;
}
