//! Rescue and unrescue through the real HTTP API, the conductor and fake
//! hosts, on both backends (issue 13): RESCUE with the original disk
//! second, back to ACTIVE, Nova's states and errors, the lock, the event
//! list, agent restarts and power syncs that leave a rescued server be,
//! and deletes of rescued servers.

use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use cloud_store::Backend;
use cloud_test_utils::{Client, ControlPlane, PlaneOptions, Reply, boot, wait_for_status};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

async fn server(c: &Client, id: &str) -> Value {
    c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone()
}

/// The events of every action of the server named `action`.
async fn events(c: &Client, id: &str, action: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let mut out = Vec::new();
    for a in r.body["instanceActions"].as_array().unwrap() {
        if a["action"] != action {
            continue;
        }
        let request = a["request_id"].as_str().unwrap();
        let r = c
            .get(&format!(
                "/compute/v2.1/servers/{id}/os-instance-actions/{request}"
            ))
            .await;
        out.extend(
            r.body["instanceAction"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    assert!(!out.is_empty(), "no {action} events: {}", r.body);
    out
}

/// Rescue -> RESCUE (adminPass in the answer, the original disk second),
/// unrescue -> ACTIVE, with the errors a user meets on the way.
async fn rescue_and_unrescue(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = &admin.client;
    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    let vm = InstanceId::parse(&id).unwrap();
    let driver = plane.driver(&host);

    // Only a rescued server can be unrescued.
    let r = act(c, &id, json!({"unrescue": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains(&format!(
            "Cannot 'unrescue' instance {id} while it is in vm_state active"
        )),
        "{}",
        r.error_message()
    );
    // Bad bodies and unusable images are 400s that change nothing.
    let missing = InstanceId::new().to_string();
    let queued = c
        .post(
            "/image/v2/images",
            json!({"name": "queued", "disk_format": "raw", "container_format": "bare"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (body, says) in [
        (
            json!({"rescue": {"rescue_image_ref": missing}}),
            "could not be found",
        ),
        (
            json!({"rescue": {"rescue_image_ref": queued}}),
            "is not active",
        ),
        (
            json!({"rescue": {"rescue_image_ref": "nope"}}),
            "is not an image id",
        ),
        (
            json!({"rescue": {"image": "x"}}),
            "additional property 'image'",
        ),
        (json!({"rescue": "x"}), "must be null or an object"),
    ] {
        let r = act(c, &id, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.error_message().contains(says),
            "{body}: {}",
            r.error_message()
        );
    }
    let s = server(c, &id).await;
    assert_eq!(s["status"], "ACTIVE", "nothing happened: {s}");
    assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);

    // Rescue: 200 with the password given, RESCUE, the VM runs the rescue
    // image (the server's own by default) with its own disk second.
    let r = act(c, &id, json!({"rescue": {"adminPass": "Rescue-Me-1"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"adminPass": "Rescue-Me-1"}));
    let s = wait_for_status(c, &id, &["RESCUE", "ERROR"], T).await;
    assert_eq!(s["status"], "RESCUE", "{s}");
    assert_eq!(s["OS-EXT-STS:vm_state"], "rescued");
    assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(driver.rescue_image(vm), Some(image.to_string()));
    let console = driver.console_output(vm, 1 << 20).await.unwrap();
    assert!(
        console.contains(&format!("vdb (root disk from image {image})")),
        "{console}"
    );
    let rescue_events = events(c, &id, "rescue").await;
    assert!(
        rescue_events
            .iter()
            .any(|e| e["event"] == "compute_rescue" && e["result"] == "Success"),
        "{rescue_events:?}"
    );

    // Power syncs (every second) and an agent restart leave it rescued.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    plane.stop_host(&host).await;
    plane.add_host(&host, driver.clone()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = server(c, &id).await;
    assert_eq!(s["status"], "RESCUE", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(driver.rescue_image(vm), Some(image.to_string()));

    // Rescued: no second rescue, no stop, no pause.
    for action in ["rescue", "os-stop", "pause"] {
        let r = act(c, &id, json!({ action: null })).await;
        assert_eq!(r.status, 409, "{action}: {}", r.body);
        assert!(
            r.error_message().contains("vm_state rescued"),
            "{action}: {}",
            r.error_message()
        );
    }

    // Unrescue: 202, ACTIVE, its own disk again.
    let r = act(c, &id, json!({"unrescue": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["ACTIVE"], T).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(driver.rescue_image(vm), None);
    let unrescue_events = events(c, &id, "unrescue").await;
    assert!(
        unrescue_events
            .iter()
            .any(|e| e["event"] == "compute_unrescue" && e["result"] == "Success"),
        "{unrescue_events:?}"
    );

    // A paused server cannot be rescued.
    assert_eq!(act(c, &id, json!({"pause": null})).await.status, 202);
    wait_for_status(c, &id, &["PAUSED"], T).await;
    let r = act(c, &id, json!({"rescue": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.error_message(),
        format!("Cannot 'rescue' instance {id} while it is in vm_state paused.")
    );
    assert_eq!(act(c, &id, json!({"unpause": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // A stopped server is rescued (it runs), with another image and a
    // generated password; a rescued server is deleted with its rescue.
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    let other_image = active_image(&plane.api.db.store, &admin.project_id).await;
    let r = act(
        c,
        &id,
        json!({"rescue": {"rescue_image_ref": other_image.to_string()}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let generated = r.body["adminPass"].as_str().unwrap();
    assert_eq!(generated.len(), 12, "{}", r.body);
    wait_for_status(c, &id, &["RESCUE"], T).await;
    assert_eq!(driver.rescue_image(vm), Some(other_image.to_string()));
    assert_eq!(
        driver.info(vm).await.unwrap().power_state,
        PowerState::Running
    );
    let names: Vec<String> = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await
        .body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "rescue").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "unrescue").count(),
        1,
        "{names:?}"
    );
    let r = c.delete(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    wait_for_status(c, &id, &["DELETED"], T).await;
    assert!(driver.info(vm).await.is_err(), "the VM is gone");
    plane.shutdown().await;
}

/// A locked server refuses rescue and unrescue from members (409 naming
/// the lock); admins act regardless. A rescue the host fails leaves the
/// server as it was, with the reason in the event list.
async fn locked_and_failed_rescues(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let demo = plane.api.account("demo", "demo", "member").await;
    let c = &demo.client;
    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE"], T).await;
    let host = s["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap_or("host-1")
        .to_owned();
    let a = &admin.client;
    let driver = plane.driver(&host);

    // Another project's private image is not theirs to boot.
    let other = plane.api.account("other", "mallory", "member").await;
    let private = cloud_test_utils::upload_image(
        &other.client,
        "private",
        "raw",
        b"x".to_vec(),
        json!({"visibility": "private"}),
    )
    .await;
    let r = act(c, &id, json!({"rescue": {"rescue_image_ref": private}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.error_message(),
        format!("Rescue image {private} could not be found.")
    );

    let r = act(c, &id, json!({"lock": {"locked_reason": "hands off"}})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = act(c, &id, json!({"rescue": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.error_message(),
        format!("Instance {id} is locked: hands off")
    );
    assert_eq!(server(c, &id).await["status"], "ACTIVE");
    // The admin rescues it anyway; the member cannot unrescue it.
    assert_eq!(act(a, &id, json!({"rescue": null})).await.status, 200);
    wait_for_status(c, &id, &["RESCUE"], T).await;
    let r = act(c, &id, json!({"unrescue": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.error_message(),
        format!("Instance {id} is locked: hands off")
    );
    assert_eq!(act(c, &id, json!({"unlock": null})).await.status, 202);
    assert_eq!(act(c, &id, json!({"unrescue": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // The host fails the rescue: back to ACTIVE, the event says why.
    driver.fail_next_rescues(1, "no room for a rescue disk");
    assert_eq!(act(c, &id, json!({"rescue": null})).await.status, 200);
    let deadline = std::time::Instant::now() + T;
    loop {
        let s = server(c, &id).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            assert_eq!(s["status"], "ACTIVE", "{s}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Admins see why in the event list.
    let failed = events(a, &id, "rescue").await;
    assert!(
        failed.iter().any(|e| e["event"] == "compute_rescue"
            && e["result"] == "Error"
            && e["traceback"]
                .as_str()
                .unwrap_or_default()
                .contains("no room for a rescue disk")),
        "{failed:?}"
    );
    let vm = InstanceId::parse(&id).unwrap();
    assert_eq!(driver.rescue_image(vm), None);
    // And the next one works.
    assert_eq!(act(c, &id, json!({"rescue": null})).await.status, 200);
    wait_for_status(c, &id, &["RESCUE"], T).await;
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rescue_and_unrescue_sqlite() {
    rescue_and_unrescue(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rescue_and_unrescue_rabbitmq_postgres() {
    rescue_and_unrescue(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locked_and_failed_rescues_sqlite() {
    locked_and_failed_rescues(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locked_and_failed_rescues_rabbitmq_postgres() {
    locked_and_failed_rescues(Backend::Postgres).await;
}
