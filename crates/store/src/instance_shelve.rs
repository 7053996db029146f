//! Shelved servers: the snapshot image a shelve uploads and unshelve
//! boots (Nova's `shelved_image_id` system metadata), when the host
//! reported the shelve (`shelved_at`, for the periodic offload), and the
//! restart of the unshelve workflow, of which a server may run many in
//! its life.

use crate::db::{Store, db_error};
use crate::instances::{COLS, instance_from};
use crate::row::RowExt;
use crate::workflows::workflow_id;
use cloud_model::instance::Instance;
use cloud_model::{Error, ImageId, InstanceId, Timestamp};

/// A server's shelve: its snapshot image and when the shelve completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShelveRecord {
    /// The snapshot image unshelve boots.
    pub image_id: ImageId,
    /// When the host reported the shelve done (`None` while shelving).
    pub shelved_at: Option<Timestamp>,
}

impl Store {
    /// Records that server `id` is being shelved into image `image`,
    /// replacing a previous record (a server shelved again).
    pub async fn shelve_record(&self, id: InstanceId, image: ImageId) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO instance_shelves (instance_id, image_id, shelved_at) \
             VALUES ($1, $2, NULL) ON CONFLICT (instance_id) \
             DO UPDATE SET image_id = excluded.image_id, shelved_at = NULL",
        )
        .bind(id.to_string())
        .bind(image.to_string())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Notes that the host shelved server `id` at `at` (idempotent: the
    /// first report's time is kept).
    pub async fn shelve_mark_done(&self, id: InstanceId, at: Timestamp) -> Result<(), Error> {
        sqlx::query(
            "UPDATE instance_shelves SET shelved_at = $2 \
             WHERE instance_id = $1 AND shelved_at IS NULL",
        )
        .bind(id.to_string())
        .bind(at.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Server `id`'s shelve, if it has one.
    pub async fn shelve_get(&self, id: InstanceId) -> Result<Option<ShelveRecord>, Error> {
        sqlx::query("SELECT image_id, shelved_at FROM instance_shelves WHERE instance_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| {
                Ok(ShelveRecord {
                    image_id: r.parsed("image_id", ImageId::parse)?,
                    shelved_at: r.opt_ts("shelved_at")?,
                })
            })
            .transpose()
    }

    /// Forgets server `id`'s shelve (unshelved, failed or deleted).
    pub async fn shelve_forget(&self, id: InstanceId) -> Result<(), Error> {
        sqlx::query("DELETE FROM instance_shelves WHERE instance_id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Live servers that are SHELVED (not offloaded) with no task and were
    /// shelved before `before`: what the periodic offload removes from
    /// their hosts.
    pub async fn shelved_before(&self, before: Timestamp) -> Result<Vec<Instance>, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM instances WHERE vm_state = 'shelved' AND task_state IS NULL \
             AND deleted_at IS NULL AND id IN (SELECT instance_id FROM instance_shelves \
             WHERE shelved_at IS NOT NULL AND shelved_at <= $1) LIMIT 100"
        ))
        .bind(before.micros())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(instance_from)
        .collect()
    }

    /// Starts server `id`'s workflow of `kind` at `step`, anew if an
    /// earlier one finished (a server is unshelved once per shelve);
    /// an unfinished one is kept as it is (idempotent).
    pub async fn workflow_restart(
        &self,
        id: InstanceId,
        kind: &str,
        step: &str,
    ) -> Result<(), Error> {
        let now = Timestamp::now().micros();
        sqlx::query(
            "INSERT INTO workflows (id, instance_id, kind, step, data, owner, lease_until, \
             attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, '{}', NULL, 0, 0, $5, $5) \
             ON CONFLICT (id) DO UPDATE SET step = excluded.step, data = '{}', owner = NULL, \
             lease_until = 0, attempts = 0, finished_at = NULL, created_at = excluded.created_at, \
             updated_at = excluded.updated_at WHERE workflows.finished_at IS NOT NULL",
        )
        .bind(workflow_id(id, kind))
        .bind(id.to_string())
        .bind(kind)
        .bind(step)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
