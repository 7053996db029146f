//! `dataplane`: the host data plane as tenants meet it, on namespace hosts
//! (`cloud-test-utils`' `NetBed`: each host a network namespace on an
//! underlay bridge, driven by a compute agent of this process on the
//! `netns` driver; guests are namespaces running busybox). Needs root.
//!
//! 1. **Rules**: on 2 hosts, a security-group rule created through the
//!    API, timed to the moment every host's agent applied a state with it,
//!    and to a TCP connection through it succeeding ([`rules`]).
//! 2. **Forwarding entries**: on `--hosts` hosts with one guest each on
//!    one network, a new server's MAC timed to every other host's VXLAN
//!    forwarding entries, with the pulls it cost ([`fdb`]).
//! 3. **Throughput**: iperf3 between two guests across VXLAN and on one
//!    bridge, filtered and with port security off ([`throughput`]).
//!
//! Everything it makes is removed at the end (the bed's namespaces, the
//! database, the queues).

mod cloud;
mod fdb;
mod observe;
mod rules;
mod throughput;

use crate::env::Target;
use crate::report::Report;
use crate::scenarios::boot::merge;
use cloud::DpCloud;
use serde_json::json;

/// Flags of `dataplane`.
#[derive(Clone, Debug, clap::Args)]
pub struct DataplaneArgs {
    /// Security-group rules created one at a time (phase 1).
    #[arg(long, default_value_t = 50)]
    pub rules: usize,
    /// Of those, how many are also timed to a TCP connection through them.
    #[arg(long, default_value_t = 10)]
    pub tcp_samples: usize,
    /// Guests per host in phase 1 (2 hosts; at least 2 for the same-host
    /// throughput pair).
    #[arg(long, default_value_t = 2)]
    pub guests_per_host: usize,
    /// Namespace hosts in phase 2, one guest each.
    #[arg(long, default_value_t = 50)]
    pub hosts: usize,
    /// Servers booted (and deleted) one after another in phase 2.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Seconds of each iperf3 run (phase 3).
    #[arg(long, default_value_t = 5)]
    pub iperf_secs: u32,
    /// Rounds of the four iperf3 runs (medians reported).
    #[arg(long, default_value_t = 3)]
    pub iperf_runs: usize,
    /// Skip phases 1 and 3 (rules, throughput).
    #[arg(long)]
    pub skip_rules: bool,
    /// Skip phase 2 (forwarding entries on many hosts).
    #[arg(long)]
    pub skip_fdb: bool,
    /// Skip phase 3 (throughput; it needs iperf3).
    #[arg(long)]
    pub skip_throughput: bool,
}

/// Runs the scenario.
pub async fn run(target: Target, args: &DataplaneArgs) -> anyhow::Result<Report> {
    let mut report = Report::new("dataplane", target.label());
    report.param("rules", args.rules);
    report.param("tcp_samples", args.tcp_samples);
    report.param("guests_per_host", args.guests_per_host);
    report.param("hosts", args.hosts);
    report.param("repeats", args.repeats);
    report.param("iperf_secs", args.iperf_secs);
    report.param("iperf_runs", args.iperf_runs);
    if !args.skip_rules && !args.skip_throughput {
        throughput::check_iperf()?;
    }
    let mut results = json!({});
    if !args.skip_rules {
        eprintln!("dataplane: phase 1 (rules) and 3 (throughput) on 2 namespace hosts");
        let cloud = DpCloud::start(target, 2).await?;
        let out = small_cloud_phases(&cloud, args).await;
        cloud.stop().await;
        merge(&mut results, out?);
    }
    if !args.skip_fdb {
        eprintln!(
            "dataplane: phase 2 (forwarding entries) on {} namespace hosts",
            args.hosts
        );
        let cloud = DpCloud::start(target, args.hosts.max(2)).await?;
        let out = fdb::run(&cloud, args.repeats).await;
        cloud.stop().await;
        merge(&mut results, out?);
    }
    report.extend(results);
    Ok(report)
}

/// Phases 1 and 3 on a 2-host cloud.
async fn small_cloud_phases(
    cloud: &DpCloud,
    args: &DataplaneArgs,
) -> anyhow::Result<serde_json::Value> {
    let net = cloud.network("bench-rules", "10.92.0.0/24").await?;
    let group = cloud.group("bench-rules").await?;
    let per_host = args.guests_per_host.max(2);
    let mut ids = Vec::new();
    for h in 0..2 {
        for k in 0..per_host {
            let name = format!("g{h}-{k}");
            ids.push(cloud.post_server(&name, &net, h, &["bench-rules"]).await?);
        }
    }
    let mut guests = Vec::new();
    for id in &ids {
        let g = cloud.guest(id).await?;
        cloud.wait_address(&g).await?;
        guests.push(g);
    }
    eprintln!("  {} guests up", guests.len());
    let on = |h: usize| guests.iter().filter(move |g| g.host == h);
    let client = on(0).next().cloned().expect("a guest on host 1");
    let server = on(1).next().cloned().expect("a guest on host 2");
    let same = on(0).nth(1).cloned().expect("two guests on host 1");
    let f = rules::run(
        cloud,
        &group,
        &client,
        &server,
        args.rules,
        args.tcp_samples,
    )
    .await?;
    let mut out = f.to_json();
    eprintln!("  {} rules timed", f.rules);
    if !args.skip_throughput {
        merge(
            &mut out,
            throughput::run(
                cloud,
                &group,
                [&client, &server, &same],
                args.iperf_secs,
                args.iperf_runs,
            )
            .await?,
        );
    }
    Ok(out)
}
