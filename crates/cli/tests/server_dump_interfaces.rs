//! `cloud dump` and `cloud interfaces` against a running cloud (fake
//! hosts): the guest gets its NMI only in a state that allows one (exit 5
//! otherwise), and the interface table names the server's port, network,
//! MAC and address.

mod common;

use cloud_model::InstanceId;
use common::Cloud;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dump_a_server_and_list_its_interfaces() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud.network("app-net", "app-v4", "10.0.1.0/24").await;
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

    // interfaces: one row, the port on app-net with its MAC and address.
    let net = cloud
        .run(&["network", "show", "app-net", "-f", "value", "-c", "id"])
        .await
        .ok()
        .trim()
        .to_owned();
    let port = cloud
        .run(&["port", "list", "-f", "value", "-c", "id"])
        .await
        .ok()
        .trim()
        .to_owned();
    let out = cloud.run(&["interfaces", "vm1", "-f", "value"]).await;
    let rows: Vec<Vec<&str>> = out
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    let row = &rows[0];
    assert_eq!(row.len(), 5, "{}", out.stdout);
    assert_eq!(row[0], port, "port id");
    assert_eq!(row[1], net, "network id");
    assert_eq!(row[2].split(':').count(), 6, "MAC {}", row[2]);
    assert!(row[3].starts_with("10.0.1."), "fixed IP {}", row[3]);
    assert!(!row[4].is_empty(), "port state");
    let table = cloud.run(&["interfaces", "vm1"]).await;
    for header in [
        "Port ID",
        "Network ID",
        "MAC Address",
        "Fixed IPs",
        "Port State",
    ] {
        assert!(table.ok().contains(header), "{header}: {}", table.stdout);
    }

    // dump: an ACTIVE server's guest gets the NMI and keeps running.
    assert_eq!(cloud.run(&["dump", "vm1"]).await.ok(), "");
    assert_eq!(driver.nmi_count(vm), Some(1));
    let status = cloud
        .run(&["show", "vm1", "-f", "value", "-c", "status"])
        .await;
    assert_eq!(status.ok().trim(), "ACTIVE");

    // A stopped server cannot get one: a conflict naming the state.
    cloud.run(&["stop", "vm1", "--wait"]).await.ok();
    let refused = cloud.run(&["dump", "vm1"]).await;
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("stopped"),
        "names the state: {}",
        refused.stderr
    );
    assert_eq!(driver.nmi_count(vm), Some(1));

    let actions = cloud
        .run(&["actions", "vm1", "-f", "value", "-c", "action"])
        .await;
    assert!(
        actions.ok().lines().any(|a| a == "trigger_crash_dump"),
        "{}",
        actions.stdout
    );
    cloud.plane.shutdown().await;
}
