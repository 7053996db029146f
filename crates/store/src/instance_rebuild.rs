//! Starting a rebuild: the server's new image, name, metadata and access
//! addresses, its `rebuilding` task and its `rebuild` action, written in
//! one transaction, so a refused or failed request changes nothing.

use crate::Scope;
use crate::db::{Store, db_error};
use crate::instances::json;
use crate::row::RowExt;
use cloud_model::instance::{Instance, TaskState, VmState};
use cloud_model::{ActionId, Error, ImageId, InstanceId, Timestamp, UserId};
use std::collections::BTreeMap;

/// The vm_states a rebuild may start from (Nova's `check_instance_state`
/// of `rebuild`: ACTIVE, STOPPED, ERROR), with no task running.
pub const REBUILD_FROM: [VmState; 3] = [VmState::Active, VmState::Stopped, VmState::Error];

/// What a rebuild changes on the server record; `None` keeps the current
/// value.
#[derive(Clone, Debug)]
pub struct RebuildChange {
    /// The image the fresh root disk comes from (the same one or another).
    pub image_id: ImageId,
    /// A new display name.
    pub name: Option<String>,
    /// New metadata, replacing all of it (as Nova's rebuild does).
    pub metadata: Option<BTreeMap<String, String>>,
    /// A new `accessIPv4` (empty clears it).
    pub access_ipv4: Option<String>,
    /// A new `accessIPv6` (empty clears it).
    pub access_ipv6: Option<String>,
}

impl Store {
    /// Records `change` on server `id` (seen through `scope`) and starts
    /// its `rebuilding` task (until `deadline`) and its `rebuild` action
    /// (`request_id`, by `user`), if the server is on a host in one of
    /// [`REBUILD_FROM`] with no task running. All in one transaction: a
    /// conflict (the message names the blocking state, as
    /// [`Store::instance_begin_task`]'s does) writes nothing. Returns the
    /// server as it is now.
    pub async fn instance_begin_rebuild(
        &self,
        id: InstanceId,
        scope: &Scope,
        change: &RebuildChange,
        deadline: Timestamp,
        request_id: &str,
        user: &UserId,
    ) -> Result<Instance, Error> {
        let from = REBUILD_FROM
            .iter()
            .map(|v| format!("'{}'", v.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(&format!(
            "UPDATE instances SET image_id = $2, name = COALESCE($3, name), \
             metadata = COALESCE($4, metadata), access_ipv4 = COALESCE($5, access_ipv4), \
             access_ipv6 = COALESCE($6, access_ipv6), task_state = $7, task_deadline = $8, \
             progress = 0, updated_at = $9 \
             WHERE id = $1 AND deleted_at IS NULL AND ($10 IS NULL OR project_id = $10) \
             AND host IS NOT NULL AND vm_state IN ({from}) AND task_state IS NULL"
        ))
        .bind(id.to_string())
        .bind(change.image_id.to_string())
        .bind(change.name.clone())
        .bind(change.metadata.as_ref().map(json))
        .bind(change.access_ipv4.clone())
        .bind(change.access_ipv6.clone())
        .bind(TaskState::Rebuilding.as_str())
        .bind(deadline.micros())
        .bind(now.micros())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() != 1 {
            tx.rollback().await.map_err(db_error)?;
            let inst = self.instance_get(id, scope).await?;
            return Err(Error::conflict(rebuild_refusal(&inst).unwrap_or_else(
                || format!("Cannot 'rebuild' instance {id}: it changed meanwhile, try again."),
            )));
        }
        let project = sqlx::query("SELECT project_id FROM instances WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?
            .text("project_id")?;
        sqlx::query(
            "INSERT INTO instance_actions (id, instance_id, request_id, action, project_id, \
             user_id, start_time) VALUES ($1, $2, $3, 'rebuild', $4, $5, $6)",
        )
        .bind(ActionId::new().to_string())
        .bind(id.to_string())
        .bind(request_id)
        .bind(project)
        .bind(user.as_str())
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.instance_get(id, scope).await
    }
}

/// Why `inst` cannot be rebuilt now (`None`: it can): its vm_state
/// (checked first, as Nova's `check_instance_state` does), else the task
/// running, else that it is on no host. The message is the 409's.
pub fn rebuild_refusal(inst: &Instance) -> Option<String> {
    let blocking = match (inst.task_state, &inst.host) {
        _ if !REBUILD_FROM.contains(&inst.vm_state) => {
            format!("vm_state {}", inst.vm_state.as_str())
        }
        (Some(t), _) => format!("task_state {}", t.as_str()),
        (None, None) => format!("vm_state {} on no host", inst.vm_state.as_str()),
        (None, Some(_)) => return None,
    };
    Some(format!(
        "Cannot 'rebuild' instance {} while it is in {blocking}.",
        inst.id
    ))
}
