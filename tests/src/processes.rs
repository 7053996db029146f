//! The production layout for scenarios: cloud-api, cloud-conductor,
//! cloud-scheduler and cloud-compute (fake driver) as separate processes,
//! talking over RabbitMQ with state in PostgreSQL, each on its own config
//! file as an operator would write it.

use cloud_test_utils::{Client, Reply, TestDb, build_binaries, free_port, terminate};
use serde_json::{Value, json};
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
        Service::spawn(bin, name, config, env, Stdio::null())
    }

    /// Like [`Service::start`], with the service's log (stderr) written to
    /// `log`: tests that provoke failures quote it in their messages.
    pub fn start_logged(
        bin: &Path,
        name: &'static str,
        config: &Path,
        env: &[(&str, &str)],
        log: &Path,
    ) -> Service {
        let log = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        Service::spawn(bin, name, config, env, log.into())
    }

    fn spawn(
        bin: &Path,
        name: &'static str,
        config: &Path,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Service {
        let mut cmd = Command::new(bin.join(name));
        cmd.arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(stderr);
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
        terminate(&mut self.child, self.name, Duration::from_secs(30));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 60 s) until the API at `base` answers: it migrates and
/// bootstraps before listening, and the other services need both done.
pub async fn wait_for_api(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/identity/v3")).await.is_err() {
        assert!(Instant::now() < deadline, "cloud-api did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in as the bootstrap admin (password `password`, project `admin`);
/// returns the admin client and the project's id.
pub async fn admin_sign_in(base: &str, password: &str) -> (Client, String) {
    let anon = Client::new(base);
    let r = anon
        .post("/identity/v3/auth/tokens", json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let project = r.body["token"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        anon.with_token(r.header("x-subject-token").unwrap()),
        project,
    )
}

/// Waits (up to 60 s) until `hosts` compute hosts have registered: a boot
/// before that finds no host.
pub async fn wait_for_hypervisors(admin: &Client, hosts: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = admin.get("/compute/v2.1/os-hypervisors").await;
        if h.body["hypervisors"]
            .as_array()
            .is_some_and(|a| a.len() == hosts)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{hosts} compute host(s) did not register: {}",
            h.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
        // Snapshots are uploaded with the bootstrap admin's account.
        let image_api = format!(
            "[image_api]\nauth_url = \"http://127.0.0.1:{port}/identity/v3\"\nusername = \"admin\"\npassword = \"procs\"\nproject_name = \"admin\"\n"
        );
        let compute = write(
            "compute.toml",
            format!(
                "[agent]\nhost = \"proc-host\"\nheartbeat_secs = 1.0\n\n[driver]\nkind = \"fake\"\n\n{bus}\n[metrics]\nlisten = \"127.0.0.1:{km}\"\n\n{image_api}"
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
        wait_for_api(&base).await;
        let cond_p = Service::start(&bin, "cloud-conductor", &conductor, &with_db);
        let sched_p = Service::start(&bin, "cloud-scheduler", &scheduler, &with_db);
        // The agent gets no database credentials.
        let comp_p = Service::start(&bin, "cloud-compute", &compute, env);

        let (admin, _) = admin_sign_in(&base, "procs").await;
        wait_for_hypervisors(&admin, 1).await;
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

    /// Boots a server named `name` (flavor 1, an active image) and waits
    /// until it is ACTIVE: what every process test does first. Returns the
    /// create's reply (its request id names the trace and the action) and
    /// the server as shown then.
    pub async fn boot_active(&self, name: &str) -> (Reply, Value) {
        let image = crate::active_image(&self.db.store, "anyone").await;
        let c = &self.admin;
        let r = cloud_test_utils::boot(c, name, "1", &image.to_string(), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        let s = cloud_test_utils::wait_for_status(
            c,
            &id,
            &["ACTIVE", "ERROR"],
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        (r, s)
    }

    /// Stops every service with SIGTERM, asserting each exits 0.
    pub fn stop(mut self) {
        for s in self.services.drain(..) {
            s.stop();
        }
    }
}
