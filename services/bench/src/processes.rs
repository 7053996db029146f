//! The real service binaries (`cloud-api`, `cloud-conductor`,
//! `cloud-scheduler`, `cloud-compute` on the fake driver), each in its own
//! process on PostgreSQL and RabbitMQ, as deployed: their idle memory, and
//! each one's CPU time and peak memory during the boot scenario, from
//! `/proc/PID`.

use crate::counters::{cpu_seconds, rss_anon_mib, rss_mib};
use crate::env::{Fixtures, active_image, prepare_store};
use crate::scenarios::boot::{BootArgs, boot_and_delete};
use crate::stats::round3;
use cloud_test_utils::{Account, Client, TestDb};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin password of the deployment.
const ADMIN_PASSWORD: &str = "bench-processes";

/// How long the services idle before their memory is read.
const IDLE: Duration = Duration::from_secs(5);

/// A service process, killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &Path, name: &str, config: &Path, env: &[(&str, &str)]) -> anyhow::Result<Service> {
    let mut cmd = Command::new(bin.join(name));
    cmd.arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .map(Service)
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.join(name).display()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The services as separate processes over a fresh database and a
/// private bus prefix.
struct Deployment {
    db: TestDb,
    _dir: tempfile::TempDir,
    amqp: String,
    prefix: String,
    port: u16,
    computes: usize,
    services: Vec<(String, Service)>,
}

impl Deployment {
    /// Starts API, conductor, scheduler and `computes` compute agents
    /// (`proc-host-1..`) from `bin`, and waits until the hosts registered.
    async fn start(bin: &Path, computes: usize) -> anyhow::Result<Deployment> {
        let db = TestDb::postgres().await;
        let dir = tempfile::tempdir()?;
        let amqp = std::env::var("CLOUD_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        let prefix = format!("bench-{}", uuid_like());
        let bus = format!("[bus]\namqp_url = \"{amqp}\"\nprefix = \"{prefix}\"\n");
        let port = free_port()?;
        let write = |name: &str, text: String| -> anyhow::Result<std::path::PathBuf> {
            let p = dir.path().join(name);
            std::fs::write(&p, text)?;
            Ok(p)
        };
        let api = write(
            "api.toml",
            format!(
                "[api]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n{bus}",
                dir.path().join("data").display()
            ),
        )?;
        let conductor = write("conductor.toml", format!("[database]\n\n{bus}"))?;
        let scheduler = write("scheduler.toml", format!("[database]\n\n{bus}"))?;
        let env = [
            ("DATABASE_URL", db.url.as_str()),
            ("CLOUD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ];
        // The API migrates and bootstraps; start it first.
        let mut services = vec![("api".to_owned(), start(bin, "cloud-api", &api, &env)?)];
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "cloud-api did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        services.push((
            "conductor".to_owned(),
            start(bin, "cloud-conductor", &conductor, &env)?,
        ));
        services.push((
            "scheduler".to_owned(),
            start(bin, "cloud-scheduler", &scheduler, &env)?,
        ));
        for i in 1..=computes {
            let config = write(
                &format!("compute-{i}.toml"),
                format!("[agent]\nhost = \"proc-host-{i}\"\n\n[driver]\nkind = \"fake\"\n\n{bus}"),
            )?;
            // The agents get no database credentials.
            services.push((
                format!("compute-{i}"),
                start(bin, "cloud-compute", &config, &[])?,
            ));
        }
        let deployment = Deployment {
            db,
            _dir: dir,
            amqp,
            prefix,
            port,
            computes,
            services,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while deployment.db.store.compute_nodes().await?.len() < computes {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the compute hosts did not register"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(deployment)
    }

    /// The admin, logged in over HTTP, with the bench fixtures.
    async fn fixtures(&self) -> anyhow::Result<Fixtures> {
        let anon = Client::new(&format!("http://127.0.0.1:{}", self.port));
        let r = anon
            .post(
                "/identity/v3/auth/tokens",
                json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
                    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}),
            )
            .await;
        anyhow::ensure!(r.status == 201, "login failed: {}", r.body);
        let token = r
            .header("x-subject-token")
            .ok_or_else(|| anyhow::anyhow!("no token"))?
            .to_owned();
        let project_id = r.body["token"]["project"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let user_id = r.body["token"]["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let store = &self.db.store;
        prepare_store(store, &project_id).await?;
        let image = active_image(store, &project_id).await?.to_string();
        Ok(Fixtures {
            admin: Account {
                project_id,
                user_id,
                client: anon.with_token(&token),
                token,
            },
            image,
        })
    }

    /// `(service, pid)` of every process.
    fn pids(&self) -> Vec<(String, String)> {
        self.services
            .iter()
            .map(|(n, s)| (n.clone(), s.0.id().to_string()))
            .collect()
    }

    /// Stops every process and removes the database and the bus names.
    async fn stop(self) {
        let Deployment {
            db,
            amqp,
            prefix,
            computes,
            services,
            ..
        } = self;
        drop(services);
        drop(db);
        remove_bus_names(&amqp, &prefix, computes).await;
    }
}

/// Starts the four services from `bin` and returns each one's idle
/// resident set (`idle_rss_{service}_process_mib`, and its heap and
/// stacks as `_anon_mib`).
pub async fn idle_rss(bin: &Path) -> anyhow::Result<Value> {
    let d = Deployment::start(bin, 1).await?;
    tokio::time::sleep(IDLE).await;
    let mut out = Map::new();
    for (name, pid) in d.pids() {
        let key = name.trim_end_matches("-1");
        let rss = rss_mib(&pid).ok_or_else(|| anyhow::anyhow!("{name} is not running"))?;
        out.insert(format!("idle_rss_{key}_process_mib"), json!(round3(rss.0)));
        let anon = rss_anon_mib(&pid).unwrap_or(0.0);
        out.insert(format!("idle_rss_{key}_anon_mib"), json!(round3(anon)));
    }
    d.stop().await;
    Ok(Value::Object(out))
}

/// The boot scenario against the services as separate processes
/// (`args.hosts` `cloud-compute` processes): each service's CPU seconds
/// and peak resident set during the boots and deletes (compute agents:
/// the busiest one and the mean).
pub async fn boot_in_processes(bin: &Path, args: &BootArgs) -> anyhow::Result<Value> {
    let d = Deployment::start(bin, args.hosts).await?;
    let fx = d.fixtures().await?;
    let pids = d.pids();
    let cpu0: Vec<f64> = pids
        .iter()
        .map(|(_, p)| cpu_seconds(p).unwrap_or(0.0))
        .collect();
    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn({
        let pids = pids.clone();
        let stop = stop.clone();
        async move {
            let mut peak = vec![0.0f64; pids.len()];
            loop {
                for (i, (_, p)) in pids.iter().enumerate() {
                    peak[i] = peak[i].max(rss_mib(p).map(|r| r.0).unwrap_or(0.0));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stop.cancelled() => return peak,
                }
            }
        }
    });
    let figures = boot_and_delete(&d.db.store, &fx, args).await?;
    stop.cancel();
    let peak = sampler.await?;
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|((_, p), c0)| cpu_seconds(p).unwrap_or(0.0) - c0)
        .collect();
    let mut out = Map::new();
    out.insert(
        "processes_boots_per_s".into(),
        figures["boots_per_s"].clone(),
    );
    out.insert("processes_tta_p50_ms".into(), figures["tta_p50_ms"].clone());
    out.insert("processes_tta_p99_ms".into(), figures["tta_p99_ms"].clone());
    for (i, (name, _)) in pids.iter().enumerate().take(3) {
        out.insert(format!("processes_{name}_cpu_s"), json!(round3(cpu[i])));
        out.insert(
            format!("processes_{name}_peak_rss_mib"),
            json!(round3(peak[i])),
        );
    }
    let n = (pids.len() - 3).max(1) as f64;
    let agents_cpu = &cpu[3..];
    let agents_rss = &peak[3..];
    out.insert(
        "processes_compute_cpu_s_max".into(),
        json!(round3(agents_cpu.iter().copied().fold(0.0, f64::max))),
    );
    out.insert(
        "processes_compute_cpu_s_mean".into(),
        json!(round3(agents_cpu.iter().sum::<f64>() / n)),
    );
    out.insert(
        "processes_compute_peak_rss_mib_max".into(),
        json!(round3(agents_rss.iter().copied().fold(0.0, f64::max))),
    );
    d.stop().await;
    Ok(Value::Object(out))
}

/// Deletes the durable queues and the exchange the services declared
/// under `prefix` (they have no expiry, as in production).
async fn remove_bus_names(url: &str, prefix: &str, computes: usize) {
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        tracing::warn!("cannot reach RabbitMQ to remove the bench queues");
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        let queues = ["conductor".to_owned(), "scheduler".to_owned()]
            .into_iter()
            .chain((1..=computes).map(|i| format!("compute.proc-host-{i}")));
        for q in queues {
            let _ = ch
                .queue_delete(format!("{prefix}.{q}").as_str().into(), Default::default())
                .await;
        }
        let _ = ch
            .exchange_delete(format!("{prefix}.work").as_str().into(), Default::default())
            .await;
        let _ = ch.close(200, "done".into()).await;
    }
    let _ = conn.close(200, "done".into()).await;
}

/// A name part no other run uses.
fn uuid_like() -> String {
    cloud_model::InstanceId::new().to_string().replace('-', "")
}
