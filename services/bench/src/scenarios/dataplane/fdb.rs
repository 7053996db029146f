//! Phase 2, forwarding entries reaching every host: K namespace hosts with
//! one guest each on one shared network; then one more server, booted R
//! times, each timed from just before its POST until every other host
//! applied a state whose VXLAN forwarding entries (l2population) carry its
//! MAC. The kernel's forwarding database of every host is read afterwards
//! (`bridge fdb show dev vxlan-<vni>`) to confirm the entries are there.

use super::cloud::DpCloud;
use super::observe::settle;
use crate::stats::{Samples, round3};
use anyhow::{Context, bail};
use cloud_driver::HostNetwork;
use cloud_driver::network::SegmentSpec;
use cloud_model::{InstanceId, Timestamp};
use cloud_store::Scope;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long every host may take to carry the new MAC before the run fails.
const FDB_TIMEOUT: Duration = Duration::from_secs(120);
/// Servers booted at once while filling the hosts.
const FILL_CONCURRENCY: usize = 4;
/// How long no agent may pull or apply for the cloud to count as settled.
const QUIET: Duration = Duration::from_secs(2);

/// The phase's figures as report fields.
pub async fn run(cloud: &DpCloud, repeats: usize) -> anyhow::Result<Value> {
    let hosts = cloud.bed.hosts.len();
    let net = cloud.network("bench-fdb", "10.93.0.0/22").await?;
    // Fill: one guest per host.
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let filled: Vec<anyhow::Result<()>> = futures::stream::iter(0..hosts)
        .map(|h| {
            let (net, done) = (&net, &done);
            async move {
                let id = cloud.post_server(&format!("fill-{h}"), net, h, &[]).await?;
                cloud.wait_server(&id, Some("ACTIVE")).await?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 5 == 0 || n == hosts {
                    eprintln!(
                        "  {n}/{hosts} servers ACTIVE ({:.0} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                Ok(())
            }
        })
        .buffer_unordered(FILL_CONCURRENCY)
        .collect()
        .await;
    for r in filled {
        r?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    eprintln!("  waiting for the hosts to settle");
    settle(&cloud.bus, &cloud.drivers, QUIET, Duration::from_secs(600)).await;
    let vni = cloud.drivers[0]
        .last()
        .and_then(|r| {
            r.state.networks.iter().find_map(|n| match n.segment {
                SegmentSpec::Vxlan { vni } if n.id == net => Some(vni),
                _ => None,
            })
        })
        .context("host 1 carries no VXLAN segment of the network")?;

    let mut converged = Samples::new();
    let mut own = Samples::new();
    let mut active = Samples::new();
    let mut last_pull = Samples::new();
    let mut last_delivered = Samples::new();
    let mut pull = Samples::new();
    let mut apply = Samples::new();
    let (mut pulls, mut nudges, mut applies) = (Vec::new(), Vec::new(), Vec::new());
    let mut verified_min = usize::MAX;
    for r in 0..repeats {
        let target = r % hosts;
        for d in &cloud.drivers {
            d.clear();
        }
        let before = cloud.bus.counts();
        let since = Timestamp::now();
        let t0 = Instant::now();
        let id = cloud
            .post_server(&format!("probe-{r}"), &net, target, &[])
            .await?;
        let mac = loop {
            if let Some(p) = cloud.port_of(&id).await? {
                break p["mac_address"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
            }
            if t0.elapsed() > FDB_TIMEOUT {
                bail!("server {id} got no port");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let carries = |s: &HostNetwork| {
            s.networks
                .iter()
                .any(|n| n.remote_ports.iter().any(|p| p.mac == mac))
        };
        let waits = cloud.drivers.iter().enumerate().map(|(h, d)| {
            let carries = &carries;
            let mac = &mac;
            async move {
                if h == target {
                    let own = d.first(|s| s.ports.iter().any(|p| p.mac == *mac), FDB_TIMEOUT);
                    return (h, own.await);
                }
                (h, d.first(carries, FDB_TIMEOUT).await)
            }
        });
        let results = futures::future::join_all(waits).await;
        let mut slowest = Duration::ZERO;
        let (mut pull_ms, mut delivered): (f64, Duration) = (0.0, Duration::ZERO);
        for (h, rec) in results {
            let rec = rec.with_context(|| format!("host {h} did not apply the new port"))?;
            let at = rec.finished.duration_since(t0);
            if h == target {
                own.push(at);
                continue;
            }
            slowest = slowest.max(at);
            let rev_ms = (rec.state.revision - since.micros()) as f64 / 1000.0;
            let start = rec.started.duration_since(t0);
            pull_ms = pull_ms.max(rev_ms);
            delivered = delivered.max(start);
            pull.push_ms(start.as_secs_f64() * 1000.0 - rev_ms);
            apply.push(rec.finished.duration_since(rec.started));
        }
        converged.push(slowest);
        last_pull.push_ms(pull_ms);
        last_delivered.push(delivered);
        cloud.wait_server(&id, Some("ACTIVE")).await?;
        let store = &cloud.plane.api.db.store;
        let inst = store
            .instance_get(InstanceId::parse(&id).context("server id")?, &Scope::All)
            .await?;
        if let Some(at) = inst.launched_at {
            active.push_ms((at.micros() - since.micros()) as f64 / 1000.0);
        }
        settle(&cloud.bus, &cloud.drivers, QUIET, Duration::from_secs(300)).await;
        let after = cloud.bus.counts();
        pulls.push(after.pulls - before.pulls);
        nudges.push(after.nudges - before.nudges);
        applies.push(cloud.drivers.iter().map(|d| d.count()).sum::<usize>());
        let verified = verify_fdb(cloud, target, vni, &mac).await;
        verified_min = verified_min.min(verified);
        eprintln!(
            "  boot {}/{repeats}: every other host carries its MAC after {:.0} ms \
             ({} pulls); {verified}/{} kernel FDBs checked",
            r + 1,
            slowest.as_secs_f64() * 1000.0,
            after.pulls - before.pulls,
            hosts - 1
        );
        cloud.delete_server(&id).await?;
        settle(&cloud.bus, &cloud.drivers, QUIET, Duration::from_secs(300)).await;
    }
    let mean = |v: &[u64]| round3(v.iter().sum::<u64>() as f64 / v.len().max(1) as f64);
    let mut out = json!({
        "fdb_hosts": hosts,
        "fdb_repeats": repeats,
        "fill_wall_s": round3(fill_s),
        "fdb_pulls_per_boot": mean(&pulls),
        "fdb_nudges_per_boot": mean(&nudges),
        "fdb_applies_per_boot": mean(&applies.iter().map(|&a| a as u64).collect::<Vec<_>>()),
        "fdb_kernel_verified_hosts": if repeats == 0 { 0 } else { verified_min },
    });
    for (name, s) in [
        ("fdb_converged", &converged),
        ("fdb_own_host", &own),
        ("fdb_active", &active),
        ("fdb_last_pull", &last_pull),
        ("fdb_pull", &pull),
        ("fdb_last_delivered", &last_delivered),
        ("fdb_apply", &apply),
    ] {
        crate::scenarios::boot::merge(&mut out, s.summary(name));
    }
    Ok(out)
}

/// How many hosts other than `target` have `mac` in the kernel forwarding
/// database of `vxlan-<vni>`, pointing at `target`'s underlay address.
async fn verify_fdb(cloud: &DpCloud, target: usize, vni: u32, mac: &str) -> usize {
    let dev = cloud_dataplane::names::vxlan_name(vni);
    let dst = cloud.bed.hosts[target].underlay_ip.to_string();
    let checks = cloud
        .bed
        .hosts
        .iter()
        .enumerate()
        .filter(|(h, _)| *h != target)
        .map(|(_, h)| {
            let dev = &dev;
            let dst = &dst;
            async move {
                let shown = cloud_dataplane::cmd::run(
                    "bridge",
                    ["-n", &h.namespace, "fdb", "show", "dev", dev],
                )
                .await
                .unwrap_or_default();
                shown.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with(mac) && l.contains(&format!("dst {dst}"))
                })
            }
        });
    futures::stream::iter(checks)
        .buffer_unordered(8)
        .collect::<Vec<bool>>()
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}
