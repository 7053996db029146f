//! Placement: atomic claims of a host's resources for an instance.
//!
//! A claim is one transaction that, for each resource class, raises the
//! inventory's `used` only if it stays within capacity (a conditional
//! update: two schedulers racing for the last slot cannot both win), and
//! records the allocation rows, pinned CPUs (whose primary key makes a CPU
//! impossible to pin twice) and huge pages. The provider's generation is
//! bumped with every change, as placement does, so observers can tell that
//! a host's allocations moved.

use crate::db::{Store, db_error, is_unique_violation};
use crate::row::RowExt;
use cloud_model::{Error, InstanceId, ProviderId, Timestamp};

/// A provider's pinned CPUs and used huge pages `(cell, page_kb, pages)`.
pub type NumaUsage = (Vec<u32>, Vec<(u32, u64, u64)>);

/// What to claim on one host for one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The host's provider.
    pub provider_id: ProviderId,
    /// Host name (for messages).
    pub host: String,
    /// The instance.
    pub consumer: InstanceId,
    /// vCPUs.
    pub vcpus: i64,
    /// Memory, MiB.
    pub memory_mb: i64,
    /// Disk, GiB.
    pub disk_gb: i64,
    /// Host CPUs to pin.
    pub pinned_cpus: Vec<u32>,
    /// Huge pages: `(cell, page_kb, pages)`.
    pub hugepages: Vec<(u32, u64, u64)>,
}

/// Why a claim failed; the scheduler retries with a fresh view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// A resource class has no room left.
    Capacity {
        /// Which class.
        class: String,
    },
    /// A CPU to pin is taken.
    CpuTaken {
        /// Which CPU.
        cpu: u32,
    },
}

impl Store {
    /// Claims `c` atomically. Idempotent: if the consumer already holds
    /// allocations on this provider, nothing changes and `Ok` is returned.
    /// What the consumer holds on *other* providers is released in the
    /// same transaction (Placement replaces a consumer's allocations): a
    /// build resumed after its conductor died re-runs scheduling, and must
    /// not keep the claim of the attempt it lost track of.
    /// `Ok(Err(_))` means the host has no room (or a pinned CPU is taken).
    pub async fn placement_claim(&self, c: &Claim) -> Result<Result<(), ClaimError>, Error> {
        let mut tx = self.begin().await?;
        release_in(&mut tx, c.consumer, Some(c.provider_id)).await?;
        let held = sqlx::query(
            "SELECT COUNT(*) AS n FROM allocations WHERE provider_id = $1 AND consumer_id = $2",
        )
        .bind(c.provider_id.to_string())
        .bind(c.consumer.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?
        .int("n")?;
        if held > 0 {
            tx.commit().await.map_err(db_error)?;
            return Ok(Ok(()));
        }
        for (class, amount) in [
            ("VCPU", c.vcpus),
            ("MEMORY_MB", c.memory_mb),
            ("DISK_GB", c.disk_gb),
        ] {
            if amount == 0 {
                continue;
            }
            let r = sqlx::query(
                "UPDATE inventories SET used = used + $3 WHERE provider_id = $1 \
                 AND resource_class = $2 AND used + $3 <= (total - reserved) * allocation_ratio",
            )
            .bind(c.provider_id.to_string())
            .bind(class)
            .bind(amount)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if r.rows_affected() == 0 {
                return Ok(Err(ClaimError::Capacity {
                    class: class.to_owned(),
                }));
            }
            sqlx::query(
                "INSERT INTO allocations (provider_id, consumer_id, resource_class, used) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(c.provider_id.to_string())
            .bind(c.consumer.to_string())
            .bind(class)
            .bind(amount)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        for cpu in &c.pinned_cpus {
            let r = sqlx::query(
                "INSERT INTO cpu_pins (provider_id, cpu, consumer_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(c.provider_id.to_string())
            .bind(i64::from(*cpu))
            .bind(c.consumer.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("cpu taken")
                } else {
                    db_error(e)
                }
            })?;
            if r.rows_affected() == 0 {
                return Ok(Err(ClaimError::CpuTaken { cpu: *cpu }));
            }
        }
        for (cell, page_kb, pages) in &c.hugepages {
            sqlx::query(
                "INSERT INTO hugepage_allocations (provider_id, consumer_id, cell, page_kb, pages) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(c.provider_id.to_string())
            .bind(c.consumer.to_string())
            .bind(i64::from(*cell))
            .bind(*page_kb as i64)
            .bind(*pages as i64)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        sqlx::query(
            "UPDATE resource_providers SET generation = generation + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(c.provider_id.to_string())
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Ok(()))
    }

    /// Releases everything `consumer` holds on every host (idempotent).
    /// Returns how many allocation rows were removed.
    pub async fn placement_release(&self, consumer: InstanceId) -> Result<u64, Error> {
        let mut tx = self.begin().await?;
        let n = release_in(&mut tx, consumer, None).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(n)
    }

    /// `(resource class, amount)` a consumer holds, per provider.
    pub async fn allocations_of(
        &self,
        consumer: InstanceId,
    ) -> Result<Vec<(ProviderId, String, i64)>, Error> {
        sqlx::query(
            "SELECT provider_id, resource_class, used FROM allocations WHERE consumer_id = $1 \
             ORDER BY provider_id, resource_class",
        )
        .bind(consumer.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok((
                r.parsed("provider_id", ProviderId::parse)?,
                r.text("resource_class")?,
                r.int("used")?,
            ))
        })
        .collect()
    }

    /// Host CPUs pinned on a provider: `(cpu, consumer)`.
    pub async fn pinned_cpus(&self, provider: ProviderId) -> Result<Vec<(u32, InstanceId)>, Error> {
        sqlx::query("SELECT cpu, consumer_id FROM cpu_pins WHERE provider_id = $1 ORDER BY cpu")
            .bind(provider.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| {
                Ok((
                    u32::try_from(r.int("cpu")?).unwrap_or(u32::MAX),
                    r.parsed("consumer_id", InstanceId::parse)?,
                ))
            })
            .collect()
    }

    /// Pinned CPUs and used huge pages of several providers (the
    /// scheduler's NUMA view of the candidates): `provider -> (cpus,
    /// [(cell, page_kb, pages)])`.
    pub async fn numa_usage(
        &self,
        providers: &[ProviderId],
    ) -> Result<std::collections::HashMap<ProviderId, NumaUsage>, Error> {
        let mut out: std::collections::HashMap<ProviderId, NumaUsage> =
            std::collections::HashMap::new();
        if providers.is_empty() {
            return Ok(out);
        }
        let list = providers
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(",");
        for r in sqlx::query(&format!(
            "SELECT provider_id, cpu FROM cpu_pins WHERE provider_id IN ({list})"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        {
            let p = r.parsed("provider_id", ProviderId::parse)?;
            out.entry(p)
                .or_default()
                .0
                .push(u32::try_from(r.int("cpu")?).unwrap_or(u32::MAX));
        }
        for r in sqlx::query(&format!(
            "SELECT provider_id, cell, page_kb, pages FROM hugepage_allocations \
             WHERE provider_id IN ({list})"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        {
            let p = r.parsed("provider_id", ProviderId::parse)?;
            out.entry(p).or_default().1.push((
                u32::try_from(r.int("cell")?).unwrap_or(0),
                r.int("page_kb")? as u64,
                r.int("pages")? as u64,
            ));
        }
        Ok(out)
    }

    /// Records a failed build on a host (for the build-failure weigher).
    pub async fn host_failure_record(&self, host: &str, instance: InstanceId) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO host_failures (host, instance_id, failed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(host)
        .bind(instance.to_string())
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Failed builds per host since `since`.
    pub async fn host_failures_since(&self, since: Timestamp) -> Result<Vec<(String, i64)>, Error> {
        sqlx::query(
            "SELECT host, COUNT(*) AS n FROM host_failures WHERE failed_at >= $1 GROUP BY host",
        )
        .bind(since.micros())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok((r.text("host")?, r.int("n")?)))
        .collect()
    }
}

/// Releases, inside `tx`, what `consumer` holds on every provider but
/// `keep`; returns how many allocation rows went.
async fn release_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    consumer: InstanceId,
    keep: Option<ProviderId>,
) -> Result<u64, Error> {
    let keep = keep.map(|p| p.to_string());
    let rows = sqlx::query(
        "SELECT provider_id, resource_class, used FROM allocations WHERE consumer_id = $1 \
         AND ($2 IS NULL OR provider_id <> $2)",
    )
    .bind(consumer.to_string())
    .bind(keep.clone())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    let mut providers = Vec::new();
    for r in &rows {
        let provider = r.text("provider_id")?;
        sqlx::query(
            "UPDATE inventories SET used = CASE WHEN used >= $3 THEN used - $3 ELSE 0 END \
             WHERE provider_id = $1 AND resource_class = $2",
        )
        .bind(&provider)
        .bind(r.text("resource_class")?)
        .bind(r.int("used")?)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        if !providers.contains(&provider) {
            providers.push(provider);
        }
    }
    for table in ["allocations", "cpu_pins", "hugepage_allocations"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE consumer_id = $1 AND ($2 IS NULL OR provider_id <> $2)"
        ))
        .bind(consumer.to_string())
        .bind(keep.clone())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    for p in &providers {
        sqlx::query(
            "UPDATE resource_providers SET generation = generation + 1, updated_at = $2 \
             WHERE id = $1",
        )
        .bind(p)
        .bind(Timestamp::now().micros())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(rows.len() as u64)
}
