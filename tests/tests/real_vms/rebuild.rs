//! A rebuild of a real guest (issue 13): the domain boots again from a
//! fresh copy of the image (BOOTCOUNT back to 1 after a reboot had made it
//! 2), with a config drive made anew (the new name), under the same uuid
//! and with the same address on the same port; a stopped one stays off.

use crate::support::{RealCloud, count, domain_running, fixed_ip, value};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuilt_real_guest_boots_from_a_fresh_disk_with_its_identity() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-rebuild", None).await;
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    let ip = fixed_ip(&server);
    let image = server["image"]["id"].as_str().unwrap().to_owned();

    // A reboot counts on the disk: BOOTCOUNT=2.
    cloud.action(&id, json!({"reboot": {"type": "HARD"}})).await;
    let console = cloud.wait_marker(&id, "READY", 2).await;
    assert_eq!(value(&console, "BOOTCOUNT"), "2", "{console}");
    let first_ip = value(&console, "IP");
    cloud.wait(&id, &["ACTIVE"]).await;

    cloud
        .action(
            &id,
            json!({"rebuild": {"imageRef": image, "name": "vm-rebuilt",
                               "metadata": {"rebuilt": "yes"}}}),
        )
        .await;
    let server = cloud.wait(&id, &["ACTIVE", "ERROR"]).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["name"], "vm-rebuilt");
    assert_eq!(fixed_ip(&server), ip, "the same address");
    assert!(domain_running(&id), "the domain runs");
    // The console is the new guest's: one boot of a fresh disk.
    let console = cloud.wait_marker(&id, "READY", 1).await;
    assert_eq!(count(&console, "BOOTED"), 1, "{console}");
    assert_eq!(value(&console, "BOOTCOUNT"), "1", "a fresh disk: {console}");
    assert_eq!(value(&console, "UUID"), id, "{console}");
    assert_eq!(value(&console, "NAME"), "vm-rebuilt", "{console}");
    assert_eq!(value(&console, "IP"), first_ip, "{console}");

    // A stopped server is rebuilt and stays stopped: the fresh guest is
    // powered off again by its host.
    cloud.action(&id, json!({"os-stop": null})).await;
    cloud.wait(&id, &["SHUTOFF"]).await;
    cloud
        .action(&id, json!({"rebuild": {"imageRef": image}}))
        .await;
    let server = cloud.wait(&id, &["SHUTOFF", "ACTIVE", "ERROR"]).await;
    assert_eq!(server["status"], "SHUTOFF", "{server}");
    assert_eq!(server["OS-EXT-STS:power_state"], 4, "{server}");
    assert!(!domain_running(&id), "the domain is off");
    cloud.delete(&id).await;
}
