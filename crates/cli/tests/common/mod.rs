//! Running the `cloud` binary as a user would, against a real control
//! plane (API, conductor, scheduler, fake compute hosts) in this process.

#![allow(dead_code)]

use cloud_driver_fake::FakeConfig;
use cloud_store::Backend;
use cloud_test_utils::{ControlPlane, PlaneOptions, create_external_network};
use std::path::{Path, PathBuf};

/// What a run of `cloud` produced.
#[derive(Debug)]
pub struct Out {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "cloud failed: {}\n{}",
            self.stderr, self.stdout
        );
        &self.stdout
    }

    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// A control plane plus the environment of a user of it.
pub struct Cloud {
    /// The control plane.
    pub plane: ControlPlane,
    /// Scratch directory (token cache, files).
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cloud {
    /// `hosts` fake hosts on SQLite; the user is alice, member of demo.
    pub async fn start(hosts: usize) -> Cloud {
        Self::start_opts(PlaneOptions::hosts(
            Backend::Sqlite,
            hosts,
            FakeConfig::default(),
        ))
        .await
    }

    /// Like [`Cloud::start`], the hosts with the network role: routers
    /// run there.
    pub async fn start_network_nodes(hosts: usize) -> Cloud {
        let mut options = PlaneOptions::hosts(Backend::Sqlite, hosts, FakeConfig::default());
        options.agent = |a| {
            a.heartbeat_secs = 0.5;
            a.power_sync_secs = 1.0;
            a.shutdown_timeout_secs = 5;
            a.network_node = true;
        };
        Self::start_opts(options).await
    }

    /// A cloud started with `options`; the user is alice, member of demo.
    pub async fn start_opts(options: PlaneOptions) -> Cloud {
        let plane = ControlPlane::start(options).await;
        plane.api.account("demo", "alice", "member").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let env = vec![
            (
                "OS_AUTH_URL".into(),
                format!("{}/identity/v3", plane.api.url),
            ),
            ("OS_USERNAME".into(), "alice".into()),
            ("OS_PASSWORD".into(), "alice-password".into()),
            ("OS_PROJECT_NAME".into(), "demo".into()),
            ("OS_USER_DOMAIN_NAME".into(), "Default".into()),
            ("OS_PROJECT_DOMAIN_NAME".into(), "Default".into()),
            (
                "XDG_CACHE_HOME".into(),
                dir.path().join("cache").display().to_string(),
            ),
        ];
        Cloud { plane, dir, env }
    }

    /// Runs `cloud args...` as alice.
    pub async fn run(&self, args: &[&str]) -> Out {
        self.run_env(args, &[]).await
    }

    /// Runs `cloud args...` with extra environment.
    pub async fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Out {
        let started = std::time::Instant::now();
        let out = self
            .command(args, extra)
            .output()
            .await
            .expect("cloud runs");
        if std::env::var("CLOUD_TEST_TRACE").is_ok() {
            eprintln!(
                "cloud {args:?} -> {:?} in {:?}\n{}",
                out.status.code(),
                started.elapsed(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The command, ready to spawn.
    pub fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cloud"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }

    /// Writes a file in the scratch directory; returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Creates, as admin, the external network `name` (flat, on physnet1)
    /// with a subnet `cidr`; returns the network's id.
    pub async fn external_network(&self, name: &str, cidr: &str) -> String {
        let admin = self.plane.api.admin().await.client;
        create_external_network(&admin, name, "physnet1", cidr, serde_json::json!({})).await
    }

    /// Creates, through the CLI, the network `network` with the subnet
    /// `subnet` on `cidr`.
    pub async fn network(&self, network: &str, subnet: &str, cidr: &str) {
        self.run(&["network", "create", network]).await.ok();
        self.run(&[
            "subnet",
            "create",
            subnet,
            "--network",
            network,
            "--subnet-range",
            cidr,
        ])
        .await
        .ok();
    }

    /// Uploads a small image named `name` through the CLI.
    pub async fn image(&self, name: &str) {
        let f = self.write(&format!("{name}.qcow2"), "QFI\u{fb} not really an image");
        let out = self
            .run(&[
                "image",
                "create",
                name,
                "--file",
                f.to_str().unwrap(),
                "--disk-format",
                "qcow2",
                "-f",
                "json",
            ])
            .await;
        assert_eq!(out.json()["status"], "active", "{}", out.stdout);
    }
}

/// Tables padded for the original values: squeeze runs of spaces and
/// dashes so placeholders of another length still compare equal.
pub fn squeeze(text: &str) -> String {
    let t = regex::Regex::new(r" {2,}").unwrap().replace_all(text, " ");
    regex::Regex::new(r"-{2,}")
        .unwrap()
        .replace_all(&t, "--")
        .into_owned()
}

/// Replaces what changes from run to run (ids, times, host ids, MACs,
/// passwords) with placeholders, keeping the length-independent parts.
pub fn normalize(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uuid>",
        ),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?",
            "<time>",
        ),
        (r"\b[0-9a-f]{56}\b", "<host-id>"),
        (r"\b[0-9a-f]{32}\b", "<id>"),
        (r"(fa:16:3e(:[0-9a-f]{2}){3})", "<mac>"),
        (r#""adminPass": "[^"]*""#, r#""adminPass": "<password>""#),
        (r"http://127\.0\.0\.1:\d+", "http://<api>"),
    ];
    let mut out = text.to_owned();
    for (re, with) in rules {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, *with)
            .into_owned();
    }
    out
}

/// Compares `actual` with the checked-in snapshot `tests/output/<name>`
/// (`EXPECTORATE=overwrite` to update).
pub fn snapshot(name: &str, actual: &str) {
    let path = Path::new("tests/output").join(name);
    expectorate::assert_contents(path, actual);
}
