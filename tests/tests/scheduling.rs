//! Scheduling through the whole control plane: capacity under
//! concurrency (with one and two schedulers), server groups, NUMA
//! pinning, rescheduling after a failed spawn, and hosts going down.

use cloud_driver_fake::FakeConfig;
use cloud_e2e::{active_image, flavor, unlimited_quota};
use cloud_model::InstanceId;
use cloud_store::Backend;
use cloud_test_utils::{ControlPlane, PlaneOptions, boot, wait_for_status};
use futures::future::join_all;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn host_of(s: &Value) -> String {
    s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or("").to_owned()
}

async fn capacity_under_concurrency(backend: Backend, schedulers: usize) {
    // Three hosts with 14 + 13 + 13 vCPUs: room for exactly 40 one-vCPU servers.
    let mut opts = PlaneOptions::hosts(backend, 0, FakeConfig::default());
    for (name, vcpus) in [("host-1", 14), ("host-2", 13), ("host-3", 13)] {
        opts.hosts.push((
            name.to_owned(),
            FakeConfig {
                vcpus,
                memory_mb: 65536,
                ..FakeConfig::default()
            },
        ));
    }
    opts.schedulers = schedulers;
    let plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    unlimited_quota(store, &admin.project_id).await;
    let image = active_image(store, &admin.project_id).await.to_string();
    let c = &admin.client;
    let replies = join_all((0..50).map(|i| {
        let image = image.clone();
        async move { boot(c, &format!("vm{i}"), "1", &image, json!({})).await }
    }))
    .await;
    let ids: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 202, "{}", r.body);
            r.body["server"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let finals = join_all(
        ids.iter()
            .map(|id| wait_for_status(c, id, &["ACTIVE", "ERROR"], T)),
    )
    .await;
    let active = finals.iter().filter(|s| s["status"] == "ACTIVE").count();
    let errors: Vec<&Value> = finals.iter().filter(|s| s["status"] == "ERROR").collect();
    assert_eq!(active, 40, "exactly the capacity must be used");
    assert_eq!(errors.len(), 10);
    for e in errors {
        let msg = e["fault"]["message"].as_str().unwrap();
        assert!(msg.starts_with("No valid host was found: 3 hosts"), "{msg}");
        assert!(
            msg.contains("CoreFilter removed 3 (needs 1 vCPU(s), best has 0 vCPU(s) free)"),
            "{msg}"
        );
    }
    let mut per_host: HashMap<String, i64> = HashMap::new();
    for s in finals.iter().filter(|s| s["status"] == "ACTIVE") {
        *per_host.entry(host_of(s)).or_default() += 1;
    }
    for (host, cap) in [("host-1", 14), ("host-2", 13), ("host-3", 13)] {
        let node = store.compute_node(host).await.unwrap();
        assert!(
            node.vcpu.used <= cap,
            "{host} over-allocated: {}",
            node.vcpu.used
        );
        assert_eq!(node.vcpu.used, per_host.get(host).copied().unwrap_or(0));
        assert_eq!(plane.driver(host).vm_count() as i64, node.vcpu.used);
    }
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_boots_for_forty_slots_sqlite() {
    capacity_under_concurrency(Backend::Sqlite, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_boots_for_forty_slots_rabbitmq_postgres_two_schedulers() {
    capacity_under_concurrency(Backend::Postgres, 2).await;
}

async fn server_groups(backend: Backend) {
    let plane = ControlPlane::start(PlaneOptions::hosts(backend, 2, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let image = active_image(store, &admin.project_id).await.to_string();
    let c = &admin.client;
    let g = c
        .post(
            "/compute/v2.1/os-server-groups",
            json!({"server_group": {"name": "spread", "policies": ["anti-affinity"]}}),
        )
        .await;
    assert_eq!(g.status, 200, "{}", g.body);
    let gid = g.body["server_group"]["id"].as_str().unwrap().to_owned();
    let mut finals = Vec::new();
    for i in 0..3 {
        // One at a time: anti-affinity is checked against placed members.
        let r = boot(c, &format!("anti{i}"), "1", &image, json!({})).await;
        let _ = r;
        let r = c
            .post(
                "/compute/v2.1/servers",
                json!({"server": {"name": format!("a{i}"), "flavorRef": "1", "imageRef": image, "networks": "none"},
                       "os:scheduler_hints": {"group": gid}}),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        finals.push(wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await);
    }
    let active: Vec<&Value> = finals.iter().filter(|s| s["status"] == "ACTIVE").collect();
    assert_eq!(active.len(), 2);
    assert_ne!(host_of(active[0]), host_of(active[1]));
    let err = finals
        .iter()
        .find(|s| s["status"] == "ERROR")
        .expect("third fails");
    let msg = err["fault"]["message"].as_str().unwrap();
    assert!(
        msg.contains("ServerGroupAntiAffinityFilter removed 2"),
        "{msg}"
    );

    let g = c
        .post(
            "/compute/v2.1/os-server-groups",
            json!({"server_group": {"name": "pack", "policies": ["affinity"]}}),
        )
        .await;
    let gid = g.body["server_group"]["id"].as_str().unwrap().to_owned();
    let mut hosts = Vec::new();
    for i in 0..3 {
        let r = c
            .post(
                "/compute/v2.1/servers",
                json!({"server": {"name": format!("p{i}"), "flavorRef": "1", "imageRef": image, "networks": "none"},
                       "os:scheduler_hints": {"group": gid}}),
            )
            .await;
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        hosts.push(host_of(&s));
    }
    assert!(hosts.iter().all(|h| *h == hosts[0]), "affinity: {hosts:?}");
    let members = c
        .get(&format!("/compute/v2.1/os-server-groups/{gid}"))
        .await;
    assert_eq!(
        members.body["server_group"]["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_groups_sqlite() {
    server_groups(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_groups_rabbitmq_postgres() {
    server_groups(Backend::Postgres).await;
}

async fn numa_pinning(backend: Backend) {
    let mut opts = PlaneOptions::hosts(backend, 0, FakeConfig::default());
    // host-1: two cells of 4 CPUs; host-2: two cells of 3 CPUs.
    opts.hosts.push((
        "host-1".into(),
        FakeConfig {
            vcpus: 8,
            numa_cells: 2,
            ..FakeConfig::default()
        },
    ));
    opts.hosts.push((
        "host-2".into(),
        FakeConfig {
            vcpus: 6,
            numa_cells: 2,
            memory_mb: 65536,
            ..FakeConfig::default()
        },
    ));
    let plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    unlimited_quota(store, &admin.project_id).await;
    flavor(
        store,
        "pinned4",
        4,
        1024,
        &[("hw:cpu_policy", "dedicated"), ("hw:numa_nodes", "1")],
    )
    .await;
    let image = active_image(store, &admin.project_id).await.to_string();
    let c = &admin.client;
    let mut placed = Vec::new();
    for i in 0..3 {
        let r = boot(c, &format!("pin{i}"), "pinned4", &image, json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        placed.push(wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await);
    }
    for s in &placed[..2] {
        assert_eq!(s["status"], "ACTIVE", "{s}");
        assert_eq!(
            host_of(s),
            "host-1",
            "only host-1 has 4 free CPUs in one cell"
        );
    }
    assert_eq!(placed[2]["status"], "ERROR");
    let msg = placed[2]["fault"]["message"].as_str().unwrap();
    assert!(
        msg.contains("CoreFilter removed 1"),
        "host-1 is full: {msg}"
    );
    assert!(msg.contains("NUMATopologyFilter removed 1"), "{msg}");
    assert!(msg.contains("best cell has 3: host-2"), "{msg}");
    let node = store.compute_node("host-1").await.unwrap();
    let pins = store.pinned_cpus(node.provider_id).await.unwrap();
    let cpus: Vec<u32> = pins.iter().map(|(c, _)| *c).collect();
    assert_eq!(cpus, (0..8).collect::<Vec<u32>>(), "each CPU pinned once");
    let owners: std::collections::HashSet<InstanceId> = pins.iter().map(|(_, o)| *o).collect();
    assert_eq!(owners.len(), 2);
    // Deleting one frees its CPUs for the next.
    let first = placed[0]["id"].as_str().unwrap();
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{first}"))
            .await
            .status,
        204
    );
    wait_for_status(c, first, &["DELETED"], T).await;
    assert_eq!(store.pinned_cpus(node.provider_id).await.unwrap().len(), 4);
    let r = boot(c, "pin-again", "pinned4", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numa_pinning_sqlite() {
    numa_pinning(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numa_pinning_rabbitmq_postgres() {
    numa_pinning(Backend::Postgres).await;
}

async fn reschedule_after_failed_spawn(backend: Backend) {
    let mut opts = PlaneOptions::hosts(backend, 0, FakeConfig::default());
    // host-1 has the most free RAM, so it is tried first.
    opts.hosts.push((
        "host-1".into(),
        FakeConfig {
            memory_mb: 65536,
            ..FakeConfig::default()
        },
    ));
    opts.hosts.push(("host-2".into(), FakeConfig::default()));
    let plane = ControlPlane::start(opts).await;
    plane
        .driver("host-1")
        .fail_next_spawns(1, "disk full on host-1");
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let image = active_image(store, &admin.project_id).await.to_string();
    let c = &admin.client;
    let r = boot(c, "resched", "1", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(host_of(&s), "host-2");
    let node = store.compute_node("host-1").await.unwrap();
    assert_eq!(node.vcpu.used, 0, "the failed host's claim was released");
    let actions = c
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let req = actions.body["instanceActions"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = c
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{req}"
        ))
        .await;
    let events = a.body["instanceAction"]["events"].as_array().unwrap();
    let failed = events
        .iter()
        .find(|e| e["event"] == "compute_spawn" && e["result"] == "Error")
        .expect("the failed attempt is recorded");
    assert!(
        failed["traceback"]
            .as_str()
            .unwrap()
            .contains("disk full on host-1"),
        "{failed}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "compute_spawn" && e["result"] == "Success")
    );

    // Every host failing ends in ERROR with a fault naming each host.
    plane
        .driver("host-1")
        .fail_next_spawns(5, "no space on host-1");
    plane
        .driver("host-2")
        .fail_next_spawns(5, "no space on host-2");
    let r = boot(c, "doomed", "1", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ERROR");
    let msg = s["fault"]["message"].as_str().unwrap();
    assert!(
        msg.contains("host-1: ") && msg.contains("no space on host-1"),
        "{msg}"
    );
    assert!(
        msg.contains("host-2: ") && msg.contains("no space on host-2"),
        "{msg}"
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reschedule_after_failed_spawn_sqlite() {
    reschedule_after_failed_spawn(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reschedule_after_failed_spawn_rabbitmq_postgres() {
    reschedule_after_failed_spawn(Backend::Postgres).await;
}

async fn host_down(backend: Backend) {
    let mut plane =
        ControlPlane::start(PlaneOptions::hosts(backend, 2, FakeConfig::default())).await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let image = active_image(store, &admin.project_id).await.to_string();
    let c = admin.client.clone();
    plane.stop_host("host-1").await;
    // The host is down within the configured interval (3 s in tests).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.get("/compute/v2.1/os-services?binary=nova-compute").await;
        let s1 = r.body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == "host-1")
            .cloned()
            .unwrap();
        if s1["state"] == "down" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "host-1 never went down: {s1}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..4 {
        let r = boot(&c, &format!("after{i}"), "1", &image, json!({})).await;
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        let s = wait_for_status(&c, &id, &["ACTIVE", "ERROR"], T).await;
        assert_eq!(s["status"], "ACTIVE");
        assert_eq!(host_of(&s), "host-2", "no new server on a down host");
    }
    // A disabled host gets nothing either, and the fault says so.
    let r = c
        .put(
            "/compute/v2.1/os-services/disable",
            json!({"host": "host-2", "binary": "nova-compute"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = boot(&c, "nowhere", "1", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(&c, &id, &["ACTIVE", "ERROR"], T).await;
    let msg = s["fault"]["message"].as_str().unwrap();
    assert!(msg.contains("ComputeFilter removed 2"), "{msg}");
    assert!(
        msg.contains("down: host-1") && msg.contains("disabled: host-2"),
        "{msg}"
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_down_sqlite() {
    host_down(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_down_rabbitmq_postgres() {
    host_down(Backend::Postgres).await;
}

/// Nova's forced host: an admin's `zone:host` lands on that host whatever
/// the weighers prefer; a member may not choose a host (403), and an
/// unknown host is a 400 at once, not an ERROR later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_forces_a_host_and_a_member_cannot() {
    let plane = ControlPlane::start(PlaneOptions::hosts(
        Backend::Sqlite,
        3,
        FakeConfig::default(),
    ))
    .await;
    let admin = plane.api.admin().await;
    let store = &plane.api.db.store;
    let image = active_image(store, &admin.project_id).await.to_string();
    for host in ["host-3", "host-1", "host-3"] {
        let r = boot(
            &admin.client,
            "forced",
            "1",
            &image,
            json!({"availability_zone": format!("nova:{host}")}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        let s = wait_for_status(&admin.client, &id, &["ACTIVE", "ERROR"], T).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        assert_eq!(host_of(&s), host);
        // The zone shows without the forced host, as in Nova.
        assert_eq!(s["OS-EXT-AZ:availability_zone"], "nova", "{s}");
    }
    let r = boot(
        &admin.client,
        "nowhere",
        "1",
        &image,
        json!({"availability_zone": "nova:no-such-host"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.to_string().contains("no-such-host"), "{}", r.body);
    let member = plane.api.account("proj-m", "mia", "member").await;
    let r = boot(
        &member.client,
        "mine",
        "1",
        &image,
        json!({"availability_zone": "nova:host-1"}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    plane.shutdown().await;
}
