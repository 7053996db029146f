//! `cloud shelve|unshelve` against a running cloud (fake hosts) that does
//! not offload shelved servers by itself (`shelved_offload_time` -1): the
//! statuses they end in, the conflicts they meet (exit 5), the admin-only
//! offload (exit 3 for a member) and an unshelve from SHELVED_OFFLOADED.

mod common;

use cloud_driver_fake::FakeConfig;
use cloud_store::Backend;
use cloud_test_utils::{ADMIN_PASSWORD, PlaneOptions};
use common::Cloud;

async fn field(cloud: &Cloud, column: &str) -> String {
    cloud
        .run(&["show", "vm1", "-f", "value", "-c", column])
        .await
        .ok()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shelve_offload_and_unshelve_a_server() {
    let mut options = PlaneOptions::hosts(Backend::Sqlite, 1, FakeConfig::default());
    options.conductor.shelved_offload_time = -1;
    let cloud = Cloud::start_opts(options).await;
    cloud.image("cirros").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();
    let again = cloud.run(&["unshelve", "vm1"]).await;
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("while it is in vm_state active"),
        "{}",
        again.stderr
    );

    cloud.run(&["shelve", "vm1", "--wait"]).await.ok();
    assert_eq!(field(&cloud, "status").await, "SHELVED");
    let again = cloud.run(&["shelve", "vm1"]).await;
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("while it is in vm_state shelved"),
        "{}",
        again.stderr
    );
    // Offloading is an admin's (Nova's default policy).
    let refused = cloud.run(&["shelve", "vm1", "--offload"]).await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("shelve_offload"),
        "{}",
        refused.stderr
    );
    // Unshelved from SHELVED: started where it is.
    cloud.run(&["unshelve", "vm1", "--wait"]).await.ok();
    assert_eq!(field(&cloud, "status").await, "ACTIVE");

    // An admin shelves and offloads it in one go.
    let id = field(&cloud, "id").await;
    let admin = [
        ("OS_USERNAME", "admin"),
        ("OS_PASSWORD", ADMIN_PASSWORD),
        ("OS_PROJECT_NAME", "admin"),
    ];
    cloud
        .run_env(&["shelve", &id, "--offload", "--wait"], &admin)
        .await
        .ok();
    assert_eq!(field(&cloud, "status").await, "SHELVED_OFFLOADED");
    cloud.run(&["unshelve", "vm1", "--wait"]).await.ok();
    assert_eq!(field(&cloud, "status").await, "ACTIVE");
    let actions = cloud
        .run(&["actions", "vm1", "-f", "value", "-c", "action"])
        .await;
    let names: Vec<&str> = actions.ok().lines().collect();
    for a in ["shelve", "shelveOffload", "unshelve"] {
        assert!(names.contains(&a), "{a} in {names:?}");
    }
    cloud.plane.shutdown().await;
}
