//! Idempotency keys: the first answer to a create, kept so that a retried
//! request with the same key gets the same answer instead of a second
//! resource.
//!
//! A key is claimed before the request runs (a row with no status: in
//! flight), completed with the answer afterwards, and released if the
//! request failed in a way worth retrying. The primary key
//! `(project_id, idem_key)` makes the claim atomic on both backends, so of
//! two concurrent requests with one key exactly one runs.

use crate::db::{Store, db_error, is_unique_violation};
use crate::row::RowExt;
use cloud_model::{Error, Timestamp};

/// What claiming a key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours: run the request, then complete or release it.
    Claimed,
    /// A request with this key and the same hash finished: replay this.
    Completed {
        /// Its status code.
        status: u16,
        /// Its stored answer (opaque to the store).
        response: String,
    },
    /// A request with this key and the same hash is still running.
    InFlight,
    /// The key was used for a different request (hash differs).
    Mismatch,
}

impl Store {
    /// Claims `key` in `scope` for a request hashing to `hash`. A row
    /// created before `expired_before` is forgotten (the key may be
    /// reused); an in-flight row older than `stale_before` belongs to a
    /// request that died, and is taken over.
    pub async fn idempotency_claim(
        &self,
        scope: &str,
        key: &str,
        hash: &str,
        now: Timestamp,
        stale_before: Timestamp,
        expired_before: Timestamp,
    ) -> Result<IdempotencyClaim, Error> {
        // Two rounds at most: insert, or find a row we may clear and insert.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (project_id, idem_key, request_hash, status, \
                 response, created_at) VALUES ($1, $2, $3, NULL, NULL, $4)",
            )
            .bind(scope)
            .bind(key)
            .bind(hash)
            .bind(now.micros())
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(IdempotencyClaim::Claimed),
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(db_error(e)),
            }
            let Some(row) = sqlx::query(
                "SELECT request_hash, status, response, created_at FROM idempotency_keys \
                 WHERE project_id = $1 AND idem_key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            else {
                continue; // released meanwhile: try to insert again
            };
            let created = row.ts("created_at")?;
            let status = row.opt_int("status")?;
            let expired = created < expired_before;
            let stale = status.is_none() && created < stale_before;
            if expired || stale {
                // Take the row over only if nobody else did meanwhile.
                let r = sqlx::query(
                    "UPDATE idempotency_keys SET request_hash = $3, status = NULL, \
                     response = NULL, created_at = $4 \
                     WHERE project_id = $1 AND idem_key = $2 AND created_at = $5",
                )
                .bind(scope)
                .bind(key)
                .bind(hash)
                .bind(now.micros())
                .bind(created.micros())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                if r.rows_affected() == 1 {
                    return Ok(IdempotencyClaim::Claimed);
                }
                continue;
            }
            if row.text("request_hash")? != hash {
                return Ok(IdempotencyClaim::Mismatch);
            }
            return Ok(match status {
                None => IdempotencyClaim::InFlight,
                Some(s) => IdempotencyClaim::Completed {
                    status: u16::try_from(s).unwrap_or(500),
                    response: row.opt_text("response")?.unwrap_or_default(),
                },
            });
        }
        Ok(IdempotencyClaim::InFlight)
    }

    /// Records the answer of the request holding `key`.
    pub async fn idempotency_complete(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response = $4 \
             WHERE project_id = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .bind(i64::from(status))
        .bind(response)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Forgets an in-flight claim (the request failed before doing
    /// anything a retry would duplicate).
    pub async fn idempotency_release(&self, scope: &str, key: &str) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM idempotency_keys \
             WHERE project_id = $1 AND idem_key = $2 AND status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Deletes keys created before `before`; returns how many.
    pub async fn idempotency_purge(&self, before: Timestamp) -> Result<u64, Error> {
        let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before.micros())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(r.rows_affected())
    }
}
