//! `cloud rebuild` against a running cloud (fake hosts): a new image,
//! name and metadata on the same server, the admin password printed once,
//! a stopped server that stays stopped, and the conflict (exit 5) of a
//! state that cannot be rebuilt.

mod common;

use common::Cloud;

async fn field(cloud: &Cloud, server: &str, column: &str) -> String {
    cloud
        .run(&["show", server, "-f", "value", "-c", column])
        .await
        .ok()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_a_server() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud.image("debian").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();
    let id = field(&cloud, "vm1", "id").await;

    let out = cloud
        .run(&[
            "rebuild",
            "vm1",
            "--image",
            "debian",
            "--name",
            "vm1b",
            "--property",
            "role=web",
            "--wait",
            "-f",
            "json",
        ])
        .await;
    let shown = out.json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
    assert!(
        shown["adminPass"].as_str().is_some_and(|p| !p.is_empty()),
        "{shown}"
    );
    assert_eq!(field(&cloud, "vm1b", "id").await, id);
    let server = cloud.run(&["show", "vm1b", "-f", "json"]).await.json();
    assert_eq!(server["metadata"]["role"], "web", "{server}");
    let debian = cloud
        .run(&["image", "show", "debian", "-f", "value", "-c", "id"])
        .await
        .ok()
        .trim()
        .to_owned();
    assert!(server["image"].to_string().contains(&debian), "{server}");

    // Stopped: rebuilt (same image by default) and still SHUTOFF.
    cloud.run(&["stop", "vm1b", "--wait"]).await.ok();
    let out = cloud
        .run(&["rebuild", "vm1b", "--wait", "-f", "value", "-c", "status"])
        .await;
    assert_eq!(out.ok().trim(), "SHUTOFF");
    let actions = cloud
        .run(&["actions", "vm1b", "-f", "value", "-c", "action"])
        .await;
    let rebuilds = actions.ok().lines().filter(|l| *l == "rebuild").count();
    assert_eq!(rebuilds, 2, "{}", actions.stdout);

    // Paused cannot be rebuilt: exit 5 naming the state.
    cloud.run(&["start", "vm1b", "--wait"]).await.ok();
    cloud.run(&["pause", "vm1b", "--wait"]).await.ok();
    let refused = cloud.run(&["rebuild", "vm1b"]).await;
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("vm_state paused"),
        "{}",
        refused.stderr
    );
    let bad = cloud
        .run(&["rebuild", "vm1b", "--property", "novalue"])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    cloud.plane.shutdown().await;
}
