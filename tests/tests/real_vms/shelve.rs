//! Shelve-offload and unshelve of a real guest (issue 13, shelve): the
//! shelve uploads the root disk as a snapshot image and the offload
//! removes the domain; unshelve boots that snapshot, so the guest finds
//! its own disk again (its boot counter carries on), and the snapshot is
//! deleted once the server runs.

use crate::support::{RealCloud, domain_exists, domain_running, value};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_guest_shelved_offloaded_and_unshelved_keeps_its_disk() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-shelve", None).await;
    assert_eq!(value(&cloud.console(&id).await, "BOOTCOUNT"), "1");

    cloud.action(&id, json!({"shelve": null})).await;
    let server = cloud.wait(&id, &["SHELVED_OFFLOADED", "ERROR"]).await;
    assert_eq!(server["status"], "SHELVED_OFFLOADED", "{server}");
    assert!(server["OS-EXT-SRV-ATTR:host"].is_null(), "{server}");
    assert!(!domain_exists(&id), "the offload left the domain");
    let images = cloud
        .client()
        .get("/image/v2/images?name=vm-shelve-shelved")
        .await;
    let snapshot = images.body["images"][0].clone();
    assert_eq!(snapshot["status"], "active", "{}", images.body);
    assert_eq!(snapshot["instance_uuid"], id.as_str());

    cloud.action(&id, json!({"unshelve": null})).await;
    let server = cloud.wait(&id, &["ACTIVE", "ERROR"]).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert!(domain_running(&id));
    let console = cloud.wait_marker(&id, "READY", 1).await;
    assert_eq!(
        value(&console, "BOOTCOUNT"),
        "2",
        "the unshelved guest booted its own disk again"
    );
    let gone = cloud
        .client()
        .get(&format!(
            "/image/v2/images/{}",
            snapshot["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(gone.status, 404, "the snapshot is left: {}", gone.body);
    cloud.delete(&id).await;
}
