//! Power-state sync and agent restarts: the hypervisor's truth wins and
//! every drift is recorded; nothing is orphaned, nothing is lost.

use cloud_driver::{Driver, FlavorSpec, ImageSpec, VmSpec};
use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use cloud_store::Backend;
use cloud_test_utils::{ControlPlane, PlaneOptions, boot, wait_for_status};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn orphan_spec() -> VmSpec {
    VmSpec {
        id: InstanceId::new(),
        name: "orphan".into(),
        hostname: "orphan".into(),
        project_id: "p".into(),
        user_id: "u".into(),
        flavor: FlavorSpec {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            swap_mb: 0,
            ephemeral_gb: 0,
            extra_specs: BTreeMap::new(),
        },
        image: ImageSpec {
            id: "i".into(),
            disk_format: "raw".into(),
            size: 0,
            checksum: String::new(),
            sha512: None,
            properties: BTreeMap::new(),
        },
        kernel: None,
        ramdisk: None,
        nics: Vec::new(),
        user_data: None,
        metadata: BTreeMap::new(),
        key: None,
        availability_zone: "nova".into(),
        launch_index: 0,
        numa: None,
    }
}

async fn drift_and_restart(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = admin.client.clone();
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let r = boot(&c, name, "1", &image, json!({})).await;
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        wait_for_status(&c, &id, &["ACTIVE"], T).await;
        ids.push(id);
    }
    let driver = plane.driver("host-1");

    // The guest powers itself off: the next sync marks the server stopped
    // and records why.
    let a = InstanceId::parse(&ids[0]).unwrap();
    assert!(driver.set_power_state(a, PowerState::Shutdown));
    let s = wait_for_status(&c, &ids[0], &["SHUTOFF"], T).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    let actions = c
        .get(&format!(
            "/compute/v2.1/servers/{}/os-instance-actions",
            ids[0]
        ))
        .await;
    assert!(
        actions.body["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "power_sync"),
        "{}",
        actions.body
    );

    // While the agent is down, one VM vanishes and an unknown one appears.
    plane.stop_host("host-1").await;
    let b = InstanceId::parse(&ids[1]).unwrap();
    driver.destroy(b).await.unwrap();
    let orphan = orphan_spec();
    driver.spawn(&orphan).await.unwrap();
    plane.start_host("host-1");
    // The vanished VM's server is marked stopped with its real power state...
    let s = wait_for_status(&c, &ids[1], &["SHUTOFF"], T).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 0);
    // ...and the orphan is reaped.
    let deadline = Instant::now() + T;
    while driver.info(orphan.id).await.is_ok() {
        assert!(Instant::now() < deadline, "orphan VM was not reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stopped server still starts again on the restarted agent.
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{}/action", ids[0]),
            json!({"os-start": null}),
        )
        .await;
    assert_eq!(r.status, 202);
    wait_for_status(&c, &ids[0], &["ACTIVE"], T).await;
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_and_restart_sqlite() {
    drift_and_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_and_restart_rabbitmq_postgres() {
    drift_and_restart(Backend::Postgres).await;
}
