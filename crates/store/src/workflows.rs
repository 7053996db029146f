//! Persisted workflows: the progress of multi-step operations (a server
//! build, a delete) owned by one conductor at a time through a lease.
//!
//! A conductor that dies leaves its lease behind; another conductor (or
//! the same one restarted) then claims the workflow and resumes it from the
//! recorded step: at once when the owner is known to be dead (ADR 0009,
//! see `conductors`), after the lease otherwise. Every step is written
//! with a conditional update on the step it expects, so a stale owner can
//! never move a workflow backwards.

use crate::conductors::dead_conductors_sql;
use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::{Error, InstanceId, Timestamp};
use sqlx::any::AnyRow;

/// A workflow record.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// Workflow id.
    pub id: String,
    /// The server it works on.
    pub instance_id: InstanceId,
    /// `build` or `delete`.
    pub kind: String,
    /// The current step.
    pub step: String,
    /// Step data (hosts tried, faults, ports...), JSON.
    pub data: serde_json::Value,
    /// The conductor holding the lease.
    pub owner: Option<String>,
    /// When the lease ends.
    pub lease_until: Timestamp,
    /// How many times a conductor claimed it.
    pub attempts: i64,
    /// When it finished, if it did.
    pub finished_at: Option<Timestamp>,
}

const COLS: &str = "id, instance_id, kind, step, data, owner, lease_until, attempts, finished_at";

fn workflow_from(r: &AnyRow) -> Result<Workflow, Error> {
    Ok(Workflow {
        id: r.text("id")?,
        instance_id: r.parsed("instance_id", InstanceId::parse)?,
        kind: r.text("kind")?,
        step: r.text("step")?,
        data: r.json("data")?,
        owner: r.opt_text("owner")?,
        lease_until: r.ts("lease_until")?,
        attempts: r.int("attempts")?,
        finished_at: r.opt_ts("finished_at")?,
    })
}

/// The id of an instance's workflow of `kind` (one of each kind at most).
pub fn workflow_id(instance: InstanceId, kind: &str) -> String {
    format!("{kind}:{instance}")
}

pub(crate) async fn insert_workflow(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    instance: InstanceId,
    kind: &str,
    step: &str,
    now: Timestamp,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO workflows (id, instance_id, kind, step, data, owner, lease_until, attempts, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, '{}', NULL, 0, 0, $5, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(workflow_id(instance, kind))
    .bind(instance.to_string())
    .bind(kind)
    .bind(step)
    .bind(now.micros())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl Store {
    /// Creates a workflow (idempotent: an existing one is kept).
    pub async fn workflow_create(
        &self,
        instance: InstanceId,
        kind: &str,
        step: &str,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        insert_workflow(&mut tx, instance, kind, step, Timestamp::now()).await?;
        tx.commit().await.map_err(db_error)
    }

    /// A workflow by id.
    pub async fn workflow_get(&self, id: &str) -> Result<Option<Workflow>, Error> {
        sqlx::query(&format!("SELECT {COLS} FROM workflows WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| workflow_from(&r))
            .transpose()
    }

    /// Takes (or renews) the lease of an unfinished workflow for `owner`
    /// for `lease_secs`. Returns the workflow if we hold it now, `None` if
    /// another live owner does or it is finished. An owner is live while
    /// its lease runs, unless it is known to be dead.
    pub async fn workflow_claim(
        &self,
        id: &str,
        owner: &str,
        lease_secs: i64,
    ) -> Result<Option<Workflow>, Error> {
        self.workflow_claim_inner(id, owner, lease_secs, false)
            .await
    }

    /// Like [`Store::workflow_claim`], but also takes a workflow that
    /// another conductor holds while it is only `waiting` for a host's
    /// report: whoever receives the report continues the workflow.
    pub async fn workflow_claim_waiting(
        &self,
        id: &str,
        owner: &str,
        lease_secs: i64,
    ) -> Result<Option<Workflow>, Error> {
        self.workflow_claim_inner(id, owner, lease_secs, true).await
    }

    async fn workflow_claim_inner(
        &self,
        id: &str,
        owner: &str,
        lease_secs: i64,
        steal_waiting: bool,
    ) -> Result<Option<Workflow>, Error> {
        let now = Timestamp::now();
        let r = sqlx::query(&format!(
            "UPDATE workflows SET owner = $2, lease_until = $3, \
             attempts = attempts + CASE WHEN owner = $2 THEN 0 ELSE 1 END, updated_at = $4 \
             WHERE id = $1 AND finished_at IS NULL \
             AND (owner IS NULL OR owner = $2 OR lease_until < $4 OR ($5 = 1 AND step = 'waiting') \
             OR owner IN ({}))",
            dead_conductors_sql(self.backend(), "$4")
        ))
        .bind(id)
        .bind(owner)
        .bind(now.plus_seconds(lease_secs).micros())
        .bind(now.micros())
        .bind(i64::from(steal_waiting))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.workflow_get(id).await
    }

    /// Moves a workflow from step `from` to `to` with new data, if we still
    /// own it and it is still at `from`. Returns false otherwise.
    pub async fn workflow_advance(
        &self,
        id: &str,
        owner: &str,
        from: &str,
        to: &str,
        data: &serde_json::Value,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE workflows SET step = $4, data = $5, updated_at = $6 \
             WHERE id = $1 AND owner = $2 AND step = $3 AND finished_at IS NULL",
        )
        .bind(id)
        .bind(owner)
        .bind(from)
        .bind(to)
        .bind(serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()))
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks a workflow finished at step `step` (idempotent).
    pub async fn workflow_finish(&self, id: &str, step: &str) -> Result<(), Error> {
        let now = Timestamp::now().micros();
        sqlx::query(
            "UPDATE workflows SET step = $2, finished_at = $3, owner = NULL, updated_at = $3 \
             WHERE id = $1 AND finished_at IS NULL",
        )
        .bind(id)
        .bind(step)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Releases our lease (on shutdown) so another conductor may resume at once.
    pub async fn workflow_release(&self, id: &str, owner: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE workflows SET owner = NULL, lease_until = 0 WHERE id = $1 AND owner = $2",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Work a dead conductor left behind: unfinished workflows whose owner
    /// is known to be dead (at any step, `waiting` included: the host may
    /// never have been told), and workflows not waiting for a host whose
    /// lease has expired (or never was taken) and that did not move for
    /// `stale_secs`. Workflows waiting for a host while their owner lives
    /// are not listed: their deadline covers them.
    pub async fn workflows_orphaned(
        &self,
        stale_secs: i64,
        limit: i64,
    ) -> Result<Vec<Workflow>, Error> {
        let now = Timestamp::now();
        sqlx::query(&format!(
            "SELECT {COLS} FROM workflows WHERE finished_at IS NULL AND (\
             (step <> 'waiting' AND lease_until < $1 AND updated_at < $2) \
             OR owner IN ({})) ORDER BY updated_at LIMIT {}",
            dead_conductors_sql(self.backend(), "$1"),
            limit.max(1)
        ))
        .bind(now.micros())
        .bind(now.plus_seconds(-stale_secs).micros())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(workflow_from)
        .collect()
    }
}
