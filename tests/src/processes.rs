//! The production layout for scenarios: cloud-api, cloud-conductor,
//! cloud-scheduler and cloud-compute (fake driver) as separate processes,
//! talking over RabbitMQ with state in PostgreSQL, each on its own config
//! file as an operator would write it.

use cloud_test_utils::{Client, TestDb, build_binaries, free_port};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the service binaries (cheap when up to date) and returns their directory.
pub fn binaries() -> PathBuf {
    build_binaries(&[
        "cloud-api",
        "cloud-conductor",
        "cloud-scheduler",
        "cloud-compute",
    ])
}

/// One service process; killed if the test ends without stopping it.
pub struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    /// Starts binary `name` of `bin` with `--config config` and `env` added.
    pub fn start(bin: &Path, name: &'static str, config: &Path, env: &[(&str, &str)]) -> Service {
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

    /// Sends SIGTERM and asserts the service exits 0 within 30 s.
    pub fn stop(mut self) {
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

/// The four services up, one compute host (`proc-host`) registered, and an
/// admin client.
pub struct ProcessPlane {
    /// The database (for records the API has no call for, like images).
    pub db: TestDb,
    /// The API's base URL.
    pub base: String,
    /// Admin of project `admin`.
    pub admin: Client,
    /// `/metrics` ports of the conductor, the scheduler and the agent.
    pub metrics_ports: (u16, u16, u16),
    services: Vec<Service>,
    _dir: tempfile::TempDir,
}

impl ProcessPlane {
    /// Starts the plane; every process also gets `env` (e.g. where to
    /// export spans).
    pub async fn start(env: &[(&str, &str)]) -> ProcessPlane {
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
        let with_db: Vec<(&str, &str)> = [
            ("DATABASE_URL", db.url.as_str()),
            ("CLOUD_ADMIN_PASSWORD", "procs"),
        ]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
        // The API migrates and bootstraps; start it first.
        let api_p = Service::start(&bin, "cloud-api", &api, &with_db);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{base}/identity/v3")).await.is_err() {
            assert!(Instant::now() < deadline, "cloud-api did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cond_p = Service::start(&bin, "cloud-conductor", &conductor, &with_db);
        let sched_p = Service::start(&bin, "cloud-scheduler", &scheduler, &with_db);
        // The agent gets no database credentials.
        let comp_p = Service::start(&bin, "cloud-compute", &compute, env);

        let anon = Client::new(&base);
        let r = anon
            .post("/identity/v3/auth/tokens", json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "procs"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
            .await;
        assert_eq!(r.status, 201);
        let admin = anon.with_token(r.header("x-subject-token").unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let h = admin.get("/compute/v2.1/os-hypervisors").await;
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
        ProcessPlane {
            db,
            base,
            admin,
            metrics_ports: (cm, sm, km),
            // Stopped in this order: the agent first, the API last.
            services: vec![comp_p, sched_p, cond_p, api_p],
            _dir: dir,
        }
    }

    /// Stops every service with SIGTERM, asserting each exits 0.
    pub fn stop(mut self) {
        for s in self.services.drain(..) {
            s.stop();
        }
    }
}
