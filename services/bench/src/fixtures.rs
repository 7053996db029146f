//! Rows written straight into the store when going through the API would
//! only slow the benchmark's set-up down: servers to list, hosts to
//! schedule on.

use crate::env::{PINNED, SMALL};
use cloud_driver::Driver;
use cloud_driver_fake::{FakeConfig, FakeDriver};
use cloud_model::instance::{FlavorSnapshot, Instance, PowerState, TaskState, VmState};
use cloud_model::{ImageId, InstanceId, ProjectId, Timestamp, UserId};
use cloud_store::{HostReport, Store};
use futures::StreamExt;
use std::collections::BTreeMap;

/// The flavor snapshot of a bench flavor (`SMALL` or `PINNED`).
pub fn flavor(id: &str) -> FlavorSnapshot {
    let pinned = id == PINNED;
    FlavorSnapshot {
        id: id.to_owned(),
        name: id.to_owned(),
        vcpus: if pinned { 2 } else { 1 },
        ram_mb: if pinned { 256 } else { 64 },
        disk_gb: 1,
        swap_mb: 0,
        ephemeral_gb: 0,
        extra_specs: if pinned {
            [
                ("hw:numa_nodes".to_owned(), "1".to_owned()),
                ("hw:cpu_policy".to_owned(), "dedicated".to_owned()),
            ]
            .into()
        } else {
            BTreeMap::new()
        },
    }
}

/// A server of `project` with `flavor`; `active` ones run on `host`.
pub fn instance(
    project: &str,
    name: String,
    flavor: FlavorSnapshot,
    active: Option<&str>,
) -> Instance {
    let now = Timestamp::now();
    Instance {
        id: InstanceId::new(),
        project_id: ProjectId::from_string(project),
        user_id: UserId::from_string("bench"),
        hostname: name.clone(),
        name,
        vm_state: if active.is_some() {
            VmState::Active
        } else {
            VmState::Building
        },
        task_state: if active.is_some() {
            None
        } else {
            Some(TaskState::Scheduling)
        },
        power_state: if active.is_some() {
            PowerState::Running
        } else {
            PowerState::NoState
        },
        host: active.map(str::to_owned),
        node: active.map(str::to_owned),
        availability_zone: "nova".into(),
        flavor,
        image_id: ImageId::new(),
        key_name: None,
        key_data: None,
        user_data: None,
        metadata: BTreeMap::new(),
        tags: Vec::new(),
        access_ipv4: String::new(),
        access_ipv6: String::new(),
        config_drive: String::new(),
        launch_index: 0,
        reservation_id: "r-bench".into(),
        server_group_id: None,
        requested_networks: Vec::new(),
        security_groups: vec!["default".into()],
        numa_placement: None,
        fault: None,
        progress: if active.is_some() { 100 } else { 0 },
        state_gen: 0,
        task_deadline: None,
        created_at: now,
        updated_at: now,
        launched_at: active.map(|_| now),
        terminated_at: None,
        deleted_at: None,
    }
}

/// Records `count` active servers of `project` (flavor `SMALL`) in
/// batches, as if they had been booted.
pub async fn seed_servers(
    store: &Store,
    project: &str,
    first: usize,
    count: usize,
) -> anyhow::Result<()> {
    let unlimited = BTreeMap::new();
    let mut i = first;
    while i < first + count {
        let n = 500.min(first + count - i);
        let batch: Vec<Instance> = (i..i + n)
            .map(|j| instance(project, format!("seed-{j}"), flavor(SMALL), Some("host-1")))
            .collect();
        store
            .instances_create(&batch, &format!("req-seed-{i}"), &unlimited)
            .await?;
        i += n;
    }
    Ok(())
}

/// Registers `count` hosts `host-1..` with `host`'s resources as their
/// agents would (compute node, provider, inventories, service record).
pub async fn register_hosts(store: &Store, count: usize, host: FakeConfig) -> anyhow::Result<()> {
    let resources = FakeDriver::new(host).host_resources().await?;
    let inventory: Vec<(String, i64, f64)> = ["VCPU", "MEMORY_MB", "DISK_GB"]
        .iter()
        .map(|c| ((*c).to_owned(), 0, 1.0))
        .collect();
    let results: Vec<Result<_, cloud_model::Error>> = futures::stream::iter(1..=count)
        .map(|i| {
            let report = HostReport {
                host: format!("host-{i}"),
                hypervisor_type: resources.hypervisor_type.clone(),
                hypervisor_version: i64::try_from(resources.hypervisor_version).unwrap_or(0),
                cpu_arch: resources.cpu_arch.clone(),
                vcpus: i64::from(resources.vcpus),
                memory_mb: i64::try_from(resources.memory_mb).unwrap_or(i64::MAX),
                disk_gb: i64::try_from(resources.disk_gb).unwrap_or(i64::MAX),
                numa_topology: serde_json::to_value(&resources.numa_cells).unwrap_or_default(),
                availability_zone: "nova".to_owned(),
                host_ip: None,
                network_node: false,
                inventory: inventory.clone(),
            };
            async move { store.host_register(&report).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}
