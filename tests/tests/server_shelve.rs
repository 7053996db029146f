//! Shelve, shelveOffload and unshelve through the real HTTP API, the
//! conductor and fake hosts, on both backends (issue 13, shelve): a
//! shelved-offloaded server holds no host and no allocations, its snapshot
//! is an image of its project, and unshelve boots that snapshot on a host
//! the scheduler picks anew, then deletes it; conductors killed in the
//! middle leave every server consistent.

use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_e2e::active_image;
use cloud_model::instance::PowerState;
use cloud_model::{InstanceId, Timestamp};
use cloud_store::{Backend, Claim, Store};
use cloud_test_utils::{Client, ControlPlane, PlaneOptions, Reply, boot, wait_for_status};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

async fn server(c: &Client, id: &str) -> Value {
    c.get(&format!("/compute/v2.1/servers/{id}")).await.body["server"].clone()
}

/// The events of the latest `action` of a server, by name, with results.
async fn events(c: &Client, id: &str, action: &str) -> Vec<(String, String)> {
    let list = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let req = list.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == action)
        .unwrap_or_else(|| panic!("no {action} action in {}", list.body))["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = c
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{req}"
        ))
        .await;
    a.body["instanceAction"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["result"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Waits until the server has no task; returns it.
async fn wait_idle(c: &Client, id: &str) -> Value {
    let deadline = std::time::Instant::now() + T;
    loop {
        let s = server(c, id).await;
        if s["OS-EXT-STS:task_state"].is_null() {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The shelve snapshot of server `name`, as its project sees it.
async fn shelve_images(c: &Client, name: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/image/v2/images?name={name}-shelved"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["images"].as_array().unwrap().clone()
}

/// `(resource class, amount)` the server holds, on which host.
async fn allocations(store: &Store, id: &str) -> Vec<(String, i64)> {
    store
        .allocations_of(InstanceId::parse(id).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|(_, class, used)| (class, used))
        .collect()
}

/// The server's host, as an admin sees it (`null` on none).
async fn host_of(admin: &Client, id: &str) -> Value {
    server(admin, id).await["OS-EXT-SRV-ATTR:host"].clone()
}

/// The amount of `class` in `held`.
fn held_of(held: &[(String, i64)], class: &str) -> i64 {
    held.iter().find(|(c, _)| c == class).map_or(0, |(_, n)| *n)
}

/// Boots `name` as `c` and waits for ACTIVE; returns its id and host.
async fn boot_active(c: &Client, admin: &Client, name: &str, image: &str) -> (String, String) {
    let r = boot(c, name, "1", image, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let host = host_of(admin, &id).await.as_str().unwrap().to_owned();
    (id, host)
}

/// With Nova's default `shelved_offload_time` 0: shelve goes straight to
/// SHELVED_OFFLOADED (no host, no allocations, no VM, the snapshot an
/// active image of the project); unshelve schedules anew, boots the
/// snapshot and deletes it.
async fn shelve_offload_unshelve(backend: Backend) {
    let mut opts = PlaneOptions::hosts(backend, 2, FakeConfig::default());
    opts.api = |c| c.image_sweep_interval_secs = 1;
    let plane = ControlPlane::start(opts).await;
    let store = plane.api.db.store.clone();
    let admin = plane.api.admin().await;
    let demo = plane.api.account("demo", "demo", "member").await;
    let image = active_image(&store, &demo.project_id).await.to_string();
    let c = &demo.client;
    let (id, host) = boot_active(c, &admin.client, "vm1", &image).await;
    let vm = InstanceId::parse(&id).unwrap();
    let held = allocations(&store, &id).await;
    assert!(!held.is_empty());

    // Only a shelved server can be unshelved or offloaded.
    let r = act(c, &id, json!({"unshelve": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains(&format!(
            "Cannot 'unshelve' instance {id} while it is in vm_state active"
        )),
        "{}",
        r.error_message()
    );
    let r = act(&admin.client, &id, json!({"shelveOffload": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error_message().contains("vm_state active"), "{}", r.body);

    let r = act(c, &id, json!({"shelve": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["SHELVED_OFFLOADED", "ERROR"], T).await;
    assert_eq!(s["status"], "SHELVED_OFFLOADED", "{s}");
    assert_eq!(s["OS-EXT-STS:vm_state"], "shelved_offloaded");
    assert_eq!(s["OS-EXT-STS:task_state"], Value::Null);
    assert_eq!(host_of(&admin.client, &id).await, Value::Null, "{s}");
    assert!(
        allocations(&store, &id).await.is_empty(),
        "allocations kept"
    );
    assert!(
        plane.driver(&host).info(vm).await.is_err(),
        "the VM is still on {host}"
    );
    // It still counts against the quota, as in Nova.
    let limits = c.get("/compute/v2.1/limits").await.body["limits"]["absolute"].clone();
    assert_eq!(limits["totalInstancesUsed"], 1, "{limits}");
    assert_eq!(limits["totalCoresUsed"], held_of(&held, "VCPU"), "{limits}");
    let images = shelve_images(c, "vm1").await;
    assert_eq!(images.len(), 1, "{images:?}");
    let snapshot = images[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(images[0]["status"], "active");
    assert_eq!(images[0]["image_type"], "snapshot");
    assert_eq!(images[0]["instance_uuid"], id.as_str());
    assert_eq!(images[0]["visibility"], "private");
    let snapshot_file = plane.api.data_dir.path().join("images").join(&snapshot);
    assert!(snapshot_file.exists(), "the snapshot's data");
    let shelve = events(c, &id, "shelve").await;
    for e in ["compute_shelve_instance", "compute_shelve_offload_instance"] {
        assert!(
            shelve.contains(&(e.to_owned(), "Success".to_owned())),
            "{e} in {shelve:?}"
        );
    }
    // Shelved-offloaded: no second shelve, no offload, no start.
    for action in ["shelve", "shelveOffload", "os-start"] {
        let r = act(&admin.client, &id, json!({ action: null })).await;
        assert_eq!(r.status, 409, "{action}: {}", r.body);
        assert!(
            r.error_message().contains("shelved_offloaded"),
            "{action}: {}",
            r.error_message()
        );
    }
    // 2.77's availability zone is refused at our 2.1, naming the version.
    let r = act(c, &id, json!({"unshelve": {"availability_zone": "nova"}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error_message().contains("2.77"), "{}", r.error_message());
    assert_eq!(server(c, &id).await["status"], "SHELVED_OFFLOADED");

    let r = act(c, &id, json!({"unshelve": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    let new_host = host_of(&admin.client, &id)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(allocations(&store, &id).await, held, "allocations again");
    assert_eq!(
        plane.driver(&new_host).root_image(vm).as_deref(),
        Some(snapshot.as_str()),
        "booted from the shelve snapshot"
    );
    let r = c.get(&format!("/image/v2/images/{snapshot}")).await;
    assert_eq!(r.status, 404, "the snapshot was not deleted: {}", r.body);
    assert!(shelve_images(c, "vm1").await.is_empty());
    // The API's sweep removes the data of the record the conductor deleted.
    let gone = Instant::now() + Duration::from_secs(10);
    while snapshot_file.exists() && Instant::now() < gone {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!snapshot_file.exists(), "the used snapshot's data was kept");
    let unshelve = events(c, &id, "unshelve").await;
    assert!(
        unshelve.contains(&("compute_unshelve_instance".to_owned(), "Success".to_owned())),
        "{unshelve:?}"
    );

    // Shelved and offloaded again, it is deleted, snapshot and all.
    assert_eq!(act(c, &id, json!({"shelve": null})).await.status, 202);
    wait_for_status(c, &id, &["SHELVED_OFFLOADED"], T).await;
    assert_eq!(shelve_images(c, "vm1").await.len(), 1);
    let r = c.delete(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    wait_for_status(c, &id, &["DELETED"], T).await;
    assert!(shelve_images(c, "vm1").await.is_empty(), "snapshot kept");
    assert!(allocations(&store, &id).await.is_empty());
    plane.shutdown().await;
}

/// With `shelved_offload_time` -1 a shelved server stays on its host
/// (SHELVED, powered off, holding its allocations) until an admin offloads
/// it; unshelving a SHELVED server starts it where it is.
async fn shelve_without_offload(backend: Backend) {
    let mut opts = PlaneOptions::hosts(backend, 1, FakeConfig::default());
    opts.conductor.shelved_offload_time = -1;
    let plane = ControlPlane::start(opts).await;
    let store = plane.api.db.store.clone();
    let admin = plane.api.admin().await;
    let demo = plane.api.account("demo", "demo", "member").await;
    let image = active_image(&store, &demo.project_id).await.to_string();
    let c = &demo.client;
    let (id, host) = boot_active(c, &admin.client, "vm2", &image).await;
    let vm = InstanceId::parse(&id).unwrap();
    let driver = plane.driver(&host);
    let held = allocations(&store, &id).await;

    // A snapshot the host cannot take fails the shelve: the server stays
    // ACTIVE and no snapshot image is left.
    driver.fail_next_snapshots(1, "no space left for the snapshot");
    assert_eq!(act(c, &id, json!({"shelve": null})).await.status, 202);
    let s = wait_idle(c, &id).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert!(shelve_images(c, "vm2").await.is_empty());
    let failed = events(c, &id, "shelve").await;
    assert!(
        failed.iter().any(|(_, result)| result == "Error"),
        "{failed:?}"
    );

    // Stopped servers shelve too.
    assert_eq!(act(c, &id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, &id, &["SHUTOFF"], T).await;
    assert_eq!(act(c, &id, json!({"shelve": null})).await.status, 202);
    let s = wait_for_status(c, &id, &["SHELVED", "ERROR"], T).await;
    assert_eq!(s["status"], "SHELVED", "{s}");
    assert_eq!(host_of(&admin.client, &id).await, host.as_str());
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    assert_eq!(allocations(&store, &id).await, held);
    assert_eq!(
        driver.info(vm).await.unwrap().power_state,
        PowerState::Shutdown
    );
    let r = act(c, &id, json!({"shelve": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error_message().contains("vm_state shelved"), "{}", r.body);
    let snapshot = shelve_images(c, "vm2").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Unshelve of a SHELVED server: started in place, snapshot deleted.
    assert_eq!(act(c, &id, json!({"unshelve": null})).await.status, 202);
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(host_of(&admin.client, &id).await, host.as_str());
    assert_eq!(
        driver.info(vm).await.unwrap().power_state,
        PowerState::Running
    );
    assert_eq!(
        c.get(&format!("/image/v2/images/{snapshot}")).await.status,
        404
    );

    // Shelved again; the periodic pass leaves it (-1); only an admin may
    // offload it (Nova's default policy).
    assert_eq!(act(c, &id, json!({"shelve": null})).await.status, 202);
    wait_for_status(c, &id, &["SHELVED"], T).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server(c, &id).await["status"], "SHELVED");
    let r = act(c, &id, json!({"shelveOffload": null})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = act(&admin.client, &id, json!({"shelveOffload": null})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s = wait_for_status(c, &id, &["SHELVED_OFFLOADED", "ERROR"], T).await;
    assert_eq!(s["status"], "SHELVED_OFFLOADED", "{s}");
    assert_eq!(host_of(&admin.client, &id).await, Value::Null);
    assert!(allocations(&store, &id).await.is_empty());
    assert!(driver.info(vm).await.is_err());
    let offload = events(c, &id, "shelveOffload").await;
    assert!(
        offload.contains(&(
            "compute_shelve_offload_instance".to_owned(),
            "Success".to_owned()
        )),
        "{offload:?}"
    );
    // Its owner deleted the snapshot: there is nothing to unshelve.
    let snapshot = shelve_images(c, "vm2").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.delete(&format!("/image/v2/images/{snapshot}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = act(c, &id, json!({"unshelve": null})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message()
            .contains(&format!("its shelve snapshot {snapshot} was deleted")),
        "{}",
        r.error_message()
    );
    assert_eq!(server(c, &id).await["status"], "SHELVED_OFFLOADED");
    let r = c.delete(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(r.status, 204);
    wait_for_status(c, &id, &["DELETED"], T).await;
    assert!(shelve_images(c, "vm2").await.is_empty());
    plane.shutdown().await;
}

/// Conductors killed in the middle of a shelve (the host's report waits
/// for the next one) and of an unshelve (the dead one had the host claimed
/// and recorded its step): the conductor started next finishes both, and
/// the allocations match where each server is.
async fn conductor_killed_mid_shelve_and_unshelve(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 2, FakeConfig::default())).await;
    let store = plane.api.db.store.clone();
    let admin = plane.api.admin().await;
    let image = active_image(&store, &admin.project_id).await.to_string();
    let c = &admin.client;
    let (a, _) = boot_active(c, c, "crash-a", &image).await;
    let (b, b_host) = boot_active(c, c, "crash-b", &image).await;
    let held: std::collections::BTreeMap<String, i64> =
        allocations(&store, &b).await.into_iter().collect();
    assert_eq!(act(c, &b, json!({"shelve": null})).await.status, 202);
    wait_for_status(c, &b, &["SHELVED_OFFLOADED"], T).await;

    let (d, _) = boot_active(c, c, "crash-d", &image).await;
    assert_eq!(act(c, &d, json!({"shelve": null})).await.status, 202);
    wait_for_status(c, &d, &["SHELVED_OFFLOADED"], T).await;

    plane.kill_conductors();
    // d: its snapshot goes while the unshelve waits for a conductor.
    assert_eq!(act(c, &d, json!({"unshelve": null})).await.status, 202);
    let did = InstanceId::parse(&d).unwrap();
    let gone = store.shelve_get(did).await.unwrap().unwrap().image_id;
    store.image_delete(gone).await.unwrap();
    // a: the host shelves it; its report waits for a conductor.
    assert_eq!(act(c, &a, json!({"shelve": null})).await.status, 202);
    // b: the dead conductor had a host claimed (the other one) and
    // recorded the step after it; its lease still runs, but it is known
    // dead.
    assert_eq!(act(c, &b, json!({"unshelve": null})).await.status, 202);
    let bid = InstanceId::parse(&b).unwrap();
    let target = if b_host == "host-1" {
        "host-2"
    } else {
        "host-1"
    };
    let provider = store.compute_node(target).await.unwrap().provider_id;
    let claimed = store
        .placement_claim(&Claim {
            provider_id: provider,
            host: target.to_owned(),
            consumer: bid,
            vcpus: held["VCPU"],
            memory_mb: held["MEMORY_MB"],
            disk_gb: held["DISK_GB"],
            pinned_cpus: Vec::new(),
            hugepages: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(claimed, Ok(()));
    let now = Timestamp::now().micros();
    let until = Timestamp::now().plus_seconds(300).micros();
    let db = &plane.api.db;
    db.execute(&format!(
        "INSERT INTO conductors (id, host, session, started_at, alive_until) \
         VALUES ('conductor-dead', 'elsewhere', NULL, 0, {})",
        now - 1
    ))
    .await;
    db.execute(&format!(
        "UPDATE instances SET host = '{h}', node = '{h}' WHERE id = '{b}'",
        h = target
    ))
    .await;
    db.execute(&format!(
        "UPDATE workflows SET step = 'networking', owner = 'conductor-dead', \
         lease_until = {until}, data = '{{\"host\": \"{h}\"}}' WHERE id = 'unshelve:{b}'",
        h = target
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server(c, &b).await["OS-EXT-STS:task_state"], "unshelving");

    plane.start_conductor();
    let s = wait_for_status(c, &a, &["SHELVED_OFFLOADED", "ERROR"], T).await;
    assert_eq!(s["status"], "SHELVED_OFFLOADED", "{s}");
    assert!(allocations(&store, &a).await.is_empty());
    // d cannot boot: it stays SHELVED_OFFLOADED, holding nothing, and its
    // unshelve failed saying why.
    let s = wait_idle(c, &d).await;
    assert_eq!(s["status"], "SHELVED_OFFLOADED", "{s}");
    assert!(allocations(&store, &d).await.is_empty());
    let failed = events(c, &d, "unshelve").await;
    assert!(
        failed.iter().any(|(_, result)| result == "Error"),
        "{failed:?}"
    );
    let s = wait_for_status(c, &b, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], target);
    let held = store.allocations_of(bid).await.unwrap();
    assert!(!held.is_empty());
    assert!(
        held.iter().all(|(p, _, _)| *p == provider),
        "allocations elsewhere than on {}: {held:?}",
        target
    );
    assert!(
        plane
            .driver(target)
            .info(bid)
            .await
            .is_ok_and(|i| i.power_state == PowerState::Running)
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shelve_offload_unshelve_sqlite() {
    shelve_offload_unshelve(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shelve_offload_unshelve_rabbitmq_postgres() {
    shelve_offload_unshelve(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shelve_without_offload_sqlite() {
    shelve_without_offload(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shelve_without_offload_rabbitmq_postgres() {
    shelve_without_offload(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_shelve_and_unshelve_sqlite() {
    conductor_killed_mid_shelve_and_unshelve(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_shelve_and_unshelve_rabbitmq_postgres() {
    conductor_killed_mid_shelve_and_unshelve(Backend::Postgres).await;
}
