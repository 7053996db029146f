//! Images, flavors and hosts recorded straight in the store, for scenarios
//! that boot on the fake driver (it never reads image bytes, so nothing is
//! uploaded; the API's own tests cover uploads and flavor creation).

use cloud_model::image::Image;
use cloud_model::{Error, ImageId, ProjectId, Timestamp};
use cloud_store::{HostReport, Store};
use std::collections::BTreeMap;

/// Records an active public qcow2 image named `name`, owned by `owner`.
pub async fn record_active_image(store: &Store, owner: &str, name: &str) -> Result<ImageId, Error> {
    let id = ImageId::new();
    let now = Timestamp::now();
    store
        .image_create(&Image {
            id,
            owner: ProjectId::from_string(owner),
            name: Some(name.to_owned()),
            status: "active".to_owned(),
            disk_format: Some("qcow2".to_owned()),
            container_format: Some("bare".to_owned()),
            visibility: "public".to_owned(),
            size: Some(1024),
            virtual_size: None,
            checksum: Some("00".repeat(16)),
            os_hash_algo: Some("sha512".to_owned()),
            os_hash_value: Some("00".repeat(64)),
            min_disk: 0,
            min_ram: 0,
            protected: false,
            os_hidden: false,
            properties: BTreeMap::new(),
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok(id)
}

/// Records a public flavor `id` named `name` (1 GiB disk) with `specs` as
/// its extra specs.
pub async fn record_flavor(
    store: &Store,
    id: &str,
    name: &str,
    vcpus: i64,
    ram_mb: i64,
    specs: &[(&str, &str)],
) -> Result<(), Error> {
    store
        .flavor_create(&cloud_model::flavor::NewFlavor {
            id: Some(cloud_model::FlavorId::from_string(id)),
            name: name.to_owned(),
            vcpus,
            ram_mb,
            disk_gb: 1,
            swap_mb: 0,
            ephemeral_gb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            description: None,
        })
        .await?;
    if !specs.is_empty() {
        let map: BTreeMap<String, String> = specs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        store
            .flavor_extra_specs_set(&cloud_model::FlavorId::from_string(id), &map)
            .await?;
    }
    Ok(())
}

/// What a fake compute host `host` reports: 4 vCPUs, 4 GiB, 100 GB of
/// disk, zone `nova`, no host IP, no network role, the default inventory.
/// Tests change what they need with `HostReport { vcpus: 8, ..fake_host_report("h1") }`
/// rather than spelling every field again.
pub fn fake_host_report(host: &str) -> HostReport {
    HostReport {
        host: host.into(),
        hypervisor_type: "fake".into(),
        hypervisor_version: 1,
        cpu_arch: "x86_64".into(),
        vcpus: 4,
        memory_mb: 4096,
        disk_gb: 100,
        numa_topology: serde_json::json!([]),
        availability_zone: "nova".into(),
        host_ip: None,
        network_node: false,
        inventory: Vec::new(),
    }
}

/// Registers `host` as an up compute host (fake hypervisor, 4 vCPUs,
/// 4 GiB, zone `nova`, host IP 192.0.2.1) with the network role, so that
/// routers have somewhere to go.
pub async fn record_network_node(store: &Store, host: &str) -> Result<(), Error> {
    store
        .host_register(&HostReport {
            disk_gb: 40,
            host_ip: Some("192.0.2.1".into()),
            network_node: true,
            ..fake_host_report(host)
        })
        .await?;
    Ok(())
}

/// Lifts `project`'s compute quotas (instances, cores, ram, server groups
/// and their members), for scenarios that boot many servers.
pub async fn lift_compute_quotas(store: &Store, project: &str) -> Result<(), Error> {
    let p = ProjectId::from_string(project);
    for r in [
        "instances",
        "cores",
        "ram",
        "server_groups",
        "server_group_members",
    ] {
        store.quota_set(&p, r, -1).await?;
    }
    Ok(())
}
