//! `cloud interface add|remove` against a running cloud (fake hosts): a
//! new port on a second network and the user's own port are attached to a
//! server (its VM gets the NICs, `cloud interfaces` lists them), a port in
//! use is refused (exit 5), and removing them deletes the port made for
//! the server and keeps the user's.

mod common;

use cloud_model::InstanceId;
use common::Cloud;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_and_remove_interfaces() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud.network("app-net", "app-v4", "10.0.1.0/24").await;
    cloud.network("db-net", "db-v4", "10.0.2.0/24").await;
    let id = cloud
        .run(&[
            "boot",
            "vm1",
            "--flavor",
            "m1.tiny",
            "--image",
            "cirros",
            "--nic",
            "net-id=app-net",
            "--wait",
            "-f",
            "value",
            "-c",
            "id",
        ])
        .await
        .ok()
        .trim()
        .to_owned();
    let vm = InstanceId::parse(&id).expect("server id");
    let driver = &cloud.plane.hosts[0].driver;

    // A new port on db-net at a chosen address.
    let added = cloud
        .run(&[
            "interface",
            "add",
            "vm1",
            "--network",
            "db-net",
            "--fixed-ip",
            "10.0.2.50",
            "-f",
            "json",
        ])
        .await
        .json();
    assert_eq!(added["fixed_ips"], "10.0.2.50", "{added}");
    let made = added["port_id"].as_str().unwrap().to_owned();
    assert_eq!(driver.nic_macs(vm).unwrap().len(), 2);
    // The user's own port, by name.
    cloud
        .run(&["port", "create", "mine", "--network", "app-net"])
        .await
        .ok();
    cloud
        .run(&["interface", "add", "vm1", "--port", "mine"])
        .await
        .ok();
    let listed = cloud
        .run(&["interfaces", "vm1", "-f", "value", "-c", "Port ID"])
        .await;
    assert_eq!(listed.ok().lines().count(), 3, "{}", listed.stdout);
    // Attached already: a conflict.
    let refused = cloud
        .run(&["interface", "add", "vm1", "--port", "mine"])
        .await;
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(refused.stderr.contains("in use"), "{}", refused.stderr);
    // --port and --network together is a usage error.
    let usage = cloud
        .run(&[
            "interface",
            "add",
            "vm1",
            "--port",
            "mine",
            "--network",
            "db-net",
        ])
        .await;
    assert_ne!(usage.code, 0);

    assert_eq!(
        cloud.run(&["interface", "remove", "vm1", &made]).await.ok(),
        ""
    );
    assert_eq!(
        cloud
            .run(&["interface", "remove", "vm1", "mine"])
            .await
            .ok(),
        ""
    );
    assert_eq!(driver.nic_macs(vm).unwrap().len(), 1);
    let gone = cloud.run(&["port", "show", &made]).await;
    assert_ne!(gone.code, 0, "the port made for the server is deleted");
    let kept = cloud
        .run(&["port", "show", "mine", "-f", "value", "-c", "device_id"])
        .await;
    assert_eq!(kept.ok().trim(), "", "the user's port is kept, unbound");
    cloud.plane.shutdown().await;
}
