//! Compute hosts: what each reported about itself (compute nodes), its
//! resource provider and inventories, and the service records that say
//! whether it is enabled and alive.

use crate::db::{Store, db_error, flag};
use crate::row::RowExt;
use cloud_model::{Error, ProviderId, ResourceKind, Timestamp};
use sqlx::any::AnyRow;

/// The three resource classes we schedule on.
pub const RESOURCE_CLASSES: [&str; 3] = ["VCPU", "MEMORY_MB", "DISK_GB"];

/// What a compute agent reports about its host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostReport {
    /// Host name (unique).
    pub host: String,
    /// `QEMU`, `KVM`, `fake`.
    pub hypervisor_type: String,
    /// Nova-encoded version.
    pub hypervisor_version: i64,
    /// CPU architecture.
    pub cpu_arch: String,
    /// Logical CPUs.
    pub vcpus: i64,
    /// Memory in MiB.
    pub memory_mb: i64,
    /// Disk in GiB.
    pub disk_gb: i64,
    /// NUMA cells as JSON (`[{"id", "cpus", "memory_mb", "hugepages"}]`).
    pub numa_topology: serde_json::Value,
    /// Availability zone of the host.
    pub availability_zone: String,
    /// Address of the host, if known.
    pub host_ip: Option<String>,
    /// Whether the host runs routers.
    pub network_node: bool,
    /// `(class, reserved, allocation_ratio)` per resource class.
    pub inventory: Vec<(String, i64, f64)>,
}

/// One resource class of a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryState {
    /// Total.
    pub total: i64,
    /// Reserved for the host.
    pub reserved: i64,
    /// Overcommit ratio.
    pub allocation_ratio: f64,
    /// Allocated.
    pub used: i64,
}

impl InventoryState {
    /// What can be allocated in all.
    pub fn capacity(&self) -> i64 {
        ((self.total - self.reserved) as f64 * self.allocation_ratio).floor() as i64
    }

    /// What is left.
    pub fn free(&self) -> i64 {
        self.capacity() - self.used
    }
}

/// A compute host with its inventories and service state.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeNode {
    /// Host name.
    pub host: String,
    /// Its resource provider.
    pub provider_id: ProviderId,
    /// Provider generation.
    pub generation: i64,
    /// Hypervisor type.
    pub hypervisor_type: String,
    /// Hypervisor version.
    pub hypervisor_version: i64,
    /// CPU architecture.
    pub cpu_arch: String,
    /// NUMA cells (JSON as reported).
    pub numa_topology: serde_json::Value,
    /// Availability zone.
    pub availability_zone: String,
    /// Host address.
    pub host_ip: Option<String>,
    /// Whether the host runs routers (the network role).
    pub network_node: bool,
    /// VCPU inventory.
    pub vcpu: InventoryState,
    /// MEMORY_MB inventory.
    pub memory_mb: InventoryState,
    /// DISK_GB inventory.
    pub disk_gb: InventoryState,
    /// Service disabled by an admin.
    pub disabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Forced down by an admin.
    pub forced_down: bool,
    /// Last heartbeat.
    pub last_seen_up: Option<Timestamp>,
}

/// A service record (`os-services`).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceRecord {
    /// Numeric id (microversion 2.1 shows integers).
    pub id: i64,
    /// UUID.
    pub uuid: String,
    /// Host.
    pub host: String,
    /// `cloud-compute`, `cloud-conductor`, `cloud-scheduler`.
    pub binary: String,
    /// Disabled by an admin.
    pub disabled: bool,
    /// Why.
    pub disabled_reason: Option<String>,
    /// Forced down.
    pub forced_down: bool,
    /// Last heartbeat.
    pub last_seen_up: Option<Timestamp>,
    /// Last change.
    pub updated_at: Timestamp,
    /// Availability zone (from the compute node, `internal` for others).
    pub zone: String,
}

impl ServiceRecord {
    /// Whether the service reported within `down_after_secs`.
    pub fn is_up(&self, now: Timestamp, down_after_secs: i64) -> bool {
        !self.forced_down
            && self
                .last_seen_up
                .is_some_and(|t| t.micros() >= now.plus_seconds(-down_after_secs).micros())
    }
}

const NODE_SELECT: &str = "SELECT n.host, n.provider_id, rp.generation, n.hypervisor_type, \
    n.hypervisor_version, n.cpu_arch, n.numa_topology, n.availability_zone, n.host_ip, \
    n.network_node, v.total AS v_total, v.reserved AS v_reserved, v.allocation_ratio AS v_ratio, v.used AS v_used, \
    m.total AS m_total, m.reserved AS m_reserved, m.allocation_ratio AS m_ratio, m.used AS m_used, \
    d.total AS d_total, d.reserved AS d_reserved, d.allocation_ratio AS d_ratio, d.used AS d_used, \
    s.disabled, s.disabled_reason, s.forced_down, s.last_seen_up \
    FROM compute_nodes n \
    JOIN resource_providers rp ON rp.id = n.provider_id \
    JOIN inventories v ON v.provider_id = n.provider_id AND v.resource_class = 'VCPU' \
    JOIN inventories m ON m.provider_id = n.provider_id AND m.resource_class = 'MEMORY_MB' \
    JOIN inventories d ON d.provider_id = n.provider_id AND d.resource_class = 'DISK_GB' \
    JOIN services s ON s.host = n.host AND s.binary_name = 'cloud-compute'";

fn inventory(r: &AnyRow, p: &str) -> Result<InventoryState, Error> {
    Ok(InventoryState {
        total: r.int(&format!("{p}_total"))?,
        reserved: r.int(&format!("{p}_reserved"))?,
        allocation_ratio: r.float(&format!("{p}_ratio"))?,
        used: r.int(&format!("{p}_used"))?,
    })
}

fn node_from(r: &AnyRow) -> Result<ComputeNode, Error> {
    Ok(ComputeNode {
        host: r.text("host")?,
        provider_id: r.parsed("provider_id", ProviderId::parse)?,
        generation: r.int("generation")?,
        hypervisor_type: r.text("hypervisor_type")?,
        hypervisor_version: r.int("hypervisor_version")?,
        cpu_arch: r.text("cpu_arch")?,
        numa_topology: r.json("numa_topology")?,
        availability_zone: r.text("availability_zone")?,
        host_ip: r.opt_text("host_ip")?,
        network_node: r.flag("network_node")?,
        vcpu: inventory(r, "v")?,
        memory_mb: inventory(r, "m")?,
        disk_gb: inventory(r, "d")?,
        disabled: r.flag("disabled")?,
        disabled_reason: r.opt_text("disabled_reason")?,
        forced_down: r.flag("forced_down")?,
        last_seen_up: r.opt_ts("last_seen_up")?,
    })
}

/// A request's minimum resources, to narrow the candidate hosts in SQL.
#[derive(Clone, Copy, Debug, Default)]
pub struct Prefilter {
    /// vCPUs needed.
    pub vcpus: i64,
    /// Memory needed, MiB.
    pub memory_mb: i64,
    /// Disk needed, GiB.
    pub disk_gb: i64,
    /// Only hosts that heartbeated after this time.
    pub seen_after: Timestamp,
}

impl Store {
    /// Records a host's report: its compute node, resource provider,
    /// inventories (keeping what is allocated) and compute service, marked
    /// alive now. Idempotent. Returns the provider id.
    pub async fn host_register(&self, rep: &HostReport) -> Result<ProviderId, Error> {
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let existing = sqlx::query("SELECT id FROM resource_providers WHERE name = $1")
            .bind(&rep.host)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let provider = match existing {
            Some(r) => r.parsed("id", ProviderId::parse)?,
            None => {
                let id = ProviderId::new();
                sqlx::query(
                    "INSERT INTO resource_providers (id, name, generation, created_at, updated_at) \
                     VALUES ($1, $2, 0, $3, $3)",
                )
                .bind(id.to_string())
                .bind(&rep.host)
                .bind(now.micros())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                id
            }
        };
        let totals = [
            ("VCPU", rep.vcpus),
            ("MEMORY_MB", rep.memory_mb),
            ("DISK_GB", rep.disk_gb),
        ];
        for (class, total) in totals {
            let (reserved, ratio) = rep
                .inventory
                .iter()
                .find(|(c, _, _)| c == class)
                .map(|(_, r, a)| (*r, *a))
                .unwrap_or((0, 1.0));
            sqlx::query(
                "INSERT INTO inventories (provider_id, resource_class, total, reserved, \
                 allocation_ratio, used) VALUES ($1, $2, $3, $4, $5, 0) \
                 ON CONFLICT (provider_id, resource_class) DO UPDATE SET total = excluded.total, \
                 reserved = excluded.reserved, allocation_ratio = excluded.allocation_ratio",
            )
            .bind(provider.to_string())
            .bind(class)
            .bind(total)
            .bind(reserved)
            .bind(ratio)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        sqlx::query(
            "UPDATE resource_providers SET generation = generation + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(provider.to_string())
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO compute_nodes (host, provider_id, hypervisor_type, hypervisor_version, \
             cpu_arch, vcpus, memory_mb, disk_gb, numa_topology, availability_zone, host_ip, \
             created_at, updated_at, network_node) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13) \
             ON CONFLICT (host) DO UPDATE SET hypervisor_type = excluded.hypervisor_type, \
             hypervisor_version = excluded.hypervisor_version, cpu_arch = excluded.cpu_arch, \
             vcpus = excluded.vcpus, memory_mb = excluded.memory_mb, disk_gb = excluded.disk_gb, \
             numa_topology = excluded.numa_topology, availability_zone = excluded.availability_zone, \
             host_ip = excluded.host_ip, updated_at = excluded.updated_at, \
             network_node = excluded.network_node",
        )
        .bind(&rep.host)
        .bind(provider.to_string())
        .bind(&rep.hypervisor_type)
        .bind(rep.hypervisor_version)
        .bind(&rep.cpu_arch)
        .bind(rep.vcpus)
        .bind(rep.memory_mb)
        .bind(rep.disk_gb)
        .bind(serde_json::to_string(&rep.numa_topology).unwrap_or_else(|_| "[]".into()))
        .bind(&rep.availability_zone)
        .bind(rep.host_ip.clone())
        .bind(now.micros())
        .bind(crate::db::flag(rep.network_node))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        upsert_service(&mut tx, &rep.host, "cloud-compute", now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(provider)
    }

    /// Records a heartbeat of a service (creating its record if needed).
    pub async fn service_heartbeat(&self, host: &str, binary: &str) -> Result<(), Error> {
        let now = Timestamp::now();
        let r = sqlx::query(
            "UPDATE services SET last_seen_up = $3, report_count = report_count + 1, \
             updated_at = $3 WHERE host = $1 AND binary_name = $2",
        )
        .bind(host)
        .bind(binary)
        .bind(now.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            let mut tx = self.begin().await?;
            upsert_service(&mut tx, host, binary, now).await?;
            tx.commit().await.map_err(db_error)?;
        }
        Ok(())
    }

    /// Every compute host.
    pub async fn compute_nodes(&self) -> Result<Vec<ComputeNode>, Error> {
        sqlx::query(&format!("{NODE_SELECT} ORDER BY n.host"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(node_from)
            .collect()
    }

    /// One compute host.
    pub async fn compute_node(&self, host: &str) -> Result<ComputeNode, Error> {
        sqlx::query(&format!("{NODE_SELECT} WHERE n.host = $1"))
            .bind(host)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| node_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Hypervisor, host))
    }

    /// Candidate hosts for a request: enabled, alive, and with at least
    /// the requested free resources. The scheduler's cost then follows
    /// the number of plausible hosts, not of all hosts.
    pub async fn compute_nodes_prefiltered(
        &self,
        p: &Prefilter,
    ) -> Result<Vec<ComputeNode>, Error> {
        sqlx::query(&format!(
            "{NODE_SELECT} WHERE s.disabled = 0 AND s.forced_down = 0 AND s.last_seen_up >= $1 \
             AND (v.total - v.reserved) * v.allocation_ratio - v.used >= $2 \
             AND (m.total - m.reserved) * m.allocation_ratio - m.used >= $3 \
             AND (d.total - d.reserved) * d.allocation_ratio - d.used >= $4 \
             ORDER BY n.host"
        ))
        .bind(p.seen_after.micros())
        .bind(p.vcpus)
        .bind(p.memory_mb)
        .bind(p.disk_gb)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(node_from)
        .collect()
    }

    /// Every service record.
    pub async fn service_list(&self) -> Result<Vec<ServiceRecord>, Error> {
        self.service_list_filtered(None, None).await
    }

    /// Service records, optionally of one host and/or binary.
    pub async fn service_list_filtered(
        &self,
        host: Option<&str>,
        binary: Option<&str>,
    ) -> Result<Vec<ServiceRecord>, Error> {
        sqlx::query(
            "SELECT s.id, s.uuid, s.host, s.binary_name, s.disabled, s.disabled_reason, \
             s.forced_down, s.last_seen_up, s.updated_at, n.availability_zone \
             FROM services s LEFT JOIN compute_nodes n ON n.host = s.host \
             WHERE ($1 IS NULL OR s.host = $1) AND ($2 IS NULL OR s.binary_name = $2) \
             ORDER BY s.host, s.binary_name",
        )
        .bind(host.map(str::to_owned))
        .bind(binary.map(str::to_owned))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            let binary = r.text("binary_name")?;
            Ok(ServiceRecord {
                id: r.int("id")?,
                uuid: r.text("uuid")?,
                host: r.text("host")?,
                zone: match r.opt_text("availability_zone")? {
                    Some(z) if binary == "cloud-compute" => z,
                    _ => "internal".to_owned(),
                },
                binary,
                disabled: r.flag("disabled")?,
                disabled_reason: r.opt_text("disabled_reason")?,
                forced_down: r.flag("forced_down")?,
                last_seen_up: r.opt_ts("last_seen_up")?,
                updated_at: r.ts("updated_at")?,
            })
        })
        .collect()
    }

    /// Enables or disables a service (the scheduler skips disabled hosts).
    pub async fn service_set_disabled(
        &self,
        host: &str,
        binary: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let r = sqlx::query(
            "UPDATE services SET disabled = $3, disabled_reason = $4, updated_at = $5 \
             WHERE host = $1 AND binary_name = $2",
        )
        .bind(host)
        .bind(binary)
        .bind(flag(disabled))
        .bind(reason.map(str::to_owned))
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(
                ResourceKind::Service,
                format!("{binary} on {host}"),
            ));
        }
        Ok(())
    }

    /// Forces a service down (or lifts it), for fencing a failed host.
    pub async fn service_set_forced_down(
        &self,
        host: &str,
        binary: &str,
        forced_down: bool,
    ) -> Result<(), Error> {
        let r = sqlx::query(
            "UPDATE services SET forced_down = $3, updated_at = $4 \
             WHERE host = $1 AND binary_name = $2",
        )
        .bind(host)
        .bind(binary)
        .bind(flag(forced_down))
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(
                ResourceKind::Service,
                format!("{binary} on {host}"),
            ));
        }
        Ok(())
    }

    /// Deletes a service record by id.
    pub async fn service_delete(&self, id: i64) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM services WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Service, id));
        }
        Ok(())
    }

    /// Number of live servers per host.
    pub async fn running_vms_per_host(&self) -> Result<Vec<(String, i64)>, Error> {
        sqlx::query(
            "SELECT host, COUNT(*) AS n FROM instances WHERE deleted_at IS NULL \
             AND host IS NOT NULL GROUP BY host",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok((r.text("host")?, r.int("n")?)))
        .collect()
    }
}

async fn upsert_service(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    host: &str,
    binary: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let id: i64 = rand::Rng::gen_range(&mut rand::thread_rng(), 1..i64::from(i32::MAX));
    sqlx::query(
        "INSERT INTO services (id, uuid, host, binary_name, disabled, forced_down, last_seen_up, \
         report_count, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, 0, $5, 1, $5, $5) \
         ON CONFLICT (host, binary_name) DO UPDATE SET last_seen_up = excluded.last_seen_up, \
         updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(cloud_model::ProviderId::new().to_string())
    .bind(host)
    .bind(binary)
    .bind(now.micros())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}
