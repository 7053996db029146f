//! The fault suite (issue 16): the production layout (API, conductor,
//! scheduler and four fake compute hosts as separate processes on
//! PostgreSQL and RabbitMQ) under a burst of concurrent boots, with one
//! process SIGKILLed in the middle of it. Each scenario must end with
//! nothing stuck (every server ACTIVE, SHUTOFF or ERROR with a real cause,
//! well before the 60 s lease a dead conductor's work used to wait for),
//! nothing lost, nothing over-allocated and no duplicate server.
//!
//! Two more scenarios, in one process: a conductor that died between
//! recording a delete's `waiting` step and telling the host (its successor
//! must send the destroy at once), and a host that is up but does not
//! confirm a delete by the deadline (the destroy is sent again); in both
//! the server must not be marked deleted before its VM is gone.

use cloud_driver_fake::FakeConfig;
use cloud_e2e::processes::{Service, binaries};
use cloud_e2e::{active_image, unlimited_quota};
use cloud_model::Timestamp;
use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, TestDb, boot, free_port, wait_for_status,
};
use futures::future::join_all;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Servers booted in each burst.
const BURST: usize = 40;
/// Fake hosts.
const HOSTS: usize = 4;
/// How long after the fault is repaired everything must have settled:
/// far below the conductor's 60 s lease.
const SETTLE: Duration = Duration::from_secs(30);

/// The production layout, each service a process that can be killed and
/// started again with the same configuration.
struct Cluster {
    bin: PathBuf,
    db: TestDb,
    dir: tempfile::TempDir,
    admin: Client,
    api: Option<Service>,
    conductor: Option<Service>,
    scheduler: Option<Service>,
    computes: Vec<Option<Service>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let bin = binaries();
        let db = TestDb::postgres().await;
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("f-{}", uuid::Uuid::new_v4().simple());
        let port = free_port();
        let bus = format!(
            "[bus]\namqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nprefix = \"{prefix}\"\n"
        );
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).unwrap();
        };
        write(
            "cloud-api.toml",
            format!(
                "[api]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nservice_down_secs = 10\n\n\
                 [api.bootstrap]\ndefault_flavors = true\n\n{bus}",
                dir.path().join("data").display()
            ),
        );
        // The lease stays at its default (60 s): recovery must not wait for it.
        write(
            "cloud-conductor.toml",
            format!(
                "[database]\n\n{bus}\n[conductor]\nservice_down_secs = 10\nspawn_timeout_secs = 15\n\
                 delete_timeout_secs = 10\nreconcile_interval_secs = 1.0\nheartbeat_secs = 1.0\n"
            ),
        );
        write(
            "cloud-scheduler.toml",
            format!("[database]\n\n{bus}\n[scheduler]\nservice_down_secs = 10\n"),
        );
        for i in 1..=HOSTS {
            write(
                &format!("compute-{i}.toml"),
                format!(
                    "[agent]\nhost = \"host-{i}\"\nheartbeat_secs = 1.0\n\n\
                     [driver]\nkind = \"fake\"\nspawn_delay_ms = 300\n\n{bus}"
                ),
            );
        }
        let mut c = Cluster {
            bin,
            db,
            dir,
            admin: Client::new(&format!("http://127.0.0.1:{port}")),
            api: None,
            conductor: None,
            scheduler: None,
            computes: (0..HOSTS).map(|_| None).collect(),
        };
        // The API migrates and bootstraps; start it first.
        c.api = Some(c.service("cloud-api", "cloud-api.toml"));
        let anon = c.admin.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/identity/v3", anon.base()))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "cloud-api did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.start_conductor();
        c.start_scheduler();
        for i in 1..=HOSTS {
            c.start_compute(i);
        }
        let r = anon
            .post("/identity/v3/auth/tokens", json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "faults"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        c.admin = anon.with_token(r.header("x-subject-token").unwrap());
        let project = r.body["token"]["project"]["id"].as_str().unwrap();
        unlimited_quota(&c.db.store, project).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let h = c.admin.get("/compute/v2.1/os-hypervisors").await;
            if h.body["hypervisors"]
                .as_array()
                .is_some_and(|a| a.len() == HOSTS)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "hosts did not register: {}",
                h.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        c
    }

    fn service(&self, name: &'static str, config: &str) -> Service {
        let env: &[(&str, &str)] = if name == "cloud-compute" {
            // The agent gets no database credentials.
            &[]
        } else {
            &[
                ("DATABASE_URL", self.db.url.as_str()),
                ("CLOUD_ADMIN_PASSWORD", "faults"),
            ]
        };
        Service::start(&self.bin, name, &self.config(config), env)
    }

    fn config(&self, name: &str) -> PathBuf {
        Path::new(self.dir.path()).join(name)
    }

    fn start_conductor(&mut self) {
        self.conductor = Some(self.service("cloud-conductor", "cloud-conductor.toml"));
    }

    fn start_scheduler(&mut self) {
        self.scheduler = Some(self.service("cloud-scheduler", "cloud-scheduler.toml"));
    }

    fn start_compute(&mut self, i: usize) {
        self.computes[i - 1] = Some(self.service("cloud-compute", &format!("compute-{i}.toml")));
    }

    /// Boots `BURST` servers at once; returns their ids once every create
    /// was accepted.
    async fn burst(&self) -> Vec<String> {
        let image = active_image(&self.db.store, "anyone").await.to_string();
        let c = &self.admin;
        let replies = join_all((0..BURST).map(|i| {
            let image = image.clone();
            async move { boot(c, &format!("f{i}"), "1", &image, json!({})).await }
        }))
        .await;
        replies
            .iter()
            .map(|r| {
                assert_eq!(r.status, 202, "{}", r.body);
                r.body["server"]["id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// Waits until `n` of `ids` left BUILD (the middle of the burst).
    async fn wait_built(&self, ids: &[String], n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let servers = self.servers().await;
            let built = servers
                .iter()
                .filter(|s| ids.contains(&s["id"].as_str().unwrap_or("").to_owned()))
                .filter(|s| s["status"] != "BUILD")
                .count();
            if built >= n {
                return;
            }
            assert!(Instant::now() < deadline, "only {built} servers built");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn servers(&self) -> Vec<Value> {
        let r = self
            .admin
            .get("/compute/v2.1/servers/detail?all_tenants=1")
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["servers"].as_array().cloned().unwrap_or_default()
    }

    /// Nothing stuck, lost, duplicated or over-allocated: within `SETTLE`
    /// every one of `ids` is ACTIVE, SHUTOFF (its fake VM vanished with a
    /// killed agent) or ERROR with a real cause, and each host's placement
    /// usage is what its servers' flavors (one vCPU each) add up to.
    async fn assert_settled(&self, ids: &[String], what: &str) {
        let start = Instant::now();
        let servers = loop {
            let servers = self.servers().await;
            let settled = servers.iter().all(|s| {
                ["ACTIVE", "SHUTOFF", "ERROR"].contains(&s["status"].as_str().unwrap_or(""))
                    && s["OS-EXT-STS:task_state"].is_null()
            });
            if settled && servers.len() >= ids.len() {
                break servers;
            }
            if start.elapsed() > SETTLE {
                let stuck: Vec<String> = servers
                    .iter()
                    .filter(|s| s["status"] == "BUILD" || !s["OS-EXT-STS:task_state"].is_null())
                    .map(|s| format!("{} {} {}", s["id"], s["status"], s["OS-EXT-STS:task_state"]))
                    .collect();
                panic!(
                    "{what}: {} of {} servers not settled {SETTLE:?} after the fault: {stuck:?}",
                    stuck.len(),
                    servers.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        eprintln!(
            "{what}: settled {:?} after the fault was repaired",
            start.elapsed()
        );
        let listed: HashSet<String> = servers
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(servers.len(), ids.len(), "{what}: duplicate servers");
        for id in ids {
            assert!(listed.contains(id), "{what}: server {id} lost");
        }
        let mut per_host: HashMap<String, i64> = HashMap::new();
        for s in &servers {
            if s["status"] == "ERROR" {
                let fault = s["fault"]["message"].as_str().unwrap_or("");
                assert!(
                    !fault.is_empty() && !fault.contains("has either erred"),
                    "{what}: ERROR without a real cause: {s}"
                );
            } else {
                let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or("").to_owned();
                *per_host.entry(host).or_default() += 1;
            }
        }
        let active = servers.iter().filter(|s| s["status"] == "ACTIVE").count();
        eprintln!(
            "{what}: {active} ACTIVE of {}, per host {per_host:?}",
            servers.len()
        );
        for i in 1..=HOSTS {
            let host = format!("host-{i}");
            let node = self.db.store.compute_node(&host).await.unwrap();
            assert_eq!(
                node.vcpu.used,
                per_host.get(&host).copied().unwrap_or(0),
                "{what}: {host} placement usage differs from its servers"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conductor_killed_mid_burst_and_restarted() {
    let mut c = Cluster::start().await;
    let ids = c.burst().await;
    c.wait_built(&ids, BURST / 4).await;
    drop(c.conductor.take()); // SIGKILL
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.start_conductor();
    c.assert_settled(&ids, "conductor killed").await;
    let active = c.servers().await;
    assert!(
        active.iter().all(|s| s["status"] == "ACTIVE"),
        "every server fits: {active:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_connections_and_scheduler_killed_mid_burst() {
    let mut c = Cluster::start().await;
    let ids = c.burst().await;
    c.wait_built(&ids, BURST / 4).await;
    drop(c.scheduler.take()); // SIGKILL
    // Every service's database sessions end, as in a database restart.
    c.db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.start_scheduler();
    c.assert_settled(&ids, "scheduler and database sessions killed")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compute_agent_killed_mid_burst_and_restarted() {
    let mut c = Cluster::start().await;
    let ids = c.burst().await;
    c.wait_built(&ids, BURST / 4).await;
    drop(c.computes[0].take()); // SIGKILL
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.start_compute(1);
    c.assert_settled(&ids, "compute agent killed").await;
}

/// A conductor killed after moving a delete to `waiting` and before
/// casting the destroy: the next conductor sends the destroy at once (not
/// at the delete deadline), and the server is marked deleted only after
/// the host destroyed the VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_orphaned_before_the_destroy_was_sent() {
    let mut plane = ControlPlane::start(PlaneOptions::hosts(
        Backend::Postgres,
        1,
        FakeConfig::default(),
    ))
    .await;
    let admin = plane.api.admin().await;
    let store = plane.api.db.store.clone();
    let image = active_image(&store, &admin.project_id).await.to_string();
    let c = admin.client.clone();
    let r = boot(&c, "orphan-delete", "1", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    wait_for_status(&c, &id, &["ACTIVE"], Duration::from_secs(30)).await;
    assert_eq!(plane.driver("host-1").vm_count(), 1);

    plane.kill_conductors();
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    // What the dead conductor left: the step recorded, the host never
    // told, the lease (and the conductor's heartbeat) still running, but
    // its database session gone.
    let until = Timestamp::now().plus_seconds(300).micros();
    plane
        .api
        .db
        .execute(&format!(
            "INSERT INTO conductors (id, host, session, started_at, alive_until) \
             VALUES ('conductor-dead', 'elsewhere', -1, 0, {until})"
        ))
        .await;
    plane
        .api
        .db
        .execute(&format!(
            "UPDATE workflows SET step = 'waiting', owner = 'conductor-dead', lease_until = {until} \
             WHERE id = 'delete:{id}'"
        ))
        .await;
    let started = Instant::now();
    plane.start_conductor();
    let driver = plane.driver("host-1");
    loop {
        let s = c.get(&format!("/compute/v2.1/servers/{id}")).await;
        if s.status == 404 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the orphaned delete was not resumed at once: {}",
            s.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        driver.vm_count(),
        0,
        "the server was marked deleted while its VM still ran"
    );
    plane.shutdown().await;
}

/// A host that is up but does not confirm a delete by the deadline (its
/// agent's messages are not being consumed; its heartbeat still arrives):
/// the destroy is sent again and the server stays `deleting`; it is not
/// marked deleted while its VM may run. Once the agent comes back and
/// destroys the VM, the delete completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_the_host_did_not_confirm_is_not_marked_done() {
    let mut opts = PlaneOptions::hosts(Backend::Postgres, 1, FakeConfig::default());
    opts.conductor.delete_timeout_secs = 2;
    let mut plane = ControlPlane::start(opts).await;
    let admin = plane.api.admin().await;
    let store = plane.api.db.store.clone();
    let image = active_image(&store, &admin.project_id).await.to_string();
    let c = admin.client.clone();
    let r = boot(&c, "unconfirmed", "1", &image, json!({})).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    wait_for_status(&c, &id, &["ACTIVE"], Duration::from_secs(30)).await;

    // The agent stops consuming; the host keeps looking up.
    plane.stop_host("host-1").await;
    let beating = store.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            let _ = beating.service_heartbeat("host-1", "cloud-compute").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    // Two deadlines pass.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = c.get(&format!("/compute/v2.1/servers/{id}")).await;
    assert_eq!(
        s.status, 200,
        "the server was marked deleted while its VM still ran"
    );
    assert_eq!(s.body["server"]["OS-EXT-STS:task_state"], "deleting");
    assert_eq!(plane.driver("host-1").vm_count(), 1);

    heartbeat.abort();
    plane.start_host("host-1");
    wait_for_status(&c, &id, &["DELETED"], Duration::from_secs(15)).await;
    assert_eq!(plane.driver("host-1").vm_count(), 0);
    plane.shutdown().await;
}

/// The API SIGKILLed in the middle of a burst of creates whose clients
/// retry with their `Idempotency-Key` (issue 16, fault survival 2): once a
/// new API is up, every retry gets its server within seconds (no key left
/// "in flight" waiting out a lease), a create the dead API had already made
/// is found rather than made again, and no key ends with two servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_killed_while_clients_retry_with_idempotency_keys() {
    let mut c = Cluster::start().await;
    let image = active_image(&c.db.store, "anyone").await.to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..BURST)
        .map(|i| {
            let (admin, image, accepted) = (c.admin.clone(), image.clone(), accepted.clone());
            tokio::spawn(async move {
                create_until_accepted(
                    &admin,
                    &format!("key-{i}"),
                    &format!("k{i}"),
                    &image,
                    &accepted,
                )
                .await
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < BURST / 4 {
        assert!(Instant::now() < deadline, "no creates accepted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(c.api.take()); // SIGKILL, with creates in flight
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.api = Some(c.service("cloud-api", "cloud-api.toml"));
    let restarted = Instant::now();
    let mut ids = Vec::new();
    for client in clients {
        ids.push(client.await.expect("client task"));
    }
    eprintln!(
        "api killed: every key answered {:?} after the restart",
        restarted.elapsed()
    );
    assert!(
        restarted.elapsed() < SETTLE,
        "retries waited {:?} for keys left in flight",
        restarted.elapsed()
    );
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), BURST, "two keys answered with one server");
    // A replay after the restart names the same server.
    for (i, id) in ids.iter().enumerate().step_by(7) {
        let again = create_until_accepted(
            &c.admin,
            &format!("key-{i}"),
            &format!("k{i}"),
            &image,
            &accepted,
        )
        .await;
        assert_eq!(&again, id, "key-{i} replayed as another server");
    }
    c.assert_settled(&ids, "api killed").await;
}

/// Posts a boot with `key` until the API accepts it, as a client that
/// retries on a dropped connection, a 5xx or a 409 for a key still being
/// processed would; returns the server's id. Gives up after `SETTLE` plus
/// the API's start-up.
async fn create_until_accepted(
    admin: &Client,
    key: &str,
    name: &str,
    image: &str,
    accepted: &std::sync::atomic::AtomicUsize,
) -> String {
    let body =
        json!({"server": {"name": name, "flavorRef": "1", "imageRef": image, "networks": "none"}});
    let deadline = Instant::now() + SETTLE + Duration::from_secs(30);
    loop {
        let sent = admin
            .request("POST", "/compute/v2.1/servers")
            .header("Idempotency-Key", key)
            .json(&body)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        if let Ok(r) = sent {
            let status = r.status().as_u16();
            let reply: Value = r.json().await.unwrap_or(Value::Null);
            match status {
                202 => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return reply["server"]["id"]
                        .as_str()
                        .expect("server id")
                        .to_owned();
                }
                409 | 500..=599 => {}
                other => panic!("{key}: {other} {reply}"),
            }
        }
        assert!(Instant::now() < deadline, "{key}: never accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
