//! Rescue and unrescue of a real guest (issue 13): the rescue boots a
//! fresh copy of the server's image as the first virtio disk with the
//! server's own disk as the second, as the guest's console shows; unrescue
//! boots the server's own disk again, whose boot counter carries on. A
//! rescued server survives an agent restart, and its delete removes the
//! rescue disk with everything else.

use crate::support::{RealCloud, count, domain, domain_exists, markers};
use cloud_model::InstanceId;
use serde_json::{Value, json};
use std::time::Duration;

/// The markers of boot number `n` (1-based): from its `BOOTED` to the next.
fn boot(console: &str, n: usize) -> Vec<String> {
    let all = markers(console);
    let mut boots = all.split_inclusive(|m| m == "READY");
    let seen: Vec<String> = boots.nth(n - 1).unwrap_or_default().to_vec();
    assert!(
        seen.iter().any(|m| m == "BOOTED") && seen.iter().any(|m| m == "READY"),
        "no boot #{n} in:\n{console}"
    );
    seen
}

/// `KEY=value` of one boot's markers.
fn get<'a>(boot: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}=");
    boot.iter()
        .find_map(|m| m.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in {boot:?}"))
}

/// `name -> SIZE_MB` of the boot's `DISK=` markers.
fn disks(boot: &[String]) -> Vec<(String, String)> {
    boot.iter()
        .filter_map(|m| m.strip_prefix("DISK="))
        .map(|d| {
            let mut words = d.split(' ');
            let name = words.next().unwrap().to_owned();
            let size = words
                .find_map(|w| w.strip_prefix("SIZE_MB="))
                .unwrap_or_default()
                .to_owned();
            (name, size)
        })
        .collect()
}

fn size_of(disks: &[(String, String)], name: &str) -> Option<String> {
    disks
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.clone())
}

async fn rescue(cloud: &RealCloud, id: &str, body: Value) {
    let r = cloud
        .client()
        .post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await;
    assert_eq!(r.status, 200, "rescue: {}", r.body);
    assert!(r.body["adminPass"].is_string(), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rescue_shows_the_original_disk_as_a_second_disk() {
    let mut cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-rescue", None).await;
    let dir = cloud.driver.instance_path(InstanceId::parse(&id).unwrap());
    let console = cloud.console(&id).await;
    let first = boot(&console, 1);
    assert_eq!(get(&first, "BOOTCOUNT"), "1");
    assert_eq!(get(&first, "ROOT_DEV"), "/dev/vda1");
    let own = disks(&first);
    let own_size = size_of(&own, "vda").expect("the own disk is vda");
    assert_eq!(size_of(&own, "vdb"), None, "{own:?}");

    // Rescue (the server's own image): a new boot from a fresh copy of the
    // image as vda, the server's disk as vdb.
    rescue(&cloud, &id, json!({"rescue": null})).await;
    let server = cloud.wait(&id, &["RESCUE", "ERROR"]).await;
    assert_eq!(server["status"], "RESCUE", "{server}");
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    let console = cloud.wait_marker(&id, "READY", 2).await;
    let rescued = boot(&console, 2);
    let seen = disks(&rescued);
    let image_size = size_of(&seen, "vda").expect("a rescue disk");
    assert_ne!(image_size, own_size, "vda is the image's size: {seen:?}");
    assert_eq!(
        size_of(&seen, "vdb").as_deref(),
        Some(own_size.as_str()),
        "the server's own disk is the second disk: {seen:?}"
    );
    assert!(dir.join("disk.rescue").is_file());
    // Both disks carry a TESTGUEST partition; the guest counts the boot on
    // the first it finds: the fresh rescue disk (its first boot) or the
    // server's own disk (its second).
    let counted_on_own = match get(&rescued, "ROOT_DEV") {
        "/dev/vda1" => {
            assert_eq!(get(&rescued, "BOOTCOUNT"), "1", "a fresh rescue disk");
            false
        }
        "/dev/vdb1" => {
            assert_eq!(get(&rescued, "BOOTCOUNT"), "2", "the own disk");
            true
        }
        other => panic!("booted with ROOT_DEV={other}: {rescued:?}"),
    };
    eprintln!("{id}: rescue boot disks {seen:?}, counted on the own disk: {counted_on_own}");

    // An agent restart leaves the rescued guest running as it is.
    cloud.restart_agent().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server = cloud.wait(&id, &["RESCUE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    assert_eq!(server["OS-EXT-STS:task_state"], Value::Null);
    assert_eq!(count(&cloud.console(&id).await, "BOOTED"), 2);
    // The rescued guest keeps its serial console.
    let xml = domain(&id).xml_desc(0).unwrap();
    assert!(xml.contains("<serial type='tcp'>"), "{xml}");

    // Unrescue: the own disk boots again, alone, its counter carrying on.
    cloud.action(&id, json!({"unrescue": null})).await;
    let console = cloud.wait_marker(&id, "READY", 3).await;
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    let back = boot(&console, 3);
    let seen = disks(&back);
    assert_eq!(size_of(&seen, "vda"), Some(own_size.clone()), "{seen:?}");
    assert_eq!(size_of(&seen, "vdb"), None, "no second disk: {seen:?}");
    assert_eq!(get(&back, "ROOT_DEV"), "/dev/vda1");
    let expected = if counted_on_own { "3" } else { "2" };
    assert_eq!(get(&back, "BOOTCOUNT"), expected, "{back:?}");
    assert!(!dir.join("disk.rescue").exists(), "rescue disk dropped");
    assert!(!dir.join("unrescue.xml").exists());

    // A rescued server's delete leaves nothing, its rescue disk included.
    rescue(&cloud, &id, json!({"rescue": {"adminPass": "x"}})).await;
    cloud.wait(&id, &["RESCUE"]).await;
    assert!(dir.join("disk.rescue").is_file());
    cloud.delete(&id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!domain_exists(&id), "domain left behind");
    assert!(!dir.exists(), "instance directory left behind");
}
