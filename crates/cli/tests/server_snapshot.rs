//! `cloud snapshot` against a running cloud (fake hosts): an image of the
//! server that boots another server, the id printed without `--wait`, a
//! failed capture (exit 6, no image left) and a locked server (exit 5).

mod common;

use common::Cloud;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_a_server_and_boot_from_it() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();
    let vm1 = cloud
        .run(&["show", "vm1", "-f", "value", "-c", "id"])
        .await
        .ok()
        .trim()
        .to_owned();

    let shown = cloud
        .run(&[
            "snapshot",
            "vm1",
            "snap1",
            "--property",
            "purpose=backup",
            "--wait",
            "-f",
            "json",
        ])
        .await
        .json();
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["name"], "snap1", "{shown}");
    let image = cloud
        .run(&["image", "show", "snap1", "-f", "json"])
        .await
        .json();
    assert_eq!(image["image_type"], "snapshot", "{image}");
    assert_eq!(image["instance_uuid"], vm1.as_str(), "{image}");
    assert_eq!(image["purpose"], "backup", "{image}");
    let status = cloud
        .run(&["show", "vm1", "-f", "value", "-c", "status"])
        .await;
    assert_eq!(status.ok(), "ACTIVE\n");

    cloud
        .run(&[
            "boot", "vm2", "--flavor", "m1.tiny", "--image", "snap1", "--nic", "none", "--wait",
        ])
        .await
        .ok();
    let log = cloud.run(&["console-log", "vm2"]).await;
    assert!(
        log.ok().contains(&format!(
            "root disk from image {}",
            shown["id"].as_str().unwrap()
        )),
        "{}",
        log.stdout
    );

    // Without --wait: the new image's id, nothing else.
    let id = cloud.run(&["snapshot", "vm1", "snap2"]).await;
    let id = id.ok().trim().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let image = cloud
        .run(&["image", "show", &id, "-f", "json"])
        .await
        .json();
    assert_eq!(image["name"], "snap2", "{image}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_or_refused_snapshot_leaves_no_image() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();
    cloud
        .plane
        .driver("host-1")
        .fail_next_snapshots(1, "no space left on device");
    let failed = cloud.run(&["snapshot", "vm1", "doomed", "--wait"]).await;
    assert_eq!(failed.code, 6, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("the snapshot of server vm1 failed"),
        "{}",
        failed.stderr
    );
    let images = cloud
        .run(&["image", "list", "-f", "value", "-c", "Name"])
        .await;
    assert!(!images.ok().contains("doomed"), "{}", images.stdout);
    let actions = cloud
        .run(&["actions", "vm1", "-f", "value", "-c", "action"])
        .await;
    assert!(actions.ok().contains("createImage"), "{}", actions.stdout);

    cloud.run(&["lock", "vm1"]).await.ok();
    let locked = cloud.run(&["snapshot", "vm1", "x"]).await;
    assert_eq!(locked.code, 5, "{}", locked.stderr);
    assert!(locked.stderr.contains("locked"), "{}", locked.stderr);
}
