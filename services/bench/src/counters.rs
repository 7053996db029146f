//! Counters read around a measured phase: database statements (minus the
//! harness's own watcher queries) and bus
//! messages (the process-wide counters the services export at
//! `/metrics`), and the CPU time of this process and of the database and
//! broker servers, and memory, from `/proc`.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A reading of every counter.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    at: Instant,
    statements: u64,
    published: u64,
    consumed: u64,
    cpu_s: f64,
    postgres_cpu_s: f64,
    rabbitmq_cpu_s: f64,
}

impl Reading {
    /// Reads now.
    pub fn now() -> Reading {
        let bus = cloud_bus::stats();
        Reading {
            at: Instant::now(),
            statements: cloud_service_common::telemetry::db_statements()
                .saturating_sub(crate::watch::queries()),
            published: bus.published,
            consumed: bus.consumed,
            cpu_s: process_cpu_seconds(),
            postgres_cpu_s: cpu_seconds_of("postgres"),
            rabbitmq_cpu_s: cpu_seconds_of("beam.smp"),
        }
    }

    /// What happened between `self` and `later`, per `ops` operations
    /// (`_per_op` fields), net of `idle` (background work per second:
    /// heartbeats, reconcilers) when given.
    pub fn per_op(&self, later: &Reading, ops: u64, idle: Option<&Rates>) -> Value {
        let secs = later.at.duration_since(self.at).as_secs_f64();
        let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
        let idle = idle.copied().unwrap_or_default();
        let net = |total: f64, per_s: f64| (total - per_s * secs).max(0.0);
        let ops = ops.max(1) as f64;
        let r = crate::stats::round3;
        json!({
            "db_statements": d(self.statements, later.statements),
            "db_statements_per_op": r(net(d(self.statements, later.statements), idle.statements) / ops),
            "bus_published_per_op": r(net(d(self.published, later.published), idle.published) / ops),
            "bus_consumed_per_op": r(net(d(self.consumed, later.consumed), idle.consumed) / ops),
            "cpu_s": r(later.cpu_s - self.cpu_s),
            "postgres_cpu_s": r(later.postgres_cpu_s - self.postgres_cpu_s),
            "rabbitmq_cpu_s": r(later.rabbitmq_cpu_s - self.rabbitmq_cpu_s),
        })
    }

    /// Per-second rates between `self` and `later`.
    pub fn rates(&self, later: &Reading) -> Rates {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        Rates {
            statements: later.statements.saturating_sub(self.statements) as f64 / secs,
            published: later.published.saturating_sub(self.published) as f64 / secs,
            consumed: later.consumed.saturating_sub(self.consumed) as f64 / secs,
        }
    }
}

/// Background activity per second.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rates {
    /// Database statements per second.
    pub statements: f64,
    /// Messages published per second.
    pub published: f64,
    /// Messages consumed per second.
    pub consumed: f64,
}

/// Measures the background rates over `window` of idleness.
pub async fn idle_rates(window: Duration) -> Rates {
    let a = Reading::now();
    tokio::time::sleep(window).await;
    a.rates(&Reading::now())
}

/// User + system CPU seconds of process `pid` ("self" for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn process_cpu_seconds() -> f64 {
    cpu_seconds("self").unwrap_or(0.0)
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    100.0
}

/// `VmRSS` and `VmHWM` (peak) of process `pid` in MiB.
pub fn rss_mib(pid: &str) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// `RssAnon` (heap and stacks, without the mapped binary and
/// libraries) of process `pid` in MiB.
pub fn rss_anon_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Total CPU seconds of every process whose command name is `comm`
/// (the database and broker servers: `postgres`, `beam.smp`).
pub fn cpu_seconds_of(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.to_owned();
            pid.parse::<u32>().ok()?;
            let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (c.trim() == comm).then(|| cpu_seconds(&pid)).flatten()
        })
        .sum()
}
