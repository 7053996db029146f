//! The `rebuild` server action through the real HTTP API, the conductor
//! and fake hosts, on both backends (issue 13): a fresh guest from the
//! (new) image with the new name and metadata, the same id, ports and
//! addresses; Nova's states, 400s and 409s; a stopped server stays
//! stopped; a failed rebuild is an ERROR with a fault, and can be rebuilt.

use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, Reply, boot, create_network, wait_for_status,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

async fn show(c: &Client, id: &str) -> Value {
    c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone()
}

/// Waits until the server's task is over; it must then be in `status`
/// at once (not only after a power sync corrected it).
async fn settled(c: &Client, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let s = show(c, id).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            assert_eq!(s["status"], status, "{s}");
            return s;
        }
        assert!(Instant::now() < deadline, "still a task: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The port ids of the server's interfaces.
async fn port_ids(c: &Client, id: &str) -> Vec<String> {
    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-interface"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut ids: Vec<String> = r.body["interfaceAttachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The events of the server's newest `rebuild` action.
async fn rebuild_events(c: &Client, id: &str) -> Vec<Value> {
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let request_id = actions.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "rebuild")
        .unwrap_or_else(|| panic!("a rebuild action: {}", actions.body))["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = c
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{request_id}"
        ))
        .await;
    detail.body["instanceAction"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn succeeded(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e["event"] == "compute_rebuild" && e["result"] == "Success")
}

async fn rebuild_keeps_the_server(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let first = active_image(store, &admin.project_id).await;
    let second = active_image(store, &admin.project_id).await;
    let demo = plane.api.account("demo", "demo", "member").await;
    let c = &demo.client;
    let (net, _) = create_network(c, "rebuild-net", "10.9.0.0/24", json!({})).await;
    let r = boot(
        c,
        "vm1",
        "1",
        &first.to_string(),
        json!({"networks": [{"uuid": net}], "metadata": {"old": "1"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let before = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(before["status"], "ACTIVE", "{before}");
    let ports = port_ids(c, &id).await;
    assert_eq!(ports.len(), 1);
    let host = show(&admin.client, &id).await["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_owned();
    let driver = plane.driver(&host);
    let vm = InstanceId::parse(&id).unwrap();

    // Bad requests are 400s that change nothing.
    let missing = InstanceId::new().to_string();
    for (body, says) in [
        (
            json!({"rebuild": {"imageRef": missing}}),
            "could not be found",
        ),
        (json!({"rebuild": {}}), "imageRef"),
        (
            json!({"rebuild": {"imageRef": "not-an-id"}}),
            "not an image id",
        ),
        (
            json!({"rebuild": {"imageRef": second.to_string(), "user_data": "eA=="}}),
            "requires microversion 2.57",
        ),
        (
            json!({"rebuild": {"imageRef": second.to_string(), "key_name": "k"}}),
            "requires microversion 2.54",
        ),
        (
            json!({"rebuild": {"imageRef": second.to_string(), "name": " "}}),
            "rebuild.name",
        ),
        (
            json!({"rebuild": {"imageRef": second.to_string(), "metadata": {"k": 1}}}),
            "rebuild.metadata",
        ),
        (
            json!({"rebuild": {"imageRef": second.to_string(), "colour": "red"}}),
            "'colour' was unexpected",
        ),
    ] {
        let r = act(c, &id, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.error_message().contains(says), "{body}: {}", r.body);
    }
    let s = show(c, &id).await;
    assert_eq!(s["name"], "vm1");
    assert_eq!(s["image"]["id"], first.to_string());
    assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);

    // The rebuild: 202 with the server (REBUILD) and a generated password.
    driver.set_spawn_delay(Some(Duration::from_millis(1500)));
    let r = act(
        c,
        &id,
        json!({"rebuild": {"imageRef": second.to_string(), "name": "vm1-new",
                           "metadata": {"new": "2"}}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let answer = &r.body["server"];
    assert_eq!(answer["id"], id);
    assert_eq!(answer["status"], "REBUILD", "{answer}");
    assert_eq!(answer["name"], "vm1-new");
    assert_eq!(answer["image"]["id"], second.to_string());
    assert!(
        answer["adminPass"].as_str().is_some_and(|p| p.len() >= 8),
        "{answer}"
    );
    let during = show(c, &id).await;
    assert_eq!(during["status"], "REBUILD", "{during}");
    assert_eq!(during["OS-EXT-STS:task_state"], "rebuilding");
    // Nothing else may start meanwhile.
    let again = act(c, &id, json!({"rebuild": {"imageRef": first.to_string()}})).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.error_message().contains("task_state rebuilding"),
        "{}",
        again.body
    );
    let after = settled(c, &id, "ACTIVE").await;
    driver.set_spawn_delay(None);
    assert_eq!(after["id"], id);
    assert_eq!(after["name"], "vm1-new");
    assert_eq!(after["image"]["id"], second.to_string());
    assert_eq!(after["metadata"], json!({"new": "2"}));
    assert_eq!(after["addresses"], before["addresses"], "{after}");
    assert_eq!(after["OS-EXT-STS:power_state"], 1);
    assert!(after.get("adminPass").is_none(), "never shown again");
    assert_eq!(port_ids(c, &id).await, ports);
    assert!(succeeded(&rebuild_events(c, &id).await));
    // A fresh guest: defined again under its new name, booted once.
    let console = driver.console_output(vm, 1 << 20).await.unwrap();
    assert!(console.contains("defining vm1-new"), "{console}");
    assert_eq!(console.matches("login: booted").count(), 1, "{console}");

    // A given adminPass is answered back; nothing else changes.
    let r = act(
        c,
        &id,
        json!({"rebuild": {"imageRef": second.to_string(), "adminPass": "s3cret-pass"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["server"]["adminPass"], "s3cret-pass");
    let s = settled(c, &id, "ACTIVE").await;
    assert_eq!(s["name"], "vm1-new");
    assert_eq!(s["metadata"], json!({"new": "2"}));

    // Wrong states are 409s naming the state.
    assert_eq!(act(c, &id, json!({"pause": null})).await.status, 202);
    wait_for_status(c, &id, &["PAUSED"], T).await;
    let r = act(c, &id, json!({"rebuild": {"imageRef": first.to_string()}})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains(&format!(
            "Cannot 'rebuild' instance {id} while it is in vm_state paused"
        )),
        "{}",
        r.body
    );
    let s = show(c, &id).await;
    assert_eq!(
        s["image"]["id"],
        second.to_string(),
        "refused: nothing written"
    );
    assert_eq!(s["status"], "PAUSED");
    assert_eq!(act(c, &id, json!({"unpause": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // Locked by an admin: the project is refused (409), cannot lift the
    // lock (403); the admin rebuilds regardless.
    let a = &admin.client;
    assert_eq!(act(a, &id, json!({"lock": null})).await.status, 202);
    let r = act(c, &id, json!({"rebuild": {"imageRef": first.to_string()}})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.error_message(), format!("Instance {id} is locked"));
    assert_eq!(act(c, &id, json!({"unlock": null})).await.status, 403);
    assert_eq!(show(c, &id).await["image"]["id"], second.to_string());
    let r = act(a, &id, json!({"rebuild": {"imageRef": first.to_string()}})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = settled(c, &id, "ACTIVE").await;
    assert_eq!(s["image"]["id"], first.to_string());
    assert_eq!(act(a, &id, json!({"unlock": null})).await.status, 202);

    // A stopped server is rebuilt and stays stopped.
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    let r = act(c, &id, json!({"rebuild": {"imageRef": second.to_string()}})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["server"]["status"], "REBUILD");
    let s = settled(c, &id, "SHUTOFF").await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "stopped");
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    assert_eq!(s["image"]["id"], second.to_string());
    assert_eq!(
        driver.info(vm).await.unwrap().power_state,
        PowerState::Shutdown
    );
    assert!(succeeded(&rebuild_events(c, &id).await));
    // The power sync (every second here) agrees: no drift to correct.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(show(c, &id).await["status"], "SHUTOFF");
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    assert!(
        !actions.body.to_string().contains("power_sync"),
        "{}",
        actions.body
    );

    // Another project cannot rebuild what it cannot see.
    let other = plane.api.account("other", "mallory", "member").await;
    let r = act(
        &other.client,
        &id,
        json!({"rebuild": {"imageRef": first.to_string()}}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A server being built cannot be rebuilt yet.
    driver.set_spawn_delay(Some(Duration::from_secs(2)));
    let r = boot(c, "vm2", "1", &first.to_string(), json!({})).await;
    let building = r.body["server"]["id"].as_str().unwrap().to_owned();
    let r = act(
        c,
        &building,
        json!({"rebuild": {"imageRef": first.to_string()}}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains("vm_state building"),
        "{}",
        r.body
    );
    driver.set_spawn_delay(None);
    wait_for_status(c, &building, &["ACTIVE"], T).await;
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_keeps_the_server_sqlite() {
    rebuild_keeps_the_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_keeps_the_server_rabbitmq_postgres() {
    rebuild_keeps_the_server(Backend::Postgres).await;
}

/// A rebuild the host fails leaves the server in ERROR with a fault (its
/// old guest is gone); rebuilding it again from ERROR brings it back. A
/// rebuild its host never reports is sent once more at its deadline, then
/// fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_rebuild_is_an_error_that_a_rebuild_repairs() {
    let mut opts = PlaneOptions::hosts(Backend::Sqlite, 1, FakeConfig::default());
    opts.conductor.reconcile_interval_secs = 0.2;
    let mut plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = admin.client.clone();
    let r = boot(&c, "vm1", "1", &image.to_string(), json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    wait_for_status(&c, &id, &["ACTIVE"], T).await;
    let driver = plane.driver("host-1");
    let rebuild = json!({"rebuild": {"imageRef": image.to_string()}});

    driver.fail_next_spawns(1, "no space left on device");
    assert_eq!(act(&c, &id, rebuild.clone()).await.status, 202);
    let s = settled(&c, &id, "ERROR").await;
    let fault = s["fault"]["message"].as_str().unwrap_or_default();
    assert!(
        fault.contains("Rebuild of instance") && fault.contains("no space left on device"),
        "{s}"
    );
    let events = rebuild_events(&c, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "compute_rebuild" && e["result"] == "Error"),
        "{events:?}"
    );

    // From ERROR, a rebuild is the way back.
    assert_eq!(act(&c, &id, rebuild.clone()).await.status, 202);
    let s = settled(&c, &id, "ACTIVE").await;
    assert!(s.get("fault").is_none(), "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);

    // The host goes quiet: asked again at the deadline, then ERROR.
    plane.stop_host("host-1").await;
    assert_eq!(act(&c, &id, rebuild).await.status, 202);
    let expire = format!("UPDATE instances SET task_deadline = 1 WHERE id = '{id}'");
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        plane.api.db.execute(&expire).await;
        let s = show(&c, &id).await;
        if s["status"] == "ERROR" {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did not report the rebuild in time"),
        "{s}"
    );
    let events = rebuild_events(&c, &id).await;
    let failed = events
        .iter()
        .filter(|e| e["event"] == "compute_rebuild" && e["result"] == "Error")
        .count();
    assert_eq!(failed, 2, "asked again once, then failed: {events:?}");
    plane.shutdown().await;
}
