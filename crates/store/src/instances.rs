//! Instances (servers).
//!
//! State changes are conditional updates: a transition names the states it
//! may start from, so two requests racing on one server cannot both win,
//! and the loser learns which state blocked it. Reports from compute hosts
//! are generation-guarded: an old report never overwrites a newer one.

mod locks;

use crate::Scope;
use crate::db::{Store, db_error, lock_scoped_row};
use crate::row::RowExt;
use cloud_model::instance::{Fault, Instance, PowerState, TaskState, VmState};
use cloud_model::{
    Error, ImageId, InstanceId, ProjectId, ResourceKind, ServerGroupId, Timestamp, UserId,
};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

pub(crate) const COLS: &str = "id, project_id, user_id, name, hostname, vm_state, task_state, \
    power_state, host, node, availability_zone, flavor_id, flavor, vcpus, memory_mb, root_gb, \
    image_id, key_name, key_data, user_data, metadata, tags, access_ipv4, access_ipv6, \
    config_drive, launch_index, reservation_id, server_group_id, requested_networks, \
    security_groups, numa_placement, fault, progress, state_gen, task_deadline, created_at, \
    updated_at, launched_at, terminated_at, deleted_at";

pub(crate) fn instance_from(r: &AnyRow) -> Result<Instance, Error> {
    let task = r.opt_text("task_state")?;
    Ok(Instance {
        id: r.parsed("id", InstanceId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        user_id: UserId::from_string(r.text("user_id")?),
        name: r.text("name")?,
        hostname: r.text("hostname")?,
        vm_state: r.parsed("vm_state", VmState::parse)?,
        task_state: match task {
            Some(t) => Some(
                TaskState::parse(&t)
                    .ok_or_else(|| Error::internal(format!("bad task_state {t}")))?,
            ),
            None => None,
        },
        power_state: PowerState::from_code(r.int("power_state")?),
        host: r.opt_text("host")?,
        node: r.opt_text("node")?,
        availability_zone: r.text("availability_zone")?,
        flavor: r.json("flavor")?,
        image_id: r.parsed("image_id", ImageId::parse)?,
        key_name: r.opt_text("key_name")?,
        key_data: r.opt_text("key_data")?,
        user_data: r.opt_text("user_data")?,
        metadata: r.json("metadata")?,
        tags: r.json("tags")?,
        access_ipv4: r.text("access_ipv4")?,
        access_ipv6: r.text("access_ipv6")?,
        config_drive: r.text("config_drive")?,
        launch_index: r.int("launch_index")?,
        reservation_id: r.text("reservation_id")?,
        server_group_id: r
            .opt_text("server_group_id")?
            .and_then(|g| ServerGroupId::parse(&g)),
        requested_networks: r.json("requested_networks")?,
        security_groups: r.json("security_groups")?,
        numa_placement: match r.opt_text("numa_placement")? {
            Some(s) => {
                Some(serde_json::from_str(&s).map_err(|e| Error::internal(format!("numa: {e}")))?)
            }
            None => None,
        },
        fault: match r.opt_text("fault")? {
            Some(s) => {
                Some(serde_json::from_str(&s).map_err(|e| Error::internal(format!("fault: {e}")))?)
            }
            None => None,
        },
        progress: r.int("progress")?,
        state_gen: r.int("state_gen")?,
        task_deadline: r.opt_ts("task_deadline")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        launched_at: r.opt_ts("launched_at")?,
        terminated_at: r.opt_ts("terminated_at")?,
        deleted_at: r.opt_ts("deleted_at")?,
    })
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Which servers a listing returns.
#[derive(Clone, Debug)]
pub struct InstanceFilter {
    /// Whose servers.
    pub scope: Scope,
    /// Only these vm_states.
    pub vm_states: Option<Vec<VmState>>,
    /// Booted from this image.
    pub image_id: Option<String>,
    /// With this flavor id.
    pub flavor_id: Option<String>,
    /// On this host.
    pub host: Option<String>,
    /// Changed at or after this time (then deleted servers are included,
    /// as Nova does).
    pub changes_since: Option<Timestamp>,
    /// With this reservation id.
    pub reservation_id: Option<String>,
    /// Include deleted servers.
    pub include_deleted: bool,
}

impl InstanceFilter {
    /// Every live server of `scope`.
    pub fn scope(scope: Scope) -> Self {
        InstanceFilter {
            scope,
            vm_states: None,
            image_id: None,
            flavor_id: None,
            host: None,
            changes_since: None,
            reservation_id: None,
            include_deleted: false,
        }
    }
}

/// The changes a conductor applies to a server's state.
#[derive(Clone, Debug, Default)]
pub struct StateUpdate {
    /// New vm_state.
    pub vm_state: Option<VmState>,
    /// New task_state (`Some(None)` clears it).
    pub task_state: Option<Option<TaskState>>,
    /// New power state.
    pub power_state: Option<PowerState>,
    /// New host and node (`Some(None)` clears them).
    pub host: Option<Option<String>>,
    /// New fault (`Some(None)` clears it).
    pub fault: Option<Option<Fault>>,
    /// New progress.
    pub progress: Option<i64>,
    /// Set launched_at.
    pub launched_at: Option<Timestamp>,
    /// New NUMA placement.
    pub numa_placement: Option<Option<serde_json::Value>>,
    /// New task deadline (`Some(None)` clears it).
    pub task_deadline: Option<Option<Timestamp>>,
}

impl Store {
    /// A live server the scope may see.
    pub async fn instance_get(&self, id: InstanceId, scope: &Scope) -> Result<Instance, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM instances WHERE id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR project_id = $2)"
        ))
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| instance_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::Server, id))
    }

    /// A server, deleted or not (for the control plane).
    pub async fn instance_get_any(&self, id: InstanceId) -> Result<Instance, Error> {
        sqlx::query(&format!("SELECT {COLS} FROM instances WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| instance_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Server, id))
    }

    /// Servers matching `filter`, newest first, starting after `marker`,
    /// at most `limit` (when given). `name` filtering (a regex) is done
    /// by the caller.
    pub async fn instance_list(
        &self,
        filter: &InstanceFilter,
        marker: Option<&Instance>,
        limit: Option<i64>,
    ) -> Result<Vec<Instance>, Error> {
        let states = filter.vm_states.as_ref().map(|s| {
            s.iter()
                .map(|v| format!("'{}'", v.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        });
        let state_clause = match &states {
            Some(s) => format!("AND vm_state IN ({s})"),
            None => String::new(),
        };
        let deleted_clause = if filter.include_deleted || filter.changes_since.is_some() {
            ""
        } else {
            "AND deleted_at IS NULL"
        };
        let limit_clause = match limit {
            Some(l) => format!("LIMIT {}", l.max(0)),
            None => String::new(),
        };
        sqlx::query(&format!(
            "SELECT {COLS} FROM instances WHERE ($1 IS NULL OR project_id = $1) \
             AND ($2 IS NULL OR image_id = $2) AND ($3 IS NULL OR flavor_id = $3) \
             AND ($4 IS NULL OR host = $4) AND ($5 IS NULL OR updated_at >= $5) \
             AND ($6 IS NULL OR reservation_id = $6) \
             AND ($7 IS NULL OR created_at < $7 OR (created_at = $7 AND id < $8)) \
             {state_clause} {deleted_clause} \
             ORDER BY created_at DESC, id DESC {limit_clause}"
        ))
        .bind(filter.scope.project().map(|p| p.as_str().to_owned()))
        .bind(filter.image_id.clone())
        .bind(filter.flavor_id.clone())
        .bind(filter.host.clone())
        .bind(filter.changes_since.map(|t| t.micros()))
        .bind(filter.reservation_id.clone())
        .bind(marker.map(|m| m.created_at.micros()))
        .bind(marker.map(|m| m.id.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(instance_from)
        .collect()
    }

    /// Starts a task on a server if it is in one of `from_vm` with no task
    /// running (or, with `allow_tasks`, with one of those tasks). The
    /// conflict message names the state that blocks it.
    #[allow(clippy::too_many_arguments)]
    pub async fn instance_begin_task(
        &self,
        id: InstanceId,
        scope: &Scope,
        action: &str,
        from_vm: &[VmState],
        allow_tasks: &[TaskState],
        task: TaskState,
        deadline: Timestamp,
    ) -> Result<Instance, Error> {
        let vm_list = from_vm
            .iter()
            .map(|v| format!("'{}'", v.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let task_clause = if allow_tasks.is_empty() {
            "task_state IS NULL".to_owned()
        } else {
            format!(
                "(task_state IS NULL OR task_state IN ({}))",
                allow_tasks
                    .iter()
                    .map(|t| format!("'{}'", t.as_str()))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let r = sqlx::query(&format!(
            "UPDATE instances SET task_state = $2, task_deadline = $3, updated_at = $4 \
             WHERE id = $1 AND deleted_at IS NULL AND ($5 IS NULL OR project_id = $5) \
             AND vm_state IN ({vm_list}) AND {task_clause}"
        ))
        .bind(id.to_string())
        .bind(task.as_str())
        .bind(deadline.micros())
        .bind(Timestamp::now().micros())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        let inst = self.instance_get(id, scope).await?;
        if r.rows_affected() == 1 {
            return Ok(inst);
        }
        let blocking = match inst.task_state {
            Some(t) if !allow_tasks.contains(&t) => format!("task_state {}", t.as_str()),
            _ => format!("vm_state {}", inst.vm_state.as_str()),
        };
        Err(Error::conflict(format!(
            "Cannot '{action}' instance {id} while it is in {blocking}."
        )))
    }

    /// Applies a state change from the control plane. Only the fields
    /// `u` sets are written (one statement, no read first): this runs
    /// several times per boot, and rewriting every column cost a read and
    /// wider writes for nothing.
    pub async fn instance_update_state(
        &self,
        id: InstanceId,
        u: &StateUpdate,
    ) -> Result<(), Error> {
        let mut sets: Vec<String> = Vec::new();
        let mut n = 1;
        let mut set = |columns: &[&str]| {
            n += 1;
            for c in columns {
                sets.push(format!("{c} = ${n}"));
            }
        };
        if u.vm_state.is_some() {
            set(&["vm_state"]);
        }
        if u.task_state.is_some() {
            set(&["task_state"]);
        }
        if u.power_state.is_some() {
            set(&["power_state"]);
        }
        if u.host.is_some() {
            set(&["host", "node"]);
        }
        if u.fault.is_some() {
            set(&["fault"]);
        }
        if u.progress.is_some() {
            set(&["progress"]);
        }
        if u.launched_at.is_some() {
            set(&["launched_at"]);
        }
        if u.numa_placement.is_some() {
            set(&["numa_placement"]);
        }
        if u.task_deadline.is_some() {
            set(&["task_deadline"]);
        }
        set(&["updated_at"]);
        let sql = format!("UPDATE instances SET {} WHERE id = $1", sets.join(", "));
        // Bound in the order the placeholders were numbered above.
        let mut q = sqlx::query(&sql).bind(id.to_string());
        if let Some(vm) = u.vm_state {
            q = q.bind(vm.as_str());
        }
        if let Some(task) = u.task_state {
            q = q.bind(task.map(|t| t.as_str()));
        }
        if let Some(power) = u.power_state {
            q = q.bind(power.code());
        }
        if let Some(host) = &u.host {
            q = q.bind(host.clone());
        }
        if let Some(fault) = &u.fault {
            q = q.bind(fault.as_ref().map(json));
        }
        if let Some(progress) = u.progress {
            q = q.bind(progress);
        }
        if let Some(at) = u.launched_at {
            q = q.bind(at.micros());
        }
        if let Some(numa) = &u.numa_placement {
            q = q.bind(numa.as_ref().map(json));
        }
        if let Some(deadline) = u.task_deadline {
            q = q.bind(deadline.map(|t| t.micros()));
        }
        let r = q
            .bind(Timestamp::now().micros())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Server, id));
        }
        Ok(())
    }

    /// Applies a host's report of a server's power state, unless a report
    /// of the same or a newer generation was applied already. Returns
    /// whether it was applied.
    pub async fn instance_update_runtime(
        &self,
        id: InstanceId,
        generation: i64,
        power_state: PowerState,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE instances SET power_state = $2, state_gen = $3, updated_at = $4 \
             WHERE id = $1 AND state_gen < $3 AND deleted_at IS NULL",
        )
        .bind(id.to_string())
        .bind(power_state.code())
        .bind(generation)
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// Renames a server or sets its access addresses (API `PUT`).
    pub async fn instance_update_info(
        &self,
        id: InstanceId,
        scope: &Scope,
        name: Option<&str>,
        access_ipv4: Option<&str>,
        access_ipv6: Option<&str>,
    ) -> Result<Instance, Error> {
        let cur = self.instance_get(id, scope).await?;
        sqlx::query(
            "UPDATE instances SET name = $2, access_ipv4 = $3, access_ipv6 = $4, updated_at = $5 \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(name.unwrap_or(&cur.name))
        .bind(access_ipv4.unwrap_or(&cur.access_ipv4))
        .bind(access_ipv6.unwrap_or(&cur.access_ipv6))
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.instance_get(id, scope).await
    }

    /// Replaces a server's metadata (one statement: it does not depend on
    /// what was there).
    pub async fn instance_set_metadata(
        &self,
        id: InstanceId,
        scope: &Scope,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.instance_set_json(id, scope, "metadata", json(metadata))
            .await
    }

    /// Replaces a server's tags (one statement, like
    /// [`Store::instance_set_metadata`]).
    pub async fn instance_set_tags(
        &self,
        id: InstanceId,
        scope: &Scope,
        tags: &[String],
    ) -> Result<(), Error> {
        self.instance_set_json(id, scope, "tags", json(&tags)).await
    }

    /// Changes a server's metadata from what it is now: `change` edits the
    /// current map (or refuses, writing nothing) while the server's row is
    /// locked, and the result is written in the same transaction. Two
    /// concurrent changes of different keys therefore both land (reading
    /// the map in one request and writing it back in another lost one of
    /// them: issue 16, finding 5). Returns what `change` returned.
    pub async fn instance_modify_metadata<R, E>(
        &self,
        id: InstanceId,
        scope: &Scope,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<R, E> + Send,
    ) -> Result<R, E>
    where
        R: Send,
        E: From<Error> + Send,
    {
        self.instance_modify_json(id, scope, "metadata", change)
            .await
    }

    /// Changes a server's tags from what they are now, atomically, as
    /// [`Store::instance_modify_metadata`] does for metadata.
    pub async fn instance_modify_tags<R, E>(
        &self,
        id: InstanceId,
        scope: &Scope,
        change: impl FnOnce(&mut Vec<String>) -> Result<R, E> + Send,
    ) -> Result<R, E>
    where
        R: Send,
        E: From<Error> + Send,
    {
        self.instance_modify_json(id, scope, "tags", change).await
    }

    /// Read-modify-write of one JSON column of a live server in one
    /// transaction. The row is locked first (a no-op update: a row lock on
    /// PostgreSQL; on SQLite the transaction holds the write lock from its
    /// `BEGIN IMMEDIATE`), so no other change of the column can come
    /// between the read and the write. Nothing is written when `change`
    /// fails or leaves the value as it was.
    async fn instance_modify_json<T, R, E>(
        &self,
        id: InstanceId,
        scope: &Scope,
        column: &'static str,
        change: impl FnOnce(&mut T) -> Result<R, E> + Send,
    ) -> Result<R, E>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Clone + Send,
        R: Send,
        E: From<Error> + Send,
    {
        let mut tx = self.begin().await?;
        lock_scoped_row(
            &mut tx,
            &format!(
                "UPDATE instances SET {column} = {column} WHERE id = $1 \
                 AND deleted_at IS NULL AND ($2 IS NULL OR project_id = $2)"
            ),
            id,
            scope,
            ResourceKind::Server,
        )
        .await?;
        let row = sqlx::query(&format!("SELECT {column} FROM instances WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let before: T = row.json(column)?;
        let mut value = before.clone();
        let out = match change(&mut value) {
            Ok(out) => out,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        if value == before {
            tx.rollback().await.map_err(db_error)?;
            return Ok(out);
        }
        sqlx::query(&format!(
            "UPDATE instances SET {column} = $2, updated_at = $3 WHERE id = $1"
        ))
        .bind(id.to_string())
        .bind(json(&value))
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(out)
    }

    async fn instance_set_json(
        &self,
        id: InstanceId,
        scope: &Scope,
        column: &str,
        value: String,
    ) -> Result<(), Error> {
        let r = sqlx::query(&format!(
            "UPDATE instances SET {column} = $2, updated_at = $3 WHERE id = $1 \
             AND deleted_at IS NULL AND ($4 IS NULL OR project_id = $4)"
        ))
        .bind(id.to_string())
        .bind(value)
        .bind(Timestamp::now().micros())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Server, id));
        }
        Ok(())
    }

    /// Servers whose task has run past its deadline (for the reconciler).
    pub async fn instances_past_deadline(&self, now: Timestamp) -> Result<Vec<Instance>, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM instances WHERE task_deadline IS NOT NULL AND task_deadline < $1 \
             AND deleted_at IS NULL ORDER BY task_deadline LIMIT 500"
        ))
        .bind(now.micros())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(instance_from)
        .collect()
    }

    /// Live servers placed on `host`.
    pub async fn instances_on_host(&self, host: &str) -> Result<Vec<Instance>, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM instances WHERE host = $1 AND deleted_at IS NULL"
        ))
        .bind(host)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(instance_from)
        .collect()
    }
}
