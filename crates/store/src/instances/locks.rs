//! Server locks (`lock` / `unlock` actions): one row per locked server.

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::instance::{InstanceLock, LockedBy};
use cloud_model::{Error, InstanceId, UserId};

impl Store {
    /// The lock held on a server, if any.
    pub async fn instance_lock_get(&self, id: InstanceId) -> Result<Option<InstanceLock>, Error> {
        let Some(r) = sqlx::query(
            "SELECT locked_by, user_id, reason, created_at FROM instance_locks \
             WHERE instance_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        else {
            return Ok(None);
        };
        Ok(Some(InstanceLock {
            locked_by: r.parsed("locked_by", LockedBy::parse)?,
            user_id: UserId::from_string(r.text("user_id")?),
            reason: r.opt_text("reason")?,
            created_at: r.ts("created_at")?,
        }))
    }

    /// Locks a server. As Nova does, locking a server its own project has
    /// locked already changes nothing, while an admin's lock replaces an
    /// owner's (it can then be lifted only by an admin).
    pub async fn instance_lock(&self, id: InstanceId, lock: &InstanceLock) -> Result<(), Error> {
        let on_conflict = match lock.locked_by {
            LockedBy::Owner => "DO NOTHING",
            LockedBy::Admin => {
                "DO UPDATE SET locked_by = excluded.locked_by, user_id = excluded.user_id, \
                 reason = excluded.reason, created_at = excluded.created_at"
            }
        };
        sqlx::query(&format!(
            "INSERT INTO instance_locks (instance_id, locked_by, user_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_id) {on_conflict}"
        ))
        .bind(id.to_string())
        .bind(lock.locked_by.as_str())
        .bind(lock.user_id.as_str().to_owned())
        .bind(lock.reason.clone())
        .bind(lock.created_at.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Lifts a server's lock; `Ok` when there was none.
    pub async fn instance_unlock(&self, id: InstanceId) -> Result<(), Error> {
        sqlx::query("DELETE FROM instance_locks WHERE instance_id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
