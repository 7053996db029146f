//! createImage of a real running guest (issue 13): the libvirt driver
//! saves the guest (managed save), converts its disk and restores it, so
//! the guest carries on without a reboot; a new server booted from the
//! snapshot has the first one's disk, which the guest's boot counter (kept
//! on the disk) shows: BOOTCOUNT=2.

use crate::support::{RealCloud, count, domain, domain_running, value};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Prints `TESTGUEST TICK=<n>` every second, detached from the user-data
/// run: proof the guest is alive after the snapshot.
const TICKER: &str = "#!/bin/sh\n\
setsid sh -c 'n=0; while :; do n=$((n+1)); echo \"TESTGUEST TICK=$n\" >/dev/console; \
sleep 1; done' </dev/null >/dev/null 2>&1 &\n\
echo ticking\n";

/// The last tick on the console.
fn last_tick(console: &str) -> u64 {
    console
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("TESTGUEST TICK=")?.parse().ok())
        .unwrap_or(0)
}

/// Waits until image `id` is active (or fails on killed/deleted).
async fn image_active(cloud: &RealCloud, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let r = cloud.client().get(&format!("/image/v2/images/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["status"] == "active" {
            eprintln!("snapshot {id} active after {:.1?}", started.elapsed());
            return r.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not active: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_of_a_running_guest_boots_with_its_disk() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-snap", Some(TICKER)).await;
    let console = cloud.console(&id).await;
    assert_eq!(value(&console, "BOOTCOUNT"), "1", "{console}");

    let r = cloud
        .client()
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"createImage": {"name": "snap-real"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let snap = location.rsplit('/').next().unwrap().to_owned();
    let image = image_active(&cloud, &snap).await;
    assert_eq!(image["disk_format"], "qcow2", "{image}");
    assert_eq!(image["image_type"], "snapshot", "{image}");
    assert_eq!(image["instance_uuid"], id.as_str(), "{image}");

    // The original carries on: running, not booted again, still ticking.
    let started = Instant::now();
    let server = loop {
        let s = cloud.wait(&id, &["ACTIVE"]).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(server["OS-EXT-STS:power_state"], 1, "{server}");
    assert!(domain_running(&id), "the guest runs after the snapshot");
    let before = last_tick(&cloud.console(&id).await);
    let started = Instant::now();
    let console = loop {
        let console = cloud.console(&id).await;
        if last_tick(&console) > before + 1 {
            break console;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the guest stopped ticking at {before}:\n{console}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(count(&console, "READY"), 1, "rebooted:\n{console}");
    assert_eq!(count(&console, "BOOTED"), 1, "rebooted:\n{console}");

    // A server booted from the snapshot has the first one's disk: its boot
    // counter continues.
    let (net, _) = cloud.network().await;
    let copy = cloud
        .boot("vm-from-snap", "real.1c128", &snap, &net, None, None)
        .await;
    let s = cloud.wait(&copy, &["ACTIVE", "ERROR"]).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let console = cloud.wait_marker(&copy, "READY", 1).await;
    assert_eq!(value(&console, "BOOTCOUNT"), "2", "{console}");

    cloud.delete(&copy).await;

    // A paused guest is snapshotted too and stays paused (saved paused,
    // restored paused), then carries on when unpaused.
    cloud.action(&id, json!({"pause": null})).await;
    cloud.wait(&id, &["PAUSED"]).await;
    let r = cloud
        .client()
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"createImage": {"name": "snap-paused"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    image_active(&cloud, location.rsplit('/').next().unwrap()).await;
    let started = Instant::now();
    let server = loop {
        let s = cloud.wait(&id, &["PAUSED"]).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(server["OS-EXT-STS:power_state"], 3, "{server}");
    let (state, _) = domain(&id).state().unwrap();
    assert!(
        matches!(
            state.unwrap_or(virt::domain::DomainState::NoState),
            virt::domain::DomainState::Paused
        ),
        "the domain is paused again"
    );
    assert!(!domain(&id).has_managed_save(0).unwrap());
    cloud.action(&id, json!({"unpause": null})).await;
    cloud.wait(&id, &["ACTIVE"]).await;
    let before = last_tick(&cloud.console(&id).await);
    let started = Instant::now();
    let console = loop {
        let console = cloud.console(&id).await;
        if last_tick(&console) > before + 1 {
            break console;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the guest stopped ticking at {before}:\n{console}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(count(&console, "BOOTED"), 1, "rebooted:\n{console}");
    cloud.delete(&id).await;
}
