//! The cloud under test, in one of the two layouts people deploy.
//!
//! * [`Layout::Aio`]: the `cloud-aio` binary (SQLite, in-process bus) with
//!   fake compute hosts.
//! * [`Layout::Processes`]: `cloud-api`, `cloud-conductor`,
//!   `cloud-scheduler` and two `cloud-compute` agents (fake driver) as
//!   separate processes over PostgreSQL and RabbitMQ, configured the way
//!   `tests/tests/processes.rs` does it. The API knows the physical
//!   network `public` (an admin puts the external network there) and the
//!   first agent has the network role (routers run on it).
//!
//! Binaries are built with cargo first (cheap when up to date), so the
//! test always runs the code of this checkout. Each process logs to a file
//! in the cloud's temporary directory; when a test fails, the end of each
//! log is printed, since a client's error alone rarely says why the
//! server did what it did.

use cloud_test_utils::{Client, TestDb, build_binaries, free_port};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The admin password of every cloud the harness starts.
pub const ADMIN_PASSWORD: &str = "compat-Secret-1";

/// Which deployment to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `cloud-aio` with fake hosts.
    Aio,
    /// Separate services over PostgreSQL + RabbitMQ.
    Processes,
}

/// A running cloud; dropping it kills its processes.
pub struct Cloud {
    /// `http://127.0.0.1:PORT`, the API's root (identity at `/identity/v3`).
    pub url: String,
    /// Compute hosts it has.
    pub hosts: usize,
    /// Which layout.
    pub layout: Layout,
    children: Vec<(String, Child)>,
    dir: tempfile::TempDir,
    // Dropped after the processes (field order): they use it.
    _db: Option<TestDb>,
}

/// Builds `packages` and returns the directory of the binaries.
///
/// `CLOUD_COMPAT_BIN_DIR` names a directory of already built binaries to
/// use instead: where several checkouts share one target directory, the
/// binaries there may be another checkout's.
async fn build(packages: &[&str]) -> PathBuf {
    if let Some(dir) = std::env::var_os("CLOUD_COMPAT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let packages: Vec<String> = packages.iter().map(|p| (*p).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = packages.iter().map(String::as_str).collect();
        build_binaries(&names)
    })
    .await
    .expect("build task")
}

impl Cloud {
    /// Starts a cloud in `layout` and waits until every compute host has
    /// registered.
    pub async fn start(layout: Layout) -> Cloud {
        match layout {
            Layout::Aio => Self::aio().await,
            Layout::Processes => Self::processes().await,
        }
    }

    async fn aio() -> Cloud {
        let bin = build(&["cloud-aio"]).await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cloud = Cloud {
            url: format!("http://127.0.0.1:{port}"),
            // Two simulated hosts plus the local one (fake driver too).
            hosts: 3,
            layout: Layout::Aio,
            children: Vec::new(),
            dir,
            _db: None,
        };
        let data = cloud.dir.path().join("data");
        let listen = format!("127.0.0.1:{port}");
        cloud.spawn(
            &bin.join("cloud-aio"),
            "cloud-aio",
            &[
                "--driver",
                "fake",
                "--fake-hosts",
                "2",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                &listen,
            ],
            &[("CLOUD_ADMIN_PASSWORD", ADMIN_PASSWORD)],
        );
        cloud.wait_ready().await;
        cloud
    }

    async fn processes() -> Cloud {
        let bin = build(&[
            "cloud-api",
            "cloud-conductor",
            "cloud-scheduler",
            "cloud-compute",
        ])
        .await;
        let db = TestDb::postgres().await;
        let db_url = db.url.clone();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cloud = Cloud {
            url: format!("http://127.0.0.1:{port}"),
            hosts: 2,
            layout: Layout::Processes,
            children: Vec::new(),
            dir,
            _db: Some(db),
        };
        let prefix = format!("compat-{}", uuid::Uuid::new_v4().simple());
        let bus = format!(
            "[bus]\namqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nprefix = \"{prefix}\"\n"
        );
        let data = cloud.dir.path().join("data");
        let api = cloud.write(
            "api.toml",
            &format!(
                "[api]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nservice_down_secs = 10\n\n\
                 [api.bootstrap]\ndefault_flavors = true\n\n\
                 [api.network]\nphysical_networks = [\"physnet1\", \"public\"]\n\n{bus}",
                data.display()
            ),
        );
        let conductor = cloud.write(
            "conductor.toml",
            &format!("[database]\n\n{bus}\n[conductor]\nservice_down_secs = 10\n"),
        );
        let scheduler = cloud.write(
            "scheduler.toml",
            &format!("[database]\n\n{bus}\n[scheduler]\nservice_down_secs = 10\n"),
        );
        let env = [
            ("DATABASE_URL", db_url.as_str()),
            ("CLOUD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ];
        // The API migrates and bootstraps; start it first.
        let config = |p: &Path| ["--config".to_owned(), p.display().to_string()];
        cloud.spawn(&bin.join("cloud-api"), "cloud-api", &config(&api), &env);
        cloud.wait_listening().await;
        cloud.spawn(
            &bin.join("cloud-conductor"),
            "cloud-conductor",
            &config(&conductor),
            &env,
        );
        cloud.spawn(
            &bin.join("cloud-scheduler"),
            "cloud-scheduler",
            &config(&scheduler),
            &env,
        );
        for i in 1..=cloud.hosts {
            // The first host has the network role: routers run there.
            let compute = cloud.write(
                &format!("compute-{i}.toml"),
                &format!(
                    "[agent]\nhost = \"compute-{i}\"\nheartbeat_secs = 1.0\nnetwork_node = {}\n\n\
                     [driver]\nkind = \"fake\"\nspawn_delay_ms = 200\n\n{bus}\n\
                     [image_api]\nauth_url = \"http://127.0.0.1:{port}/identity/v3\"\n\
                     username = \"admin\"\nproject_name = \"admin\"\n",
                    i == 1
                ),
            );
            // The agents get no database credentials; their image API
            // account (snapshots and shelve upload through it) has its
            // password in the environment.
            cloud.spawn(
                &bin.join("cloud-compute"),
                &format!("cloud-compute-{i}"),
                &config(&compute),
                &[("CLOUD_COMPUTE_PASSWORD", ADMIN_PASSWORD)],
            );
        }
        cloud.wait_ready().await;
        cloud
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn spawn<S: AsRef<std::ffi::OsStr>>(
        &mut self,
        bin: &Path,
        name: &str,
        args: &[S],
        env: &[(&str, &str)],
    ) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.children.push((name.to_owned(), child));
    }

    /// Fails with the logs when a process has exited.
    fn check_alive(&mut self) {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited early ({status}); its log is printed below");
            }
        }
    }

    async fn wait_listening(&mut self) {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            self.check_alive();
            assert!(Instant::now() < deadline, "the API did not start listening");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the API and for every compute host to be registered.
    async fn wait_ready(&mut self) {
        self.wait_listening().await;
        let c = self.admin_client().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_alive();
            let h = c.get("/compute/v2.1/os-hypervisors").await;
            let n = h.body["hypervisors"].as_array().map_or(0, Vec::len);
            if n >= self.hosts {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} compute hosts registered: {}",
                n,
                self.hosts,
                h.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An HTTP client with an admin token (for checks the clients cannot
    /// make, and for waiting).
    pub async fn admin_client(&self) -> Client {
        let anon = Client::new(&self.url);
        let r = anon
            .post(
                "/identity/v3/auth/tokens",
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
                    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}),
            )
            .await;
        assert_eq!(r.status, 201, "admin login failed: {}", r.body);
        anon.with_token(r.header("x-subject-token").unwrap())
    }

    /// The identity endpoint clients authenticate against.
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.url)
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            for (name, _) in &self.children {
                let path = self.dir.path().join(format!("{name}.log"));
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!("---- last lines of {name}.log ----\n{}", tail.join("\n"));
            }
        }
    }
}
