//! Lock/unlock, pause/unpause and suspend/resume through the real HTTP API,
//! the conductor and fake hosts, on both backends (issue 13).

use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use cloud_store::Backend;
use cloud_test_utils::{Client, ControlPlane, PlaneOptions, Reply, boot, wait_for_status};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

async fn action_names(c: &Client, id: &str) -> Vec<String> {
    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    r.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn pause_and_suspend(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = &admin.client;
    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    let vm = InstanceId::parse(&id).unwrap();
    let driver = plane.driver(&host);

    // Only a paused server can be unpaused, only a suspended one resumed.
    for (action, state) in [("unpause", "active"), ("resume", "active")] {
        let r = act(c, &id, json!({ action: null })).await;
        assert_eq!(r.status, 409, "{action}: {}", r.body);
        assert!(
            r.error_message().contains(&format!(
                "Cannot '{action}' instance {id} while it is in vm_state {state}"
            )),
            "{}",
            r.error_message()
        );
    }

    // Pause: ACTIVE -> PAUSED, power state 3, the hypervisor's VM paused.
    let r = act(c, &id, json!({"pause": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["PAUSED"], T).await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "paused");
    assert_eq!(s["OS-EXT-STS:power_state"], 3);
    assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);
    assert_eq!(
        driver.info(vm).await.unwrap().power_state,
        PowerState::Paused
    );
    // The power sync (every second here) leaves a paused server paused.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone();
    assert_eq!(s["status"], "PAUSED", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 3);
    // Paused: no second pause, no stop, no suspend from here.
    for action in ["pause", "os-stop", "suspend"] {
        let r = act(c, &id, json!({ action: null })).await;
        assert_eq!(r.status, 409, "{action}: {}", r.body);
        assert!(
            r.error_message().contains("vm_state paused"),
            "{}",
            r.error_message()
        );
    }
    let r = act(c, &id, json!({"unpause": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["ACTIVE"], T).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(
        driver.info(vm).await.unwrap().power_state,
        PowerState::Running
    );

    // Suspend: ACTIVE -> SUSPENDED (the VM is saved and off), resume back.
    let r = act(c, &id, json!({"suspend": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["SUSPENDED"], T).await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "suspended");
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    // Nor does it take a suspended (saved, shut off) VM for a stopped one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone();
    assert_eq!(s["status"], "SUSPENDED", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    for action in ["suspend", "pause", "os-start", "unpause"] {
        let r = act(c, &id, json!({ action: null })).await;
        assert_eq!(r.status, 409, "{action}: {}", r.body);
        assert!(
            r.error_message().contains("vm_state suspended"),
            "{}",
            r.error_message()
        );
    }
    let r = act(c, &id, json!({"resume": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["ACTIVE"], T).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    // Resumed, not rebooted: the guest did not boot again.
    let console = driver.console_output(vm, 1 << 20).await.unwrap();
    assert!(console.contains("TESTGUEST RESUMED"), "{console}");
    assert_eq!(console.matches("login: booted").count(), 1, "{console}");

    let names = action_names(c, &id).await;
    for a in ["pause", "unpause", "suspend", "resume"] {
        assert!(names.iter().any(|n| n == a), "{a} in {names:?}");
    }

    // A paused server can still be deleted, and is.
    act(c, &id, json!({"pause": null})).await;
    wait_for_status(c, &id, &["PAUSED"], T).await;
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    wait_for_status(c, &id, &["DELETED"], T).await;
    plane.shutdown().await;
}

async fn lock_and_unlock(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let demo = plane.api.account("demo", "demo", "member").await;
    let bob = plane.api.account("demo", "bob", "member").await;
    let c = &demo.client;
    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // Bad reasons are 400s and lock nothing.
    for bad in [
        json!({"lock": {"locked_reason": 5}}),
        json!({"lock": {"reason": "x"}}),
        json!({"lock": {"locked_reason": "x".repeat(256)}}),
        json!({"lock": "x"}),
    ] {
        let r = act(c, &id, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    assert_eq!(act(c, &id, json!({"os-start": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // Locked by its owner: members (the locker or not) are refused every
    // action with a 409 naming the lock and its reason.
    let r = act(
        c,
        &id,
        json!({"lock": {"locked_reason": "database primary"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let expected = format!("Instance {id} is locked: database primary");
    for (who, client) in [("demo", c), ("bob", &bob.client)] {
        for body in [
            json!({"os-stop": null}),
            json!({"reboot": {"type": "HARD"}}),
            json!({"pause": null}),
            json!({"suspend": null}),
        ] {
            let r = act(client, &id, body.clone()).await;
            assert_eq!(r.status, 409, "{who} {body}: {}", r.body);
            assert_eq!(r.error_message(), expected, "{who} {body}");
        }
        let r = client.delete(&format!("/compute/v2.1/servers/{id}")).await;
        assert_eq!(r.status, 409, "{who} delete: {}", r.body);
        assert_eq!(r.error_message(), expected);
    }
    let s = c.get(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(s.body["server"]["status"], "ACTIVE", "nothing happened");
    assert_eq!(s.body["server"]["OS-EXT-STS:task_state"], Value::Null);

    // An admin acts regardless.
    let a = &admin.client;
    assert_eq!(act(a, &id, json!({"pause": null})).await.status, 202);
    wait_for_status(c, &id, &["PAUSED"], T).await;
    assert_eq!(act(a, &id, json!({"unpause": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // Anyone of the project may lift the owner's lock; then actions work.
    assert_eq!(
        act(&bob.client, &id, json!({"unlock": null})).await.status,
        202
    );
    assert_eq!(act(c, &id, json!({"pause": null})).await.status, 202);
    wait_for_status(c, &id, &["PAUSED"], T).await;
    assert_eq!(act(c, &id, json!({"unpause": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // An admin's lock (no reason) binds the project, which cannot lift it.
    assert_eq!(act(a, &id, json!({"lock": null})).await.status, 202);
    let r = act(c, &id, json!({"os-stop": null})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_message(), format!("Instance {id} is locked"));
    let r = act(c, &id, json!({"lock": null})).await;
    assert_eq!(r.status, 202, "locking again changes nothing: {}", r.body);
    let r = act(c, &id, json!({"unlock": null})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 409);
    assert_eq!(act(a, &id, json!({"unlock": null})).await.status, 202);
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;

    let names = action_names(c, &id).await;
    assert_eq!(
        names.iter().filter(|n| *n == "lock").count(),
        3,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "unlock").count(),
        2,
        "{names:?}"
    );
    // Another project's user cannot lock what it cannot see.
    let other = plane.api.account("other", "mallory", "member").await;
    assert_eq!(
        act(&other.client, &id, json!({"lock": null})).await.status,
        404
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_and_suspend_sqlite() {
    pause_and_suspend(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_and_suspend_rabbitmq_postgres() {
    pause_and_suspend(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_and_unlock_sqlite() {
    lock_and_unlock(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_and_unlock_rabbitmq_postgres() {
    lock_and_unlock(Backend::Postgres).await;
}

/// A pause (or unpause, suspend, resume) the host never reports ends at
/// the action deadline as a failed event of that action, not as a made-up
/// "reboot" action in the server's action log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_the_host_never_reports_fails_as_a_pause() {
    let mut opts = PlaneOptions::hosts(Backend::Sqlite, 1, FakeConfig::default());
    opts.conductor.reconcile_interval_secs = 0.2;
    let mut plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = admin.client.clone();
    let r = boot(&c, "vm1", "1", &image.to_string(), json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    wait_for_status(&c, &id, &["ACTIVE"], T).await;
    plane.stop_host("host-1").await;
    assert_eq!(act(&c, &id, json!({"pause": null})).await.status, 202);
    // The API gives a power action 300 s; bring the deadline forward.
    plane
        .api
        .db
        .execute(&format!(
            "UPDATE instances SET task_deadline = 1 WHERE id = '{id}'"
        ))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.get(&format!("/compute/v2.1/servers/{id}")).await;
        if s.body["server"]["OS-EXT-STS:task_state"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", s.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names = action_names(&c, &id).await;
    assert!(!names.contains(&"reboot".to_owned()), "{names:?}");
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let pause = actions.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "pause")
        .expect("the pause action")["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = c
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{pause}"
        ))
        .await;
    let events = detail.body["instanceAction"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "compute_pause" && e["result"] == "Error"),
        "{}",
        detail.body
    );
    plane.shutdown().await;
}

/// A hard reboot is the way out of PAUSED and SUSPENDED (Nova's
/// ALLOW_HARD_REBOOT): the guest boots afresh and the server is ACTIVE; a
/// suspended one's saved memory is dropped, not restored. A soft reboot
/// stays refused in both states.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hard_reboot_wakes_a_paused_or_suspended_server() {
    let plane = ControlPlane::start(PlaneOptions::hosts(
        Backend::Sqlite,
        1,
        FakeConfig::default(),
    ))
    .await;
    let admin = plane.api.admin().await;
    let image = active_image(&plane.api.db.store, &admin.project_id).await;
    let c = &admin.client;
    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let driver = plane.driver(s["OS-EXT-SRV-ATTR:host"].as_str().unwrap());
    let vm = InstanceId::parse(&id).unwrap();

    for (freeze, status, boots) in [("pause", "PAUSED", 2), ("suspend", "SUSPENDED", 3)] {
        assert_eq!(act(c, &id, json!({ freeze: null })).await.status, 202);
        wait_for_status(c, &id, &[status], T).await;
        let soft = act(c, &id, json!({"reboot": {"type": "SOFT"}})).await;
        assert_eq!(soft.status, 409, "{freeze}: {}", soft.body);
        let hard = act(c, &id, json!({"reboot": {"type": "HARD"}})).await;
        assert_eq!(hard.status, 202, "{freeze}: {}", hard.body);
        let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
        assert_eq!(s["status"], "ACTIVE", "{freeze}: {s}");
        assert_eq!(s["OS-EXT-STS:power_state"], 1, "{freeze}: {s}");
        assert_eq!(s["OS-EXT-STS:task_state"], Value::Null, "{freeze}: {s}");
        assert_eq!(
            driver.info(vm).await.unwrap().power_state,
            PowerState::Running
        );
        // Booted again, not resumed.
        let console = driver.console_output(vm, 1 << 20).await.unwrap();
        assert_eq!(
            console.matches("login: booted").count(),
            boots,
            "{freeze}: {console}"
        );
        assert!(!console.contains("TESTGUEST RESUMED"), "{console}");
    }
    let names = action_names(c, &id).await;
    assert_eq!(
        names.iter().filter(|n| *n == "reboot").count(),
        2,
        "{names:?}"
    );
    plane.shutdown().await;
}
