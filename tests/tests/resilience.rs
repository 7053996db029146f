//! Crashes, races and conflicts: a conductor killed mid-build, actions
//! that conflict with a server's state, and quotas under concurrency.

use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::ProjectId;
use cloud_store::Backend;
use cloud_test_utils::{ControlPlane, PlaneOptions, boot, wait_for_status};
use futures::future::join_all;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn conductor_killed_mid_build(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 2, FakeConfig::default())).await;
    for h in ["host-1", "host-2"] {
        plane
            .driver(h)
            .set_spawn_delay(Some(Duration::from_millis(1500)));
    }
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = admin.client.clone();

    // Killed while the host is spawning (the workflow waits for a report).
    let r = boot(&c, "spawning", "1", &image, json!({})).await;
    let spawning = r.body["server"]["id"].as_str().unwrap().to_owned();
    loop {
        let s = c.get(&format!("/compute/v2.1/servers/{spawning}")).await;
        if s.body["server"]["OS-EXT-STS:task_state"] == "spawning" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plane.kill_conductors();
    // Killed before any conductor picked the build up.
    let r = boot(&c, "queued", "1", &image, json!({})).await;
    assert_eq!(r.status, 202);
    let queued = r.body["server"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    plane.start_conductor();
    for id in [&spawning, &queued] {
        let s = wait_for_status(&c, id, &["ACTIVE", "ERROR"], T).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
    }
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_build_sqlite() {
    conductor_killed_mid_build(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_build_rabbitmq_postgres() {
    conductor_killed_mid_build(Backend::Postgres).await;
}

async fn conflicting_actions(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id)
        .await
        .to_string();
    let c = admin.client.clone();
    let action = |id: &str| format!("/compute/v2.1/servers/{id}/action");

    let r = boot(&c, "vm", "1", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    wait_for_status(&c, &id, &["ACTIVE"], T).await;
    // Starting an active server, a soft reboot of a stopped one.
    let r = c.post(&action(&id), json!({"os-start": null})).await;
    assert_eq!(r.status, 409);
    assert!(
        r.error_message().contains("vm_state active"),
        "{}",
        r.error_message()
    );
    assert_eq!(r.body["conflictingRequest"]["code"], 409);
    c.post(&action(&id), json!({"os-stop": null})).await;
    wait_for_status(&c, &id, &["SHUTOFF"], T).await;
    let r = c
        .post(&action(&id), json!({"reboot": {"type": "SOFT"}}))
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.error_message().contains("vm_state stopped"),
        "{}",
        r.error_message()
    );
    let r = c
        .post(&action(&id), json!({"reboot": {"type": "SIDEWAYS"}}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("SOFT or HARD"));

    // Reboot while deleting: the host is gone, so the delete waits.
    c.post(&action(&id), json!({"os-start": null})).await;
    wait_for_status(&c, &id, &["ACTIVE"], T).await;
    plane.stop_host("host-1").await;
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    let r = c
        .post(&action(&id), json!({"reboot": {"type": "HARD"}}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains("task_state deleting"),
        "{}",
        r.error_message()
    );
    let r = c.post(&action(&id), json!({"os-stop": null})).await;
    assert_eq!(r.status, 409);
    // A second delete is harmless.
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    // The delete completes without the host (it is down or never answers).
    wait_for_status(&c, &id, &["DELETED"], T).await;
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_actions_sqlite() {
    conflicting_actions(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_actions_rabbitmq_postgres() {
    conflicting_actions(Backend::Postgres).await;
}

async fn quota_race(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 2, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let image = active_image(store, &admin.project_id).await.to_string();
    let demo = plane.api.account("demo", "demo", "member").await;
    store
        .quota_set(&ProjectId::from_string(&demo.project_id), "instances", 10)
        .await
        .unwrap();
    let c = &demo.client;
    let replies = join_all((0..20).map(|i| {
        let image = image.clone();
        async move { boot(c, &format!("q{i}"), "1", &image, json!({})).await }
    }))
    .await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.status == 403).collect();
    assert_eq!(accepted, 10, "exactly the quota");
    assert_eq!(refused.len(), 10);
    for r in refused {
        assert!(
            r.error_message().contains("Quota exceeded for instances"),
            "{}",
            r.error_message()
        );
    }
    let limits = c.get("/compute/v2.1/servers").await;
    assert_eq!(limits.body["servers"].as_array().unwrap().len(), 10);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_race_sqlite() {
    quota_race(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_race_rabbitmq_postgres() {
    quota_race(Backend::Postgres).await;
}
