//! createImage (snapshot) through the real HTTP API, the conductor and fake
//! hosts, on both backends (issue 13): the image record and its states,
//! the server's state during and after, a server booted from the snapshot,
//! the refusals, and a failed capture.

use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::InstanceId;
use cloud_store::Backend;
use cloud_test_utils::{Client, ControlPlane, PlaneOptions, Reply, boot, wait_for_status};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

async fn server(c: &Client, id: &str) -> Value {
    c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone()
}

/// Boots `name` from `image` and waits for ACTIVE; its id and host.
async fn boot_active(c: &Client, name: &str, image: &str) -> (String, String) {
    let r = boot(c, name, "1", image, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    (id, host)
}

/// Asks for a snapshot: the image id from the 202's Location header.
async fn create_image(c: &Client, id: &str, body: Value) -> String {
    let r = act(c, id, json!({ "createImage": body })).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body, Value::Null, "2.1 answers with an empty body");
    let location = r
        .headers
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned();
    let (prefix, image) = location
        .rsplit_once("/image/v2/images/")
        .unwrap_or_else(|| panic!("Location {location} names no image"));
    assert!(prefix.starts_with("http"), "{location}");
    image.to_owned()
}

/// Waits until the server has no task; the server.
async fn settled(c: &Client, id: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let s = server(c, id).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            return s;
        }
        assert!(Instant::now() < deadline, "still busy: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until image `id` is active; the image.
async fn image_active(c: &Client, id: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let r = c.get(&format!("/image/v2/images/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["status"] == "active" {
            return r.body;
        }
        assert!(Instant::now() < deadline, "not active: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events of the latest `createImage` action: (event, result, traceback).
async fn snapshot_events(c: &Client, id: &str) -> Vec<(String, String, String)> {
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let req = actions.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "createImage")
        .unwrap_or_else(|| panic!("no createImage action: {}", actions.body))["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = c
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{req}"
        ))
        .await;
    detail.body["instanceAction"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_owned(),
                e["result"].as_str().unwrap_or_default().to_owned(),
                e["traceback"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn snapshot_and_boot_from_it(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let base = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = &admin.client;
    let (id, host) = boot_active(c, "vm1", &base).await;
    let driver = plane.driver(&host);

    // A slow capture: the server stays ACTIVE with task image_snapshot,
    // and takes no other action meanwhile.
    driver.set_snapshot_delay(Duration::from_millis(1500));
    let snap = create_image(
        c,
        &id,
        json!({"name": "snap1", "metadata": {"purpose": "e2e"}}),
    )
    .await;
    let s = server(c, &id).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["OS-EXT-STS:task_state"], "image_snapshot", "{s}");
    let r = act(c, &id, json!({"createImage": {"name": "again"}})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains("task_state image_snapshot"),
        "{}",
        r.error_message()
    );
    let r = act(c, &id, json!({"os-stop": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);

    let image = image_active(c, &snap).await;
    assert_eq!(image["name"], "snap1");
    assert_eq!(image["image_type"], "snapshot", "{image}");
    assert_eq!(image["instance_uuid"], id.as_str(), "{image}");
    assert_eq!(image["base_image_ref"], base.as_str(), "{image}");
    assert_eq!(image["owner"], admin.project_id.as_str(), "{image}");
    assert_eq!(image["visibility"], "private", "{image}");
    assert_eq!(image["purpose"], "e2e", "{image}");
    assert_eq!(image["container_format"], "bare", "{image}");
    // The fake captures a raw file; the agent said so before uploading.
    assert_eq!(image["disk_format"], "raw", "{image}");
    let flavor = c.get("/compute/v2.1/flavors/1").await.body["flavor"].clone();
    assert_eq!(image["min_disk"], flavor["disk"], "{image} {flavor}");
    assert!(image["checksum"].is_string(), "{image}");
    // The bytes are the fake's capture of this VM and its disk.
    let data = c.get(&format!("/image/v2/images/{snap}/file")).await;
    let vm = InstanceId::parse(&id).unwrap();
    assert_eq!(
        String::from_utf8(data.bytes).unwrap(),
        cloud_driver_fake::snapshot_content(vm, "vm1", &base)
    );
    assert_eq!(
        image["size"],
        data.headers["content-length"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    );

    let s = settled(c, &id).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let events = snapshot_events(c, &id).await;
    assert!(
        events
            .iter()
            .any(|(e, r, _)| e == "compute_snapshot_instance" && r == "Success"),
        "{events:?}"
    );

    // A server booted from the snapshot has the first one's disk.
    driver.set_snapshot_delay(Duration::ZERO);
    let (copy, copy_host) = boot_active(c, "vm2", &snap).await;
    let copy_vm = InstanceId::parse(&copy).unwrap();
    assert_eq!(
        plane.driver(&copy_host).root_image(copy_vm).as_deref(),
        Some(snap.as_str())
    );
    let console = act(c, &copy, json!({"os-getConsoleOutput": {}})).await;
    assert!(
        console.body["output"]
            .as_str()
            .unwrap()
            .contains(&format!("root disk from image {snap}")),
        "{}",
        console.body
    );

    // A stopped server is snapshotted too, and stays stopped.
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    let stopped_snap = create_image(c, &id, json!({"name": "snap-off"})).await;
    image_active(c, &stopped_snap).await;
    let s = settled(c, &id).await;
    assert_eq!(s["status"], "SHUTOFF", "{s}");
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_and_boot_from_it_sqlite() {
    snapshot_and_boot_from_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_and_boot_from_it_rabbitmq_postgres() {
    snapshot_and_boot_from_it(Backend::Postgres).await;
}

/// Bad bodies are 400s, wrong states (building, rescued, shelved) 409s,
/// and none leaves an image.
async fn refusals(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let base = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = &admin.client;
    let (id, host) = boot_active(c, "vm1", &base).await;
    let images_before = c.get("/image/v2/images").await.body["images"]
        .as_array()
        .unwrap()
        .len();
    for (body, words) in [
        (json!({}), "'name' is a required property"),
        (json!({"name": ""}), "createImage.name"),
        (json!({"name": "x", "metadata": {"k": 1}}), "not a string"),
        (json!({"name": "x", "metadata": "k"}), "not an object"),
        (
            json!({"name": "x", "metadata": {"min_ram": "5"}}),
            "image attribute",
        ),
        (json!({"name": "x", "colour": "red"}), "colour"),
    ] {
        let r = act(c, &id, json!({ "createImage": body })).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.error_message().contains(words),
            "{body}: {}",
            r.error_message()
        );
    }

    // While building: 409 naming the state.
    plane
        .driver(&host)
        .set_spawn_delay(Some(Duration::from_secs(3)));
    let r = boot(c, "slow", "1", &base, json!({})).await;
    let slow = r.body["server"]["id"].as_str().unwrap().to_owned();
    let r = act(c, &slow, json!({"createImage": {"name": "x"}})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains("vm_state building"),
        "{}",
        r.error_message()
    );
    wait_for_status(c, &slow, &["ACTIVE"], T).await;
    let images_after = c.get("/image/v2/images").await.body["images"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        images_before, images_after,
        "a refused snapshot left an image"
    );
    // Rescued or shelved: 409 naming the state (a shelve makes an image
    // of its own).
    plane.driver(&host).set_spawn_delay(None);
    for (action, status, back) in [
        ("rescue", "RESCUE", Some("unrescue")),
        ("shelve", "SHELVED_OFFLOADED", None),
    ] {
        let r = act(c, &id, json!({ action: null })).await;
        // rescue answers 200 with the adminPass, shelve 202.
        assert!(matches!(r.status, 200 | 202), "{action}: {}", r.body);
        let s = wait_for_status(c, &id, &[status, "ERROR"], T).await;
        assert_eq!(s["status"], status, "{s}");
        let r = act(c, &id, json!({"createImage": {"name": "x"}})).await;
        assert_eq!(r.status, 409, "{status}: {}", r.body);
        assert!(
            r.error_message().contains(&format!(
                "vm_state {}",
                s["OS-EXT-STS:vm_state"].as_str().unwrap()
            )),
            "{}",
            r.error_message()
        );
        if let Some(back) = back {
            assert_eq!(act(c, &id, json!({ back: null })).await.status, 202);
            wait_for_status(c, &id, &["ACTIVE"], T).await;
        }
    }
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_sqlite() {
    refusals(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_rabbitmq_postgres() {
    refusals(Backend::Postgres).await;
}

/// A capture that fails: the image is deleted, the server is ACTIVE again
/// with no task, and the action's event failed with the host's reason.
async fn failed_capture(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let base = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = &admin.client;
    let (id, host) = boot_active(c, "vm1", &base).await;
    plane
        .driver(&host)
        .fail_next_snapshots(1, "the disk is on fire");
    let snap = create_image(c, &id, json!({"name": "doomed"})).await;
    let s = settled(c, &id).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let r = c.get(&format!("/image/v2/images/{snap}")).await;
    assert_eq!(
        r.status, 404,
        "the failed snapshot's image is gone: {}",
        r.body
    );
    let events = snapshot_events(c, &id).await;
    assert!(
        events
            .iter()
            .any(|(e, r, t)| e == "compute_snapshot_instance"
                && r == "Error"
                && t.contains("the disk is on fire")),
        "{events:?}"
    );
    // The next one works.
    let snap = create_image(c, &id, json!({"name": "fine"})).await;
    image_active(c, &snap).await;
    assert_eq!(settled(c, &id).await["status"], "ACTIVE");
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_capture_sqlite() {
    failed_capture(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_capture_rabbitmq_postgres() {
    failed_capture(Backend::Postgres).await;
}

/// The conductors die while hosts are taking two snapshots (one that
/// works, one that fails): the hosts finish and report, and the conductor
/// started next applies both reports: each server back to ACTIVE with no
/// task, the good snapshot active, the failed one's image gone, each
/// action finished with its event.
async fn conductor_killed_mid_snapshot(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let base = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = &admin.client;
    let (good, host) = boot_active(c, "vm-good", &base).await;
    let (bad, _) = boot_active(c, "vm-bad", &base).await;
    let driver = plane.driver(&host);
    driver.set_snapshot_delay(Duration::from_secs(2));
    // The injected failure goes to the next capture the host starts: the
    // bad server's, started well before the good one's is asked for.
    driver.fail_next_snapshots(1, "the disk is on fire");
    let doomed = create_image(c, &bad, json!({"name": "doomed"})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept = create_image(c, &good, json!({"name": "kept"})).await;
    plane.kill_conductors();
    // The host uploads without a conductor; its reports wait for one.
    image_active(c, &kept).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in [&good, &bad] {
        assert_eq!(
            server(c, id).await["OS-EXT-STS:task_state"],
            "image_snapshot",
            "nobody applied the report yet"
        );
    }
    plane.start_conductor();
    for id in [&good, &bad] {
        let s = settled(c, id).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
    }
    image_active(c, &kept).await;
    let r = c.get(&format!("/image/v2/images/{doomed}")).await;
    assert_eq!(r.status, 404, "the failed snapshot's image: {}", r.body);
    let ok = snapshot_events(c, &good).await;
    assert!(
        ok.iter()
            .any(|(e, r, _)| e == "compute_snapshot_instance" && r == "Success"),
        "{ok:?}"
    );
    let failed = snapshot_events(c, &bad).await;
    assert!(
        failed
            .iter()
            .any(|(e, r, t)| e == "compute_snapshot_instance"
                && r == "Error"
                && t.contains("the disk is on fire")),
        "{failed:?}"
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_snapshot_sqlite() {
    conductor_killed_mid_snapshot(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_snapshot_rabbitmq_postgres() {
    conductor_killed_mid_snapshot(Backend::Postgres).await;
}

/// A snapshot the host never reports ends at its deadline: the task is
/// cleared, the queued image deleted, the action's event failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_the_host_never_reports_times_out_without_an_image() {
    let mut opts = PlaneOptions::hosts(Backend::Sqlite, 1, FakeConfig::default());
    opts.conductor.reconcile_interval_secs = 0.2;
    let mut plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let base = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = &admin.client;
    let (id, host) = boot_active(c, "vm1", &base).await;
    plane.stop_host(&host).await;
    let snap = create_image(c, &id, json!({"name": "lost"})).await;
    let r = c.get(&format!("/image/v2/images/{snap}")).await;
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    // The API gives a snapshot 1800 s; bring the deadline forward.
    plane
        .api
        .db
        .execute(&format!(
            "UPDATE instances SET task_deadline = 1 WHERE id = '{id}'"
        ))
        .await;
    let s = settled(c, &id).await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "active", "{s}");
    let r = c.get(&format!("/image/v2/images/{snap}")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let events = snapshot_events(c, &id).await;
    assert!(
        events
            .iter()
            .any(|(e, r, t)| e == "compute_snapshot_instance"
                && r == "Error"
                && t.contains("in time")),
        "{events:?}"
    );
    plane.shutdown().await;
}
