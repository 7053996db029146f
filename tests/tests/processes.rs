//! The production layout: cloud-api, cloud-conductor, cloud-scheduler and
//! cloud-compute as separate processes, talking over RabbitMQ, with state
//! in PostgreSQL. A server boots to ACTIVE across them, every service
//! serves metrics, and SIGTERM stops each one cleanly (exit 0).

use cloud_test_utils::{Client, TestDb, build_binaries, free_port};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the service binaries (cheap when up to date) and returns their directory.
fn binaries() -> PathBuf {
    build_binaries(&[
        "cloud-api",
        "cloud-conductor",
        "cloud-scheduler",
        "cloud-compute",
    ])
}

struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    fn start(bin: &Path, name: &'static str, config: &Path, env: &[(&str, &str)]) -> Service {
        let mut cmd = Command::new(bin.join(name));
        cmd.arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Service {
            name,
            child: cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}")),
        }
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            assert!(Instant::now() < deadline, "{} did not stop", self.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_in_separate_processes_boot_a_server() {
    let bin = binaries();
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("p-{}", uuid::Uuid::new_v4().simple());
    let amqp = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let port = free_port();
    let (cm, sm, km) = (free_port(), free_port(), free_port());
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let bus = format!("[bus]\namqp_url = \"{amqp}\"\nprefix = \"{prefix}\"\n");
    let api = write(
        "api.toml",
        format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nservice_down_secs = 10\n\n[api.bootstrap]\ndefault_flavors = true\n\n{bus}",
            dir.path().join("data").display()
        ),
    );
    let conductor = write(
        "conductor.toml",
        format!(
            "[database]\n\n{bus}\n[conductor]\nservice_down_secs = 10\n\n[metrics]\nlisten = \"127.0.0.1:{cm}\"\n"
        ),
    );
    let scheduler = write(
        "scheduler.toml",
        format!(
            "[database]\n\n{bus}\n[scheduler]\nservice_down_secs = 10\n\n[metrics]\nlisten = \"127.0.0.1:{sm}\"\n"
        ),
    );
    let compute = write(
        "compute.toml",
        format!(
            "[agent]\nhost = \"proc-host\"\nheartbeat_secs = 1.0\n\n[driver]\nkind = \"fake\"\n\n{bus}\n[metrics]\nlisten = \"127.0.0.1:{km}\"\n"
        ),
    );
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("CLOUD_ADMIN_PASSWORD", "procs"),
    ];
    // The API migrates and bootstraps; start it first.
    let api_p = Service::start(&bin, "cloud-api", &api, &env);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/identity/v3")).await.is_err() {
        assert!(Instant::now() < deadline, "cloud-api did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cond_p = Service::start(&bin, "cloud-conductor", &conductor, &env);
    let sched_p = Service::start(&bin, "cloud-scheduler", &scheduler, &env);
    // The agent gets no database credentials.
    let comp_p = Service::start(&bin, "cloud-compute", &compute, &[]);

    let anon = Client::new(&base);
    let r = anon
        .post("/identity/v3/auth/tokens", json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "procs"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
        .await;
    assert_eq!(r.status, 201);
    let c = anon.with_token(r.header("x-subject-token").unwrap());
    // Wait for the host to register.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = c.get("/compute/v2.1/os-hypervisors").await;
        if h.body["hypervisors"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the compute host did not register: {}",
            h.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let image = cloud_e2e::active_image(&db.store, "anyone").await;
    let r = cloud_test_utils::boot(&c, "proc-vm", "1", &image.to_string(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s =
        cloud_test_utils::wait_for_status(&c, &id, &["ACTIVE", "ERROR"], Duration::from_secs(60))
            .await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
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
    assert_eq!(
        c.delete(&format!("/compute/v2.1/servers/{id}"))
            .await
            .status,
        204
    );
    cloud_test_utils::wait_for_status(&c, &id, &["DELETED"], Duration::from_secs(60)).await;
    for s in [comp_p, sched_p, cond_p, api_p] {
        s.stop();
    }
}
