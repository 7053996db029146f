//! `cloud rescue` and `cloud unrescue` against a running cloud (fake
//! hosts): RESCUE with the rescue's admin password, another rescue image
//! by name, back to ACTIVE, and the conflicts (exit 5) and unknown images
//! (exit 4) a user meets.

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
async fn rescue_and_unrescue_a_server() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud.image("rescue-img").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();

    let out = cloud.run(&["unrescue", "vm1"]).await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("while it is in vm_state active"),
        "{}",
        out.stderr
    );
    let out = cloud
        .run(&["rescue", "vm1", "--image", "no-such-image"])
        .await;
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(status(&cloud).await, "ACTIVE");

    // Rescued with its own image: the password is printed once.
    let out = cloud.run(&["rescue", "vm1", "--wait", "-f", "json"]).await;
    let shown: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(shown["status"], "RESCUE", "{shown}");
    assert_eq!(shown["adminPass"].as_str().unwrap_or_default().len(), 12);
    assert_eq!(status(&cloud).await, "RESCUE");
    let out = cloud.run(&["rescue", "vm1"]).await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("while it is in vm_state rescued"),
        "{}",
        out.stderr
    );
    cloud.run(&["unrescue", "vm1", "--wait"]).await.ok();
    assert_eq!(status(&cloud).await, "ACTIVE");

    // Another rescue image, by name.
    let rescue_id = cloud
        .run(&["image", "show", "rescue-img", "-f", "value", "-c", "id"])
        .await
        .ok()
        .trim()
        .to_owned();
    let out = cloud
        .run(&[
            "rescue",
            "vm1",
            "--image",
            "rescue-img",
            "--wait",
            "-f",
            "value",
            "-c",
            "rescue_image",
        ])
        .await;
    assert_eq!(out.ok().trim(), rescue_id);
    assert_eq!(status(&cloud).await, "RESCUE");

    let actions = cloud
        .run(&["actions", "vm1", "-f", "value", "-c", "action"])
        .await;
    let names: Vec<&str> = actions.ok().lines().collect();
    assert_eq!(
        names.iter().filter(|n| **n == "rescue").count(),
        2,
        "{names:?}"
    );
    assert!(names.contains(&"unrescue"), "{names:?}");
    cloud.plane.shutdown().await;
}
