//! Running the real clients against a [`Cloud`]: a `clouds.yaml` in a
//! temporary directory, and the `openstack` CLI, Python (openstacksdk) and
//! `ansible-playbook` from the virtualenv with `OS_CLIENT_CONFIG_FILE` and
//! `OS_CLOUD` pointing at it.
//!
//! The environment is cleared of the caller's `OS_*` variables so a
//! developer's own credentials never leak into a test, and Ansible keeps
//! its state in the temporary directory. Every command is written to the
//! test's stderr with its duration and output (nextest shows it when the
//! test fails), and is killed after [`COMMAND_TIMEOUT`]: `server create
//! --wait` polls forever otherwise.

use crate::cloud::{ADMIN_PASSWORD, Cloud};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// Longest any single client command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// The name of the cloud in the generated clouds.yaml (the admin user).
pub const CLOUD_NAME: &str = "compat";

/// A second cloud entry: user `demo` in project `compat-demo`, which a
/// scenario creates before using it (`--os-cloud compat-demo`).
pub const DEMO_CLOUD: &str = "compat-demo";

/// The password of the `demo` user of [`DEMO_CLOUD`].
pub const DEMO_PASSWORD: &str = "demo-Secret-1";

/// The clients, configured for one cloud.
pub struct Tools {
    venv: PathBuf,
    dir: tempfile::TempDir,
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// Exit status was 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            success: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Tools {
    /// Ensures the virtualenv and writes a clouds.yaml for `cloud`:
    /// [`CLOUD_NAME`] (the admin user in the admin project) and
    /// [`DEMO_CLOUD`], both in region RegionOne on the public interface.
    pub fn new(cloud: &Cloud) -> Tools {
        let venv = crate::venv::ensure();
        let dir = tempfile::tempdir().unwrap();
        let entry = |name: &str, user: &str, password: &str, project: &str| {
            format!(
                "  {name}:\n    auth:\n      auth_url: {}\n      username: {user}\n      \
                 password: {password}\n      project_name: {project}\n      \
                 user_domain_name: Default\n      project_domain_name: Default\n    \
                 region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
                cloud.auth_url()
            )
        };
        let yaml = format!(
            "clouds:\n{}{}",
            entry(CLOUD_NAME, "admin", ADMIN_PASSWORD, "admin"),
            entry(DEMO_CLOUD, "demo", DEMO_PASSWORD, "compat-demo")
        );
        std::fs::write(dir.path().join("clouds.yaml"), yaml).unwrap();
        Tools { venv, dir }
    }

    /// A path in the tools' temporary directory (for files the clients
    /// read or write).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `program` from the virtualenv's `bin/` with `args`.
    pub async fn run(&self, program: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(self.venv.join("bin").join(program));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") || k.starts_with("ANSIBLE_") {
                cmd.env_remove(k);
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        let home = self.dir.path();
        cmd.env(
            "PATH",
            format!("{}:{path}", self.venv.join("bin").display()),
        )
        .env("OS_CLIENT_CONFIG_FILE", home.join("clouds.yaml"))
        .env("OS_CLOUD", CLOUD_NAME)
        .env("ANSIBLE_COLLECTIONS_PATH", self.venv.join("collections"))
        .env("ANSIBLE_HOME", home.join("ansible"))
        .env("ANSIBLE_LOCAL_TEMP", home.join("ansible/tmp"))
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
        // ansible-core refuses to run without a UTF-8 locale.
        .env("LC_ALL", "C.UTF-8");
        let started = Instant::now();
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} took over {COMMAND_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let run = Run::from(out);
        eprintln!(
            "$ {program} {} [{:.1}s, {}]\n{}{}",
            args.join(" "),
            started.elapsed().as_secs_f64(),
            if run.success { "ok" } else { "FAILED" },
            run.stdout,
            run.stderr
        );
        run
    }

    /// `openstack ARGS`, which must succeed; its stdout.
    pub async fn osc(&self, args: &[&str]) -> String {
        let r = self.run("openstack", args).await;
        assert!(
            r.success,
            "openstack {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// `openstack ARGS -f json`, parsed.
    pub async fn osc_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.osc(&all).await;
        // `--wait` writes "\rProgress: N" to stdout while the server builds,
        // before the JSON; what follows is the document.
        let json = match out.trim_start_matches('\r').strip_prefix("Progress:") {
            Some(rest) => rest.find(['{', '[']).map_or(rest, |i| &rest[i..]),
            None => out.as_str(),
        };
        serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("openstack {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Uploads `data` as qcow2 image `name` with `openstack image create
    /// --file` (a scenario's prerequisite; the CLI session checks the
    /// command itself).
    pub async fn osc_image(&self, name: &str, data: &[u8]) {
        let file = self.path(&format!("{name}.qcow2"));
        std::fs::write(&file, data).unwrap();
        self.osc(&[
            "image",
            "create",
            "--file",
            file.to_str().unwrap(),
            "--disk-format",
            "qcow2",
            name,
        ])
        .await;
    }

    /// `openstack ARGS`, which must fail; its stderr.
    pub async fn osc_fails(&self, args: &[&str]) -> String {
        let r = self.run("openstack", args).await;
        assert!(!r.success, "openstack {args:?} succeeded:\n{}", r.stdout);
        r.stderr
    }

    /// Runs a Python script (openstacksdk is importable) with `args`.
    pub async fn python(&self, script: &Path, args: &[&str]) -> Run {
        let mut all = vec![script.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run("python", &all).await
    }

    /// `ansible-playbook` on localhost with `-e key=value` for each var;
    /// must succeed; its stdout.
    pub async fn ansible_playbook(&self, playbook: &Path, vars: &[(&str, &str)]) -> String {
        let mut args: Vec<String> = vec!["-i".into(), "localhost,".into()];
        for (k, v) in vars {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(playbook.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = self.run("ansible-playbook", &args).await;
        assert!(
            r.success,
            "ansible-playbook {vars:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }
}
