//! The production layout: cloud-api, cloud-conductor, cloud-scheduler and
//! cloud-compute as separate processes, talking over RabbitMQ, with state
//! in PostgreSQL. A server boots to ACTIVE across them, every service
//! serves metrics, the agent uploads a snapshot with its `[image_api]`
//! account, and SIGTERM stops each one cleanly (exit 0).

use cloud_e2e::processes::ProcessPlane;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_in_separate_processes_boot_a_server() {
    let plane = ProcessPlane::start(&[]).await;
    let c = &plane.admin;
    let (cm, sm, km) = plane.metrics_ports;
    let (r, s) = plane.boot_active("proc-vm").await;
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], "proc-host");
    // The request id of the create appears in the instance action record
    // written by the conductor.
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    assert_eq!(
        actions.body["instanceActions"][0]["request_id"],
        r.header("x-openstack-request-id").unwrap()
    );
    for (port, what) in [
        (cm, "cloud_conductor_messages_total"),
        (sm, "cloud_scheduler_select_seconds"),
        (km, "cloud_compute_operation_seconds"),
    ] {
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(what), "metrics on {port} lack {what}");
    }
    // A snapshot: the agent process uploads it with its [image_api]
    // account.
    let r = c
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            serde_json::json!({"createImage": {"name": "proc-snap"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let location = r.header("location").unwrap().to_owned();
    let image = location.rsplit('/').next().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let i = c.get(&format!("/image/v2/images/{image}")).await;
        if i.body["status"] == "active" {
            assert_eq!(i.body["image_type"], "snapshot", "{}", i.body);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", i.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    cloud_test_utils::wait_for_status(c, &id, &["DELETED"], Duration::from_secs(60)).await;
    plane.stop();
}
