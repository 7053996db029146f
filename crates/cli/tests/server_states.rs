//! `cloud pause|unpause|suspend|resume|lock|unlock` against a running
//! cloud (fake hosts): the statuses they end in, the conflicts they meet
//! (exit 5) and a lock that refuses the member's actions until unlocked.

mod common;

use common::Cloud;

async fn status(cloud: &Cloud) -> String {
    cloud
        .run(&["show", "vm1", "-f", "value", "-c", "status"])
        .await
        .ok()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_suspend_and_lock_a_server() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();

    cloud.run(&["pause", "vm1", "--wait"]).await.ok();
    assert_eq!(status(&cloud).await, "PAUSED");
    let again = cloud.run(&["suspend", "vm1"]).await;
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("while it is in vm_state paused"),
        "{}",
        again.stderr
    );
    cloud.run(&["unpause", "vm1", "--wait"]).await.ok();
    assert_eq!(status(&cloud).await, "ACTIVE");
    cloud.run(&["suspend", "vm1", "--wait"]).await.ok();
    assert_eq!(status(&cloud).await, "SUSPENDED");
    cloud.run(&["resume", "vm1", "--wait"]).await.ok();
    assert_eq!(status(&cloud).await, "ACTIVE");

    cloud
        .run(&["lock", "vm1", "--reason", "primary database"])
        .await
        .ok();
    for refused in [&["stop", "vm1"][..], &["pause", "vm1"], &["delete", "vm1"]] {
        let out = cloud.run(refused).await;
        assert_eq!(out.code, 5, "{refused:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("is locked: primary database"),
            "{refused:?}: {}",
            out.stderr
        );
    }
    assert_eq!(status(&cloud).await, "ACTIVE");
    cloud.run(&["unlock", "vm1"]).await.ok();
    cloud.run(&["stop", "vm1", "--wait"]).await.ok();
    assert_eq!(status(&cloud).await, "SHUTOFF");

    let actions = cloud
        .run(&["actions", "vm1", "-f", "value", "-c", "action"])
        .await;
    let names: Vec<&str> = actions.ok().lines().collect();
    for a in ["pause", "unpause", "suspend", "resume", "lock", "unlock"] {
        assert!(names.contains(&a), "{a} in {names:?}");
    }
    cloud.plane.shutdown().await;
}
