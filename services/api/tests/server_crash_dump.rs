//! `trigger_crash_dump` through the real HTTP API, the compute agent and a
//! fake host, on both backends (issue 13): the NMI reaches the VM of an
//! ACTIVE or PAUSED server and the server carries on; other states are a
//! 409 naming the state, a host whose driver has no NMIs a 400 saying so,
//! a locked server a 409 for its non-admin users, another project's server
//! a 404; each attempt is an instance action.

use cloud_model::InstanceId;
use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, Reply, boot, record_active_image, wait_for_status,
};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

async fn dump(c: &Client, id: &str) -> Reply {
    act(c, id, json!({"trigger_crash_dump": null})).await
}

async fn crash_dump(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 1, Default::default())).await;
    let owner = plane.api.account("demo", "alice", "member").await;
    let c = &owner.client;
    let image = record_active_image(&plane.api.db.store, &owner.project_id, "img")
        .await
        .unwrap();
    let r = boot(c, "vm1", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let admin = plane.api.admin().await;
    // The host is an admin-only attribute.
    let s = admin
        .client
        .get(&format!("/compute/v2.1/servers/{id}"))
        .await;
    let driver = plane.driver(s.body["server"]["OS-EXT-SRV-ATTR:host"].as_str().unwrap());
    let vm = InstanceId::parse(&id).unwrap();

    // ACTIVE: the VM gets the NMI and keeps running.
    let r = dump(c, &id).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(driver.nmi_count(vm), Some(1));
    let s = c.get(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(s.body["server"]["status"], "ACTIVE");
    assert_eq!(s.body["server"]["OS-EXT-STS:task_state"], Value::Null);

    // PAUSED too.
    assert_eq!(act(c, &id, json!({"pause": null})).await.status, 202);
    wait_for_status(c, &id, &["PAUSED"], T).await;
    assert_eq!(dump(c, &id).await.status, 202);
    assert_eq!(driver.nmi_count(vm), Some(2));
    assert_eq!(act(c, &id, json!({"unpause": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // A stopped server: 409 naming its state, no NMI sent.
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    let r = dump(c, &id).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains(&format!(
            "Cannot 'trigger_crash_dump' instance {id} while it is in vm_state stopped"
        )),
        "{}",
        r.error_message()
    );
    assert_eq!(driver.nmi_count(vm), Some(2));
    assert_eq!(act(c, &id, json!({"os-start": null})).await.status, 202);
    wait_for_status(c, &id, &["ACTIVE"], T).await;

    // A host whose driver cannot send NMIs: a 400 that says so.
    driver.set_nmi_unsupported(true);
    let r = dump(c, &id).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_message()
            .contains("the fake driver cannot inject an NMI into VMs"),
        "{}",
        r.error_message()
    );
    driver.set_nmi_unsupported(false);

    // Locked by an admin: its non-admin users are refused.
    let r = act(
        &admin.client,
        &id,
        json!({"lock": {"locked_reason": "debugging"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = dump(c, &id).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains("locked"),
        "{}",
        r.error_message()
    );
    assert_eq!(driver.nmi_count(vm), Some(2));

    // Another project's user does not see the server.
    let other = plane.api.account("other", "mallory", "member").await;
    assert_eq!(dump(&other.client, &id).await.status, 404);

    // Each attempt that reached a host is an instance action with its event.
    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let dumps: Vec<&Value> = r.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "trigger_crash_dump")
        .collect();
    assert_eq!(dumps.len(), 3, "{}", r.body);
    let req = dumps.last().unwrap()["request_id"].as_str().unwrap();
    let r = c
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{req}"
        ))
        .await;
    let events = r.body["instanceAction"]["events"].as_array().unwrap();
    assert_eq!(
        events[0]["event"], "compute_trigger_crash_dump",
        "{}",
        r.body
    );
    assert_eq!(events[0]["result"], "Success", "{}", r.body);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_dump_sqlite() {
    crash_dump(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_dump_rabbitmq_postgres() {
    crash_dump(Backend::Postgres).await;
}
