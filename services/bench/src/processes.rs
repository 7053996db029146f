//! Idle memory of the real service binaries (`cloud-api`,
//! `cloud-conductor`, `cloud-scheduler`, `cloud-compute` on the fake
//! driver), each in its own process on PostgreSQL and RabbitMQ, as
//! deployed; measured from `/proc/PID/status` after they settle.

use crate::counters::{rss_anon_mib, rss_mib};
use crate::stats::round3;
use cloud_test_utils::TestDb;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Starts the four services from `bin` and returns each one's idle
/// resident set (`{name}_rss_mib`).
pub async fn idle_rss(bin: &Path) -> anyhow::Result<Value> {
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
    let compute = write(
        "compute.toml",
        format!("[agent]\nhost = \"idle-host\"\n\n[driver]\nkind = \"fake\"\n\n{bus}"),
    )?;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("CLOUD_ADMIN_PASSWORD", "bench-idle"),
    ];
    // The API migrates and bootstraps; start it first.
    let api_p = start(bin, "cloud-api", &api, &env)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "cloud-api did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let services = [
        ("cloud-api", api_p),
        (
            "cloud-conductor",
            start(bin, "cloud-conductor", &conductor, &env)?,
        ),
        (
            "cloud-scheduler",
            start(bin, "cloud-scheduler", &scheduler, &env)?,
        ),
        // The agent gets no database credentials.
        ("cloud-compute", start(bin, "cloud-compute", &compute, &[])?),
    ];
    tokio::time::sleep(IDLE).await;
    let mut out = Map::new();
    for (name, s) in &services {
        let key = name.trim_start_matches("cloud-");
        let pid = s.0.id().to_string();
        let rss = rss_mib(&pid).ok_or_else(|| anyhow::anyhow!("{name} is not running"))?;
        out.insert(format!("idle_rss_{key}_process_mib"), json!(round3(rss.0)));
        let anon = rss_anon_mib(&pid).unwrap_or(0.0);
        out.insert(format!("idle_rss_{key}_anon_mib"), json!(round3(anon)));
    }
    drop(services);
    drop(db);
    remove_bus_names(&amqp, &prefix).await;
    Ok(Value::Object(out))
}

/// Deletes the durable queues and the exchange the services declared
/// under `prefix` (they have no expiry, as in production).
async fn remove_bus_names(url: &str, prefix: &str) {
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        tracing::warn!("cannot reach RabbitMQ to remove the bench queues");
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for q in ["conductor", "scheduler", "compute.idle-host"] {
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
