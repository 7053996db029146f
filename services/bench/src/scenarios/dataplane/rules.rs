//! Phase 1, a security-group rule to its enforcement: on 2 hosts whose
//! guests share one group, ingress rules created one at a time through the
//! API, each timed from just before its POST until every host with a
//! member applied a state containing it; for the first few, also until a
//! TCP connection from a guest on one host to the newly opened port of a
//! guest on the other succeeds.

use super::cloud::{DpCloud, Guest};
use super::observe::{BusCounts, settle};
use crate::stats::Samples;
use anyhow::Context;
use cloud_driver::HostNetwork;
use cloud_driver::network::Direction;
use cloud_model::Timestamp;
use serde_json::{Value, json};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a rule may take to show before the run fails.
const RULE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one TCP connection attempt waits for the handshake: the
/// granularity of the TCP figure (a SYN the host drops gets no answer).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(5);
/// How long no agent may pull or apply for the hosts to count as settled.
const QUIET: Duration = Duration::from_secs(1);
/// First port opened (rule `i` opens `FIRST_PORT + i`).
const FIRST_PORT: u16 = 20000;

/// The rule phase's samples.
#[derive(Default)]
pub struct RuleFigures {
    /// POST to applied on every host with a member.
    pub applied_all: Samples,
    /// POST to applied on the receiver's host (where ingress is enforced).
    pub applied: Samples,
    /// POST to a TCP connection succeeding.
    pub tcp: Samples,
    /// The TCP figure minus the receiver host's applied figure, rule by
    /// rule (negative: the connection got through before the apply
    /// returned; the ruleset is loaded before the apply's last steps).
    pub tcp_after_applied: Samples,
    /// The POST's round trip.
    pub api: Samples,
    /// POST to the conductor starting to compute the receiver host's state
    /// that carried the rule (its revision): the API's commit, the
    /// `network_changed` cast, the fan-out to hosts and the agent's pull.
    pub to_pull: Samples,
    /// The conductor computing that state and the agent receiving it.
    pub pull: Samples,
    /// The receiver host's apply of it.
    pub apply: Samples,
    /// Rules created (and deleted afterwards).
    pub rules: usize,
    /// Pulls (`get_host_network` calls) and nudges (`sync_network`
    /// casts) of all the creations.
    pub bus: BusCounts,
}

impl RuleFigures {
    /// The figures as report fields.
    pub fn to_json(&self) -> Value {
        let per = |n: u64| crate::stats::round3(n as f64 / self.rules.max(1) as f64);
        let mut out = json!({
            "rules_created": self.rules,
            "tcp_samples": self.tcp.len(),
            "rule_pulls_per_rule": per(self.bus.pulls),
            "rule_nudges_per_rule": per(self.bus.nudges),
        });
        for (name, s) in [
            ("rule_applied_all", &self.applied_all),
            ("rule_applied", &self.applied),
            ("rule_tcp", &self.tcp),
            ("rule_tcp_after_applied", &self.tcp_after_applied),
            ("rule_api", &self.api),
            ("rule_to_pull", &self.to_pull),
            ("rule_pull", &self.pull),
            ("rule_apply", &self.apply),
        ] {
            crate::scenarios::boot::merge(&mut out, s.summary(name));
        }
        out
    }
}

/// Runs `rules` rule creations (TCP checked for the first `tcp_samples`)
/// on `group`, from `client` to `server`'s port, then deletes the rules.
pub async fn run(
    cloud: &DpCloud,
    group: &str,
    client: &Guest,
    server: &Guest,
    rules: usize,
    tcp_samples: usize,
) -> anyhow::Result<RuleFigures> {
    let mut f = RuleFigures::default();
    let hosts: Vec<usize> = vec![client.host, server.host];
    let mut created = Vec::new();
    settle(&cloud.bus, &cloud.drivers, QUIET, RULE_TIMEOUT).await;
    let before = cloud.bus.counts();
    for i in 0..rules {
        let port = FIRST_PORT + u16::try_from(i).context("too many rules")?;
        // The listener first, so only the rule stands between the guests.
        let listener = (i < tcp_samples).then(|| serve(&server.ns, port));
        let connector = if i < tcp_samples {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some(connect_until(
                &server.ns,
                &client.ns,
                &server.ip,
                port,
                RULE_TIMEOUT,
            )?)
        } else {
            None
        };
        for &h in &hosts {
            cloud.drivers[h].clear();
        }
        let since = Timestamp::now();
        let t0 = Instant::now();
        let rule = cloud.tcp_rule(group, port).await?;
        f.api.push(t0.elapsed());
        created.push(rule);
        let has = |s: &HostNetwork| has_rule(s, group, port);
        let mut slowest = Duration::ZERO;
        let mut applied_ms = 0.0;
        for &h in &hosts {
            let rec = cloud.drivers[h]
                .first(has, RULE_TIMEOUT)
                .await
                .with_context(|| format!("host {h} did not apply the rule for port {port}"))?;
            let done = rec.finished.duration_since(t0);
            slowest = slowest.max(done);
            if h == server.host {
                f.applied.push(done);
                applied_ms = done.as_secs_f64() * 1000.0;
                let rev_ms = (rec.state.revision - since.micros()) as f64 / 1000.0;
                let start_ms = rec.started.duration_since(t0).as_secs_f64() * 1000.0;
                f.to_pull.push_ms(rev_ms);
                f.pull.push_ms(start_ms - rev_ms);
                f.apply.push(rec.finished.duration_since(rec.started));
            }
        }
        f.applied_all.push(slowest);
        if let Some(rx) = connector {
            let at = rx.await.context("the connecting thread")?;
            let at = at.with_context(|| {
                format!(
                    "no TCP connection to {}:{port} within {RULE_TIMEOUT:?}",
                    server.ip
                )
            })?;
            let tcp = at.duration_since(t0);
            f.tcp.push(tcp);
            f.tcp_after_applied
                .push_ms(tcp.as_secs_f64() * 1000.0 - applied_ms);
        }
        drop(listener);
        f.rules += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle(&cloud.bus, &cloud.drivers, QUIET, RULE_TIMEOUT).await;
    let after = cloud.bus.counts();
    f.bus = BusCounts {
        pulls: after.pulls - before.pulls,
        nudges: after.nudges - before.nudges,
    };
    for rule in created {
        let r = cloud
            .admin
            .client
            .delete(&format!("/network/v2.0/security-group-rules/{rule}"))
            .await;
        anyhow::ensure!(r.status == 204, "rule delete ({}): {}", r.status, r.body);
    }
    Ok(f)
}

/// Whether `state` carries an ingress TCP rule for `port` in `group`.
fn has_rule(state: &HostNetwork, group: &str, port: u16) -> bool {
    state.security_groups.iter().any(|g| {
        g.id == group
            && g.rules.iter().any(|r| {
                r.direction == Direction::Ingress
                    && r.protocol == Some(6)
                    && r.port_min == Some(port)
            })
    })
}

/// A busybox `nc` in guest `ns` answering `ok` on `port` (restarted after
/// each connection) until the handle is dropped.
pub struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn serve(ns: &str, port: u16) -> Listener {
    let ns = ns.to_owned();
    Listener(tokio::spawn(async move {
        loop {
            let p = port.to_string();
            let args = ["nc", "-l", "-p", &p, "-e", "echo", "ok"];
            if cloud_test_utils::netbed::in_guest(&ns, &args)
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }))
}

/// Connects from inside guest `client_ns` to `ip:port` again and again
/// (each attempt waits [`CONNECT_TIMEOUT`] for the handshake) until one
/// reads `ok`; the receiver gets when that connection was established, or
/// `None` after `timeout`. A thread of its own enters the guest's
/// namespace (`setns` changes only the calling thread): no process per
/// attempt, so attempts are cheap and frequent. `server_ns` only names the
/// error.
fn connect_until(
    server_ns: &str,
    client_ns: &str,
    ip: &str,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<Option<Instant>>> {
    let addr: SocketAddr = format!("{ip}:{port}")
        .parse()
        .with_context(|| format!("address of {server_ns}"))?;
    let path = cloud_dataplane::netns::path(client_ns);
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        if nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            let _ = tx.send(None);
            return;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
                // Refused (the listener restarting) or dropped (no rule).
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let at = Instant::now();
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            if reply.trim() == "ok" {
                let _ = tx.send(Some(at));
                return;
            }
        }
        let _ = tx.send(None);
    });
    Ok(rx)
}
