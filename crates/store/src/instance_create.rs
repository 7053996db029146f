//! Creating servers: quota reservation, the instance rows, their `create`
//! actions, build workflows and group memberships, in one transaction.

use crate::db::{Store, db_error};
use crate::idempotency::IdempotencyRecord;
use crate::instances::json;
use crate::row::RowExt;
use cloud_model::instance::Instance;
use cloud_model::{ActionId, Error, ProjectId, Timestamp};
use std::collections::BTreeMap;

/// Resources reserved per server create, in the order they are locked
/// (always the same order, so concurrent reservations cannot deadlock).
const COMPUTE_RESOURCES: [&str; 3] = ["cores", "instances", "ram"];

impl Store {
    /// Creates `batch` (servers of one request, same project) if the
    /// project's `limits` (`instances`, `cores`, `ram`; -1 unlimited)
    /// allow it. The quota check and the inserts are one transaction, so
    /// concurrent creates can never exceed a limit. Each server gets a
    /// `create` action and a build workflow at step `schedule`.
    pub async fn instances_create(
        &self,
        batch: &[Instance],
        request_id: &str,
        limits: &BTreeMap<String, i64>,
    ) -> Result<(), Error> {
        self.instances_create_recorded(batch, request_id, limits, None)
            .await
    }

    /// [`Store::instances_create`], also completing the request's
    /// idempotency key with `answer` in the same transaction: a retry
    /// after the API died finds the servers' answer, never a lapsed claim
    /// beside servers already made (a Conflict, and nothing made, when the
    /// claim is no longer this request's).
    pub async fn instances_create_recorded(
        &self,
        batch: &[Instance],
        request_id: &str,
        limits: &BTreeMap<String, i64>,
        answer: Option<&IdempotencyRecord>,
    ) -> Result<(), Error> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let project = first.project_id.clone();
        let n = batch.len() as i64;
        let deltas = [
            ("cores", n * first.flavor.vcpus),
            ("instances", n),
            ("ram", n * first.flavor.ram_mb),
        ];
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        for (resource, delta) in deltas {
            let limit = limits.get(resource).copied().unwrap_or(-1);
            // One statement per resource: take `delta` if the limit
            // allows it, creating the usage row on first use.
            let r = sqlx::query(
                "INSERT INTO quota_usages (project_id, resource, in_use) \
                 SELECT $1, $2, $3 WHERE $4 < 0 OR $3 <= $4 \
                 ON CONFLICT (project_id, resource) DO UPDATE \
                 SET in_use = quota_usages.in_use + excluded.in_use \
                 WHERE $4 < 0 OR quota_usages.in_use + excluded.in_use <= $4",
            )
            .bind(project.as_str())
            .bind(resource)
            .bind(delta)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if r.rows_affected() == 0 {
                let used = match sqlx::query(
                    "SELECT in_use FROM quota_usages WHERE project_id = $1 AND resource = $2",
                )
                .bind(project.as_str())
                .bind(resource)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?
                {
                    Some(row) => row.int("in_use")?,
                    None => 0,
                };
                return Err(Error::quota(format!(
                    "Quota exceeded for {resource}: Requested {delta}, but already used {used} \
                     of {limit} {resource}"
                )));
            }
        }
        for inst in batch {
            sqlx::query(&format!(
                "INSERT INTO instances ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                 $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, \
                 $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40)",
                crate::instances::COLS
            ))
            .bind(inst.id.to_string())
            .bind(inst.project_id.as_str())
            .bind(inst.user_id.as_str())
            .bind(&inst.name)
            .bind(&inst.hostname)
            .bind(inst.vm_state.as_str())
            .bind(inst.task_state.map(|t| t.as_str()))
            .bind(inst.power_state.code())
            .bind(inst.host.clone())
            .bind(inst.node.clone())
            .bind(&inst.availability_zone)
            .bind(&inst.flavor.id)
            .bind(json(&inst.flavor))
            .bind(inst.flavor.vcpus)
            .bind(inst.flavor.ram_mb)
            .bind(inst.flavor.disk_gb)
            .bind(inst.image_id.to_string())
            .bind(inst.key_name.clone())
            .bind(inst.key_data.clone())
            .bind(inst.user_data.clone())
            .bind(json(&inst.metadata))
            .bind(json(&inst.tags))
            .bind(&inst.access_ipv4)
            .bind(&inst.access_ipv6)
            .bind(&inst.config_drive)
            .bind(inst.launch_index)
            .bind(&inst.reservation_id)
            .bind(inst.server_group_id.map(|g| g.to_string()))
            .bind(json(&inst.requested_networks))
            .bind(json(&inst.security_groups))
            .bind(inst.numa_placement.as_ref().map(json))
            .bind(inst.fault.as_ref().map(json))
            .bind(inst.progress)
            .bind(inst.state_gen)
            .bind(inst.task_deadline.map(|t| t.micros()))
            .bind(inst.created_at.micros())
            .bind(inst.updated_at.micros())
            .bind(inst.launched_at.map(|t| t.micros()))
            .bind(inst.terminated_at.map(|t| t.micros()))
            .bind(inst.deleted_at.map(|t| t.micros()))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            sqlx::query(
                "INSERT INTO instance_actions (id, instance_id, request_id, action, project_id, \
                 user_id, start_time) VALUES ($1, $2, $3, 'create', $4, $5, $6)",
            )
            .bind(ActionId::new().to_string())
            .bind(inst.id.to_string())
            .bind(request_id)
            .bind(inst.project_id.as_str())
            .bind(inst.user_id.as_str())
            .bind(now.micros())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            crate::workflows::insert_workflow(&mut tx, inst.id, "build", "schedule", now).await?;
            if let Some(group) = inst.server_group_id {
                sqlx::query(
                    "INSERT INTO server_group_members (group_id, instance_id) VALUES ($1, $2)",
                )
                .bind(group.to_string())
                .bind(inst.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
        }
        if let Some(answer) = answer {
            crate::idempotency::complete_in(&mut tx, answer).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Gives back quota (a deleted server's, or a failed create's).
    pub async fn quota_release(
        &self,
        project: &ProjectId,
        vcpus: i64,
        ram_mb: i64,
        instances: i64,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        for (resource, delta) in COMPUTE_RESOURCES.iter().zip([vcpus, instances, ram_mb]) {
            sqlx::query(
                "UPDATE quota_usages SET in_use = CASE WHEN in_use >= $3 THEN in_use - $3 \
                 ELSE 0 END WHERE project_id = $1 AND resource = $2",
            )
            .bind(project.as_str())
            .bind(*resource)
            .bind(delta)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Marks a server deleted, removes it from its group and gives back its
    /// quota, once (a second call changes nothing).
    pub async fn instance_mark_deleted(&self, inst: &Instance) -> Result<bool, Error> {
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE instances SET deleted_at = $2, terminated_at = $2, vm_state = 'deleted', \
             task_state = NULL, task_deadline = NULL, power_state = 0, updated_at = $2 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(inst.id.to_string())
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM server_group_members WHERE instance_id = $1")
            .bind(inst.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for (resource, delta) in
            COMPUTE_RESOURCES
                .iter()
                .zip([inst.flavor.vcpus, 1, inst.flavor.ram_mb])
        {
            sqlx::query(
                "UPDATE quota_usages SET in_use = CASE WHEN in_use >= $3 THEN in_use - $3 \
                 ELSE 0 END WHERE project_id = $1 AND resource = $2",
            )
            .bind(inst.project_id.as_str())
            .bind(*resource)
            .bind(delta)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}
