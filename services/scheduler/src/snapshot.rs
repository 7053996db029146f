//! Turning store records into the scheduler's host snapshots.

use crate::config::SchedulerConfig;
use cloud_model::{Error, ProviderId, Timestamp};
use cloud_scheduler_core::{CellState, HostState, Inventory, NumaRequest, RequestSpec};
use cloud_store::{ComputeNode, InventoryState, Store};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Deserialize)]
struct ReportedCell {
    id: u32,
    cpus: Vec<u32>,
    memory_mb: u64,
    #[serde(default)]
    hugepages: Vec<(u64, u64)>,
}

fn inventory(i: &InventoryState) -> Inventory {
    Inventory {
        total: i.total,
        reserved: i.reserved,
        allocation_ratio: i.allocation_ratio,
        used: i.used,
    }
}

/// Snapshots of `nodes`. NUMA usage is read only when the request needs
/// it, so plain requests cost one query for any number of hosts.
pub(crate) async fn host_states(
    store: &Store,
    nodes: Vec<ComputeNode>,
    spec: &RequestSpec,
    config: &SchedulerConfig,
) -> Result<(Vec<HostState>, HashMap<String, ProviderId>), Error> {
    let now = Timestamp::now();
    let providers: HashMap<String, ProviderId> = nodes
        .iter()
        .map(|n| (n.host.clone(), n.provider_id))
        .collect();
    let needs_numa = matches!(NumaRequest::from_spec(spec), Ok(Some(_)));
    let numa_usage = if needs_numa {
        let ids: Vec<ProviderId> = nodes.iter().map(|n| n.provider_id).collect();
        store.numa_usage(&ids).await?
    } else {
        HashMap::new()
    };
    let failures: HashMap<String, i64> = store
        .host_failures_since(now.plus_seconds(-config.failure_window_secs))
        .await?
        .into_iter()
        .collect();
    let states = nodes
        .into_iter()
        .map(|n| {
            let cells = if needs_numa {
                let (pinned, pages) = numa_usage.get(&n.provider_id).cloned().unwrap_or_default();
                let pinned: BTreeSet<u32> = pinned.into_iter().collect();
                serde_json::from_value::<Vec<ReportedCell>>(n.numa_topology.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| CellState {
                        pinned: c
                            .cpus
                            .iter()
                            .copied()
                            .filter(|x| pinned.contains(x))
                            .collect(),
                        hugepages: c
                            .hugepages
                            .iter()
                            .map(|(size, total)| {
                                let used: u64 = pages
                                    .iter()
                                    .filter(|(cell, kb, _)| *cell == c.id && kb == size)
                                    .map(|(_, _, p)| *p)
                                    .sum();
                                (*size, *total, used)
                            })
                            .collect(),
                        id: c.id,
                        cpus: c.cpus,
                        memory_mb: c.memory_mb,
                        memory_used_mb: 0,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            HostState {
                up: !n.forced_down
                    && n.last_seen_up.is_some_and(|t| {
                        t.micros() >= now.plus_seconds(-config.service_down_secs).micros()
                    }),
                enabled: !n.disabled,
                forced_down: n.forced_down,
                availability_zone: n.availability_zone.clone(),
                hypervisor_type: n.hypervisor_type.clone(),
                cpu_arch: n.cpu_arch.clone(),
                vcpu: inventory(&n.vcpu),
                memory_mb: inventory(&n.memory_mb),
                disk_gb: inventory(&n.disk_gb),
                cells,
                recent_failures: u32::try_from(failures.get(&n.host).copied().unwrap_or(0))
                    .unwrap_or(u32::MAX),
                host: n.host,
            }
        })
        .collect();
    Ok((states, providers))
}
