//! RabbitMQ nodes started by a test, beside (never instead of) the system
//! broker on 5672: each node has its own node name, AMQP and distribution
//! ports, data, log and config files under one temporary directory, whose
//! `.erlang.cookie` (found through `HOME`) lets the nodes and `rabbitmqctl`
//! talk to each other. Plugins are off (no management listener).
//!
//! [`Nodes`] kills every node (SIGKILL to its process group) and removes
//! the directory when dropped, so a failing assertion leaves nothing
//! running. Without the RabbitMQ binaries a test is skipped, except under
//! `CI=true`, where it fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `rabbitmq-server` and `rabbitmqctl` are.
#[derive(Clone, Debug)]
pub struct Binaries {
    server: PathBuf,
    ctl: PathBuf,
}

impl Binaries {
    /// The RabbitMQ binaries: `$CLOUD_RABBITMQ_BIN_DIR`, then
    /// `/usr/lib/rabbitmq/bin` (Debian's real scripts; `/usr/sbin`'s wrappers
    /// switch to the `rabbitmq` user and its home), then `PATH`. `None`
    /// (skip the test) when missing, but a panic under `CI=true`.
    pub fn find() -> Option<Binaries> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(d) = std::env::var_os("CLOUD_RABBITMQ_BIN_DIR") {
            dirs.push(d.into());
        }
        dirs.push("/usr/lib/rabbitmq/bin".into());
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        let found = dirs.into_iter().find_map(|d| {
            let (server, ctl) = (d.join("rabbitmq-server"), d.join("rabbitmqctl"));
            (server.is_file() && ctl.is_file()).then_some(Binaries { server, ctl })
        });
        if found.is_none() {
            let msg = "rabbitmq-server and rabbitmqctl are needed to start test brokers \
                       (deploy/dev-services.sh installs them)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
        }
        found
    }
}

/// A free TCP port on 127.0.0.1 (free when asked: the OS picked it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One node started by [`Nodes::start`].
pub struct Node {
    /// Erlang node name, e.g. `cloudt-1a2b3c-1@localhost`.
    pub name: String,
    /// The AMQP (or AMQPS) port.
    pub port: u16,
    dir: PathBuf,
    /// The launcher script, leader of the node's process group.
    child: Option<Child>,
}

impl Node {
    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` (guest may log in over
    /// loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The node's directory (its config file and logs are there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The launcher script, the Erlang VM and its helpers share the
            // group the launcher leads.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Some RabbitMQ nodes and their directory; all killed and removed on drop.
pub struct Nodes {
    bins: Binaries,
    root: PathBuf,
    pub nodes: Vec<Node>,
}

impl Nodes {
    /// Starts `count` nodes (not clustered), each with the `rabbitmq.conf`
    /// that `config(port, node_dir)` returns, and waits until they run.
    /// The config declares the node's listener on `port` (TCP or TLS), so
    /// `RABBITMQ_NODE_PORT` is not set: it would add a TCP listener there.
    pub fn start(bins: &Binaries, count: usize, config: impl Fn(u16, &Path) -> String) -> Nodes {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let root = std::env::temp_dir().join(format!("cloud-bus-rabbit-{tag}"));
        std::fs::create_dir_all(&root).expect("node directory");
        let mut nodes = Nodes {
            bins: bins.clone(),
            root: root.clone(),
            nodes: Vec::new(),
        };
        let cookie = root.join(".erlang.cookie");
        std::fs::write(&cookie, uuid::Uuid::new_v4().simple().to_string()).expect("cookie");
        set_mode(&cookie, 0o400);
        std::fs::write(root.join("enabled_plugins"), "[].\n").expect("plugins file");
        // Replaces /etc/rabbitmq/rabbitmq-env.conf (the system node's name).
        std::fs::write(root.join("rabbitmq-env.conf"), "").expect("env file");
        for i in 1..=count {
            let name = format!("cloudt-{tag}-{i}@localhost");
            let port = free_port();
            let dir = root.join(format!("n{i}"));
            std::fs::create_dir_all(&dir).expect("node directory");
            std::fs::write(dir.join("rabbitmq.conf"), config(port, &dir)).expect("config");
            let log = std::fs::File::create(dir.join("stdout.log")).expect("log");
            let child = nodes
                .command(&bins.server, &name)
                .env("RABBITMQ_DIST_PORT", free_port().to_string())
                .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
                .env("RABBITMQ_LOG_BASE", dir.join("log"))
                .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
                .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
                .env("RABBITMQ_PID_FILE", dir.join("pid"))
                .env(
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                    "-kernel inet_dist_use_interface {127,0,0,1}",
                )
                .current_dir(&dir)
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("starting rabbitmq-server");
            nodes.nodes.push(Node {
                name,
                port,
                dir,
                child: Some(child),
            });
        }
        for i in 0..count {
            nodes.await_startup(i);
        }
        nodes
    }

    /// `rabbitmqctl` or `rabbitmq-server` for node `name`, with this
    /// directory's cookie and environment.
    fn command(&self, program: &Path, name: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", &self.root)
            .env("RABBITMQ_NODENAME", name)
            .env(
                "RABBITMQ_CONF_ENV_FILE",
                self.root.join("rabbitmq-env.conf"),
            )
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.root.join("enabled_plugins"),
            )
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `rabbitmqctl -n <node i> args`, returning stdout or the failure.
    pub fn ctl(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let name = &self.nodes[i].name;
        let out = self
            .command(&self.bins.ctl, name)
            .arg("-n")
            .arg(name)
            .args(args)
            .output()
            .map_err(|e| format!("rabbitmqctl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "rabbitmqctl -n {name} {args:?}: {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Waits until node `i` has booted, failing with its log when it does
    /// not within a minute.
    fn await_startup(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.ctl(i, &["await_startup", "--timeout", "30"]);
            if r.is_ok() {
                return;
            }
            let exited = self.nodes[i]
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.nodes[i].dir.join("stdout.log"))
                    .unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!(
                    "RabbitMQ node {} did not start: {}\n{tail}",
                    self.nodes[i].name,
                    r.unwrap_err()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Joins nodes 2.. to node 1's cluster.
    pub fn cluster(&self) {
        let first = self.nodes[0].name.clone();
        for i in 1..self.nodes.len() {
            for args in [
                &["stop_app"][..],
                &["join_cluster", &first][..],
                &["start_app"][..],
            ] {
                self.ctl(i, args)
                    .unwrap_or_else(|e| panic!("clustering failed: {e}"));
            }
        }
        let status = self.ctl(0, &["cluster_status"]).expect("cluster_status");
        for n in &self.nodes {
            assert!(
                status.contains(&n.name),
                "{} not clustered: {status}",
                n.name
            );
        }
    }

    /// Kills node `i` at once (SIGKILL), as a crashed machine would.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if std::thread::panicking() {
            eprintln!("RabbitMQ logs kept in {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
