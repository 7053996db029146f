//! PostgreSQL going away under load: every service (API, conductor,
//! scheduler, as separate processes on RabbitMQ, with two fake compute
//! hosts) rides out a database restart and a promotion of a standby in the
//! middle of a burst of boots. Users may be told to come back (503 with
//! `Retry-After`) but are never answered 500, no build is lost or left
//! half-way, and no host carries a claim twice.
//!
//! Each test runs a PostgreSQL cluster of its own (`initdb`, `pg_ctl`,
//! `pg_basebackup` from the PostgreSQL server package) on private ports and
//! data directories, removed when the test ends however it ends.

use cloud_e2e::processes::{Service, admin_sign_in, binaries, wait_for_api, wait_for_hypervisors};
use cloud_test_utils::{Client, free_port};
use futures::future::join_all;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
// pg_ctl waits for the server: off the runtime's two workers, so the
// clients of the burst keep going meanwhile.
use tokio::task::block_in_place;

/// Boots in each burst.
const BOOTS: usize = 24;
/// Time between two boots of a burst: the burst spans the outage.
const BOOT_GAP: Duration = Duration::from_millis(150);
/// How long a server may take to settle, outage included.
const SETTLE: Duration = Duration::from_secs(60);
/// The fault every server error shows when the cause was not named.
const UNNAMED_FAULT: &str = "has either erred or is incapable";

/// One PostgreSQL server: a data directory and a port.
struct PgNode {
    data: PathBuf,
    port: u16,
}

/// The PostgreSQL servers of one test, stopped and removed on drop.
struct PgCluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    nodes: Vec<PgNode>,
}

impl PgCluster {
    /// A new primary, started; `None` (the test is skipped) when the
    /// PostgreSQL server programs are not installed, except under CI where
    /// that fails the test.
    fn primary() -> Option<PgCluster> {
        let bin = pg_bin()?;
        let root = tempfile::tempdir().expect("temporary directory");
        let mut cluster = PgCluster {
            bin,
            root,
            nodes: Vec::new(),
        };
        // initdb refuses to run as root: the server runs as 'postgres'.
        if as_root() {
            cluster.run(
                Command::new("chown")
                    .args(["postgres:"])
                    .arg(cluster.root.path()),
            );
        }
        let data = cluster.root.path().join("node-0");
        let mut initdb = cluster.pg("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        cluster.run(&mut initdb);
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = off\nfull_page_writes = off\n\
             wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n",
            cluster.root.path().display()
        );
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&conf_path, text).expect("postgresql.conf written");
        cluster.nodes.push(PgNode {
            data,
            port: free_port(),
        });
        cluster.start(0);
        Some(cluster)
    }

    /// A streaming standby of node 0 (a base backup with `-R`), started;
    /// returns its index.
    fn add_standby(&mut self) -> usize {
        let data = self.root.path().join(format!("node-{}", self.nodes.len()));
        let mut backup = self.pg("pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-U", "postgres", "-R", "-X", "stream"])
            .args(["-c", "fast", "--no-sync", "-p"])
            .arg(self.nodes[0].port.to_string())
            .arg("-D")
            .arg(&data);
        self.run(&mut backup);
        self.nodes.push(PgNode {
            data,
            port: free_port(),
        });
        let i = self.nodes.len() - 1;
        self.start(i);
        i
    }

    /// Starts node `i` and waits until it accepts connections.
    fn start(&self, i: usize) {
        let n = &self.nodes[i];
        let mut start = self.pg("pg_ctl");
        start
            .arg("-D")
            .arg(&n.data)
            .arg("-l")
            .arg(n.data.with_extension("log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", n.port))
            .arg("start");
        self.run(&mut start);
    }

    /// Stops node `i` the way an operator or a package upgrade does
    /// (`-m fast`: sessions are ended, what was committed is kept).
    fn stop(&self, i: usize) {
        let mut stop = self.pg("pg_ctl");
        stop.arg("-D")
            .arg(&self.nodes[i].data)
            .args(["-m", "fast", "-w", "stop"]);
        self.run(&mut stop);
    }

    /// Promotes standby `i` to primary.
    fn promote(&self, i: usize) {
        let mut promote = self.pg("pg_ctl");
        promote
            .arg("-D")
            .arg(&self.nodes[i].data)
            .args(["-w", "promote"]);
        self.run(&mut promote);
    }

    /// Creates database `db` on node `i`.
    fn create_database(&self, i: usize, db: &str) {
        let mut createdb = self.pg("createdb");
        createdb
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.nodes[i].port.to_string())
            .arg(db);
        self.run(&mut createdb);
    }

    /// `postgres://postgres@127.0.0.1:PORT/db` of node `i`.
    fn url(&self, i: usize, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.nodes[i].port)
    }

    /// A command of the server package, run as 'postgres' when we are root.
    fn pg(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.current_dir(self.root.path());
        cmd
    }

    /// Runs `cmd`, failing the test with its output when it fails.
    fn run(&self, cmd: &mut Command) -> Output {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        out
    }

    /// The server logs, for failure messages.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(n.data.with_extension("log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "\n--- {} ---\n{}",
                    n.data.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            let _ = self
                .pg("pg_ctl")
                .arg("-D")
                .arg(&n.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The directory of `initdb` and `pg_ctl`: `$PG_BIN`, else the newest
/// /usr/lib/postgresql/N/bin. `None` when absent and not under CI.
fn pg_bin() -> Option<PathBuf> {
    let found = std::env::var_os("PG_BIN").map(PathBuf::from).or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| {
                let e = e.ok()?;
                let v = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, p)| p)
    });
    match found {
        Some(bin) if bin.join("initdb").exists() && bin.join("pg_basebackup").exists() => Some(bin),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the PostgreSQL server programs (initdb, pg_ctl, pg_basebackup) are required \
                 under CI: install postgresql or set PG_BIN"
            );
            eprintln!("skipped: no PostgreSQL server programs (set PG_BIN)");
            None
        }
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The control plane as separate processes on `db_url`, with an admin
/// client whose project may boot as many servers as it likes.
struct Cloud {
    admin: Client,
    _services: Vec<Service>,
    _dir: tempfile::TempDir,
}

impl Cloud {
    async fn start(db_url: &str) -> Cloud {
        let bin = binaries();
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("pgf-{}", uuid::Uuid::new_v4().simple());
        let bus = format!(
            "[bus]\namqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nprefix = \"{prefix}\"\n"
        );
        let port = free_port();
        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let env = [("DATABASE_URL", db_url), ("CLOUD_ADMIN_PASSWORD", "pgf")];
        let start = |name: &'static str, config: PathBuf, env: &[(&str, &str)]| {
            let log = dir.path().join(format!("{name}.log"));
            Service::start_logged(&bin, name, &config, env, &log)
        };
        let mut services = vec![start(
            "cloud-api",
            write(
                "api.toml",
                format!(
                    "[api]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n\
                     [api.bootstrap]\ndefault_flavors = true\n\n{bus}",
                    dir.path().join("data").display()
                ),
            ),
            &env,
        )];
        let base = format!("http://127.0.0.1:{port}");
        wait_for_api(&base).await;
        for (name, service) in [
            ("conductor", "cloud-conductor"),
            ("scheduler", "cloud-scheduler"),
        ] {
            let config = write(&format!("{name}.toml"), format!("[database]\n\n{bus}"));
            services.push(start(service, config, &env));
        }
        for h in ["pgf-host-1", "pgf-host-2"] {
            let config = write(
                &format!("{h}.toml"),
                format!(
                    "[agent]\nhost = \"{h}\"\nheartbeat_secs = 1.0\n\n\
                     [driver]\nkind = \"fake\"\nspawn_delay_ms = 300\n\n{bus}"
                ),
            );
            services.push(start("cloud-compute", config, &[]));
        }

        let (admin, project) = admin_sign_in(&base, "pgf").await;
        let store = cloud_store::Store::connect(db_url).await.unwrap();
        cloud_e2e::unlimited_quota(&store, &project).await;
        store.close().await;
        wait_for_hypervisors(&admin, 2).await;
        Cloud {
            admin,
            _services: services,
            _dir: dir,
        }
    }

    /// The plane on `db_url` and the image every boot uses.
    async fn start_with_image(db_url: &str) -> (Cloud, String) {
        let t = Instant::now();
        let cloud = Cloud::start(db_url).await;
        eprintln!("services up in {:?}", t.elapsed());
        let store = cloud_store::Store::connect(db_url).await.unwrap();
        let image = cloud_e2e::active_image(&store, "anyone").await.to_string();
        store.close().await;
        (cloud, image)
    }

    /// The service logs, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["cloud-api", "cloud-conductor", "cloud-scheduler"] {
            let log = std::fs::read_to_string(self._dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains(" INFO "))
                .rev()
                .take(40)
                .collect();
            out.push_str(&format!("\n--- {name} ---\n"));
            out.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        out
    }
}

/// What the clients of a burst saw.
#[derive(Default)]
struct Burst {
    /// Ids of the servers whose create was accepted.
    accepted: Vec<String>,
    /// Creates answered 503 (and retried): each may or may not have left a
    /// server behind.
    unavailable_creates: usize,
}

/// Fails the test on a 500 (or anything but what a client can act on): a
/// 503 must say when to come back.
fn check_reply(what: &str, r: &cloud_test_utils::Reply, logs: impl Fn() -> String) {
    assert!(
        r.status != 500 && r.status != 502,
        "{what} answered {}: {}{}",
        r.status,
        r.body,
        logs()
    );
    if r.status == 503 {
        assert!(
            r.header("retry-after").is_some(),
            "{what}: a 503 without Retry-After: {}",
            r.body
        );
    }
}

/// Boots `BOOTS` servers, one every `BOOT_GAP`, each retried while the
/// API answers 503, while a reader lists servers; `outage` runs alongside.
async fn burst(cloud: &Cloud, image: &str, outage: impl Future<Output = ()>) -> Burst {
    let c = &cloud.admin;
    let logs = || cloud.logs();
    let boots = join_all((0..BOOTS).map(|i| async move {
        tokio::time::sleep(BOOT_GAP * i as u32).await;
        let mut unavailable = 0;
        let deadline = Instant::now() + SETTLE;
        loop {
            let r = cloud_test_utils::boot(c, &format!("pgf-{i}"), "1", image, json!({})).await;
            check_reply("POST /servers", &r, logs);
            match r.status {
                202 => {
                    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
                    return (Some(id), unavailable);
                }
                503 => unavailable += 1,
                s => panic!("boot {i} answered {s}: {}", r.body),
            }
            assert!(Instant::now() < deadline, "boot {i} never accepted");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }));
    let reader = async {
        let end = Instant::now() + BOOT_GAP * BOOTS as u32 + Duration::from_secs(2);
        while Instant::now() < end {
            let r = c.get("/compute/v2.1/servers/detail").await;
            check_reply("GET /servers/detail", &r, logs);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (boots, (), ()) = tokio::join!(boots, reader, outage);
    let mut out = Burst::default();
    for (id, unavailable) in boots {
        out.accepted.extend(id);
        out.unavailable_creates += unavailable;
    }
    out
}

/// Waits until every server of the project is ACTIVE or ERROR; returns
/// them (none may stay building).
async fn settled_servers(cloud: &Cloud) -> Vec<Value> {
    let c = &cloud.admin;
    let deadline = Instant::now() + SETTLE;
    loop {
        let r = c.get("/compute/v2.1/servers/detail").await;
        check_reply("GET /servers/detail", &r, || cloud.logs());
        if r.status == 200 {
            let servers = r.body["servers"].as_array().unwrap().clone();
            let busy: Vec<String> = servers
                .iter()
                .filter(|s| !matches!(s["status"].as_str(), Some("ACTIVE" | "ERROR")))
                .map(|s| {
                    format!(
                        "{} {} {}",
                        s["name"], s["status"], s["OS-EXT-STS:task_state"]
                    )
                })
                .collect();
            if busy.is_empty() {
                return servers;
            }
            assert!(
                Instant::now() < deadline,
                "servers stuck: {busy:?}{}",
                cloud.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// No host carries a claim twice: each host's vCPUs in use are those of
/// the ACTIVE servers on it (flavor 1: one vCPU each).
async fn assert_claims_match(cloud: &Cloud, servers: &[Value]) {
    let mut on_host: HashMap<String, i64> = HashMap::new();
    for s in servers.iter().filter(|s| s["status"] == "ACTIVE") {
        *on_host
            .entry(s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let h = cloud.admin.get("/compute/v2.1/os-hypervisors/detail").await;
    assert_eq!(h.status, 200, "{}", h.body);
    for hv in h.body["hypervisors"].as_array().unwrap() {
        let name = hv["hypervisor_hostname"].as_str().unwrap();
        assert_eq!(
            hv["vcpus_used"].as_i64().unwrap(),
            on_host.get(name).copied().unwrap_or(0),
            "vCPUs claimed on {name} vs ACTIVE servers there: {on_host:?}"
        );
    }
}

/// Runs [`burst`] with `outage` alongside, then waits for every server to
/// settle: both tests check the same things of a burst (every boot
/// accepted, no accepted server lost) before their own.
async fn burst_until_settled(
    cloud: &Cloud,
    image: &str,
    outage: impl Future<Output = ()>,
) -> (Burst, Vec<Value>) {
    let t = Instant::now();
    let seen = burst(cloud, image, outage).await;
    eprintln!(
        "burst over in {:?}; {} creates answered 503",
        t.elapsed(),
        seen.unavailable_creates
    );
    assert_eq!(seen.accepted.len(), BOOTS);
    let servers = settled_servers(cloud).await;
    eprintln!("settled {:?} after the burst began", t.elapsed());
    for id in &seen.accepted {
        assert!(servers.iter().any(|s| s["id"] == id.as_str()), "{id} lost");
    }
    (seen, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_in_a_boot_burst_loses_nothing() {
    let Some(pg) = PgCluster::primary() else {
        return;
    };
    pg.create_database(0, "cloud");
    let db_url = pg.url(0, "cloud");
    let (cloud, image) = Cloud::start_with_image(&db_url).await;

    let outage = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        block_in_place(|| pg.stop(0));
        tokio::time::sleep(Duration::from_secs(5)).await;
        block_in_place(|| pg.start(0));
    };
    let (seen, servers) = burst_until_settled(&cloud, &image, outage).await;
    for s in &servers {
        assert_eq!(s["status"], "ACTIVE", "{s}{}", cloud.logs());
    }
    // A create answered 503 may have committed before the database went
    // away; its retry then makes a second server, never a second claim.
    assert!(
        servers.len() >= BOOTS && servers.len() <= BOOTS + seen.unavailable_creates,
        "{} servers for {BOOTS} boots ({} answered 503)",
        servers.len(),
        seen.unavailable_creates
    );
    assert_claims_match(&cloud, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_promoted_in_a_boot_burst_takes_over() {
    let Some(mut pg) = PgCluster::primary() else {
        return;
    };
    pg.create_database(0, "cloud");
    let standby = pg.add_standby();
    let db_url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/cloud?target_session_attrs=read-write",
        pg.nodes[0].port, pg.nodes[standby].port
    );
    let (cloud, image) = Cloud::start_with_image(&db_url).await;

    let outage = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        block_in_place(|| pg.stop(0));
        tokio::time::sleep(Duration::from_secs(2)).await;
        block_in_place(|| pg.promote(standby));
    };
    let (_, servers) = burst_until_settled(&cloud, &image, outage).await;
    for s in &servers {
        if s["status"] == "ERROR" {
            let fault = s["fault"]["message"].as_str().unwrap_or_default();
            assert!(
                !fault.is_empty() && !fault.contains(UNNAMED_FAULT),
                "a server failed without naming why: {s}"
            );
        }
    }
    let active = servers.iter().filter(|s| s["status"] == "ACTIVE").count();
    eprintln!("{active} of {} servers ACTIVE", servers.len());
    assert_claims_match(&cloud, &servers).await;
    // The old primary is gone for good: everything above was served by
    // the promoted standby.
    let r = cloud.admin.get("/compute/v2.1/servers").await;
    assert_eq!(r.status, 200, "{}", r.body);
}
