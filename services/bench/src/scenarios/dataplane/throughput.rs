//! Phase 3, the data plane's cost: TCP throughput with iperf3 between two
//! guests on different hosts (bridge, VXLAN over the underlay bridge,
//! bridge) and on the same host (one bridge), filtered by their security
//! groups and with port security off on their ports (no anti-spoofing and
//! no group rules; the packets still pass netfilter's hooks and connection
//! tracking), in interleaved rounds.

use super::cloud::{DpCloud, Guest};
use anyhow::{Context, bail};
use cloud_dataplane::cmd;
use cloud_driver::HostNetwork;
use serde_json::{Value, json};
use std::time::Duration;

/// The port iperf3 listens on.
const IPERF_PORT: u16 = 5201;

/// Fails naming the package when iperf3 is missing.
pub fn check_iperf() -> anyhow::Result<()> {
    if cmd::find_program("iperf3").is_none() {
        bail!(
            "the dataplane scenario's throughput phase needs iperf3 (Debian package iperf3; \
             deploy/libvirt-host.sh installs it), or --skip-throughput"
        );
    }
    Ok(())
}

/// Measures `client` -> `cross` (another host) and `client` -> `same` (the
/// client's host), filtered and with port security off, `runs` rounds of
/// the four, interleaved so that load on the machine hits all alike;
/// reports the median of each (and the range). `group` is the guests'
/// group (a rule opens the iperf3 port on it).
pub async fn run(
    cloud: &DpCloud,
    group: &str,
    guests: [&Guest; 3],
    secs: u32,
    runs: usize,
) -> anyhow::Result<Value> {
    let [client, cross, same] = guests;
    let hosts = [client.host, cross.host];
    for h in hosts {
        cloud.drivers[h].clear();
    }
    cloud.tcp_rule(group, IPERF_PORT).await?;
    for h in hosts {
        let has = |s: &HostNetwork| {
            s.security_groups
                .iter()
                .any(|g| g.id == group && g.rules.iter().any(|r| r.port_min == Some(IPERF_PORT)))
        };
        cloud.drivers[h]
            .first(has, Duration::from_secs(30))
            .await
            .context("the iperf3 rule did not reach the hosts")?;
    }
    let dir = cloud.bed.dir.clone();
    let mut bps: [Vec<f64>; 4] = Default::default();
    for _ in 0..runs.max(1) {
        bps[0].push(iperf(&dir, client, cross, secs).await?);
        bps[1].push(iperf(&dir, client, same, secs).await?);
        port_security(cloud, group, &guests, false).await?;
        bps[2].push(iperf(&dir, client, cross, secs).await?);
        bps[3].push(iperf(&dir, client, same, secs).await?);
        port_security(cloud, group, &guests, true).await?;
    }
    let mut out = json!({"iperf_secs": secs, "iperf_runs": runs.max(1)});
    for (name, v) in [
        "tcp_cross_host",
        "tcp_same_host",
        "tcp_cross_host_no_port_security",
        "tcp_same_host_no_port_security",
    ]
    .into_iter()
    .zip(bps.iter_mut())
    {
        v.sort_by(f64::total_cmp);
        let gbps = |b: f64| (b / 1e9 * 1000.0).round() / 1000.0;
        out[format!("{name}_gbps")] = json!(gbps(v[v.len() / 2]));
        out[format!("{name}_min_gbps")] = json!(gbps(v[0]));
        out[format!("{name}_max_gbps")] = json!(gbps(v[v.len() - 1]));
    }
    Ok(out)
}

/// Turns port security of `guests`' ports off (no groups) or back on (in
/// `group`), and waits until their hosts applied it.
async fn port_security(
    cloud: &DpCloud,
    group: &str,
    guests: &[&Guest],
    on: bool,
) -> anyhow::Result<()> {
    let mut hosts: Vec<usize> = guests.iter().map(|g| g.host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    for &h in &hosts {
        cloud.drivers[h].clear();
    }
    let groups: Vec<&str> = if on { vec![group] } else { Vec::new() };
    for g in guests {
        let r = cloud
            .admin
            .client
            .put(
                &format!("/network/v2.0/ports/{}", g.port),
                json!({"port": {"port_security_enabled": on, "security_groups": groups}}),
            )
            .await;
        if r.status != 200 {
            bail!("port security {on} ({}): {}", r.status, r.body);
        }
    }
    for h in hosts {
        let mine: Vec<&str> = guests
            .iter()
            .filter(|g| g.host == h)
            .map(|g| g.port.as_str())
            .collect();
        let done = |s: &HostNetwork| {
            mine.iter()
                .all(|p| s.port(p).is_some_and(|p| p.port_security == on))
        };
        cloud.drivers[h]
            .first(done, Duration::from_secs(30))
            .await
            .with_context(|| format!("port security {on} did not reach host {h}"))?;
    }
    Ok(())
}

/// One iperf3 run from `client` to `server` for `secs`: bits per second
/// received. The server is a one-off daemon whose pid file sits in the
/// bed's directory (so the bed's clean-up stops it, should the client
/// fail).
async fn iperf(
    dir: &std::path::Path,
    client: &Guest,
    server: &Guest,
    secs: u32,
) -> anyhow::Result<f64> {
    let pid_file = dir.join(format!("iperf3-{}.pid", server.id));
    let pid = pid_file.display().to_string();
    let port = IPERF_PORT.to_string();
    cmd::run_in(
        Some(&server.ns),
        "iperf3",
        ["-s", "-D", "-1", "-p", &port, "-I", &pid],
    )
    .await?;
    let t = secs.to_string();
    let mut last = None;
    for _ in 0..20 {
        match cmd::run_in(
            Some(&client.ns),
            "iperf3",
            ["-c", &server.ip, "-p", &port, "-t", &t, "-J"],
        )
        .await
        {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out).context("iperf3 -J output")?;
                return v["end"]["sum_received"]["bits_per_second"]
                    .as_f64()
                    .with_context(|| format!("no end.sum_received in {v}"));
            }
            Err(e) => {
                // The daemon may not listen yet.
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = cmd::run("kill", [pid.trim()]).await;
    }
    Err(last.expect("an attempt").context("iperf3 client"))
}
