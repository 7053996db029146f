//! Idempotency keys: the first answer to a create, kept so that a retried
//! request with the same key gets the same answer instead of a second
//! resource.
//!
//! A key is the caller's own: `(scope, user, key)`, so another user of the
//! project sending the same key never reaches this user's answer. It is
//! claimed before the request runs (a row with no status: in flight) by an
//! owner (a random id per request) that holds a short lease and renews it
//! while the request runs; it is completed with the answer afterwards, or
//! released if the request failed in a way worth retrying. A claim whose
//! lease lapsed belongs to a request whose API died: a retry takes it over
//! at once instead of waiting. A create whose effect a retry must find
//! (a server) completes the claim in the transaction that makes the
//! resource ([`complete_in`]), so a claim is never both lapsed and acted
//! on. The primary key makes the claim atomic on both backends, and every
//! change after the claim is conditioned on the owner, so of two requests
//! with one key exactly one acts.

use crate::db::{Store, db_error, is_unique_violation};
use crate::row::RowExt;
use cloud_model::{Error, Timestamp};
use sqlx::Transaction;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// Binds `$1` to `$7` of a claim's row (key, request hash, owner, lease,
/// creation time): the first claim inserts them and a takeover writes
/// them over the lapsed claim, in the same order.
fn bind_claim<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    hold: &'q IdempotencyHold,
    hash: &'q str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Query<'q, Any, AnyArguments<'q>> {
    let k = &hold.key;
    query
        .bind(&k.scope)
        .bind(&k.user)
        .bind(&k.key)
        .bind(hash)
        .bind(&hold.owner)
        .bind(lease_until.micros())
        .bind(now.micros())
}

/// Whose key it is: the caller's project (or `user:<id>` for an unscoped
/// token), the caller, and the key the client chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The project the token is scoped to, or `user:<id>`.
    pub scope: String,
    /// The caller's user id: a key never answers another user.
    pub user: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
}

/// A claim as one request holds it: the key and the request's owner id,
/// which every later change of the row must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyHold {
    /// The key.
    pub key: IdempotencyKey,
    /// Random per request: tells this request's claim from a later
    /// takeover's.
    pub owner: String,
}

/// An answer to record for a held key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The claim it completes.
    pub hold: IdempotencyHold,
    /// The answer's status code.
    pub status: u16,
    /// The stored answer (opaque to the store; it must hold no secret).
    pub response: String,
}

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
    /// A request with this key and the same hash is running, and its
    /// owner renews its lease.
    InFlight,
    /// The key was used for a different request (hash differs).
    Mismatch,
}

impl Store {
    /// Claims `hold.key` for a request hashing to `hash`, leased until
    /// `lease_until`. A row created before `expired_before` is forgotten
    /// (the key may be reused); an unfinished row whose lease lapsed
    /// before `now` belongs to a request that died, and is taken over.
    pub async fn idempotency_claim(
        &self,
        hold: &IdempotencyHold,
        hash: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expired_before: Timestamp,
    ) -> Result<IdempotencyClaim, Error> {
        let k = &hold.key;
        // Insert, or find a row we may take over; a few rounds when others
        // change the row between our statements.
        for _ in 0..3 {
            let inserted = bind_claim(
                sqlx::query(
                    "INSERT INTO idempotency_keys (project_id, user_id, idem_key, request_hash, \
                     owner, lease_until, status, response, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7)",
                ),
                hold,
                hash,
                now,
                lease_until,
            )
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(IdempotencyClaim::Claimed),
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(db_error(e)),
            }
            let Some(row) = sqlx::query(
                "SELECT request_hash, owner, lease_until, status, response, created_at \
                 FROM idempotency_keys WHERE project_id = $1 AND user_id = $2 AND idem_key = $3",
            )
            .bind(&k.scope)
            .bind(&k.user)
            .bind(&k.key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            else {
                continue; // released meanwhile: try to insert again
            };
            let status = row.opt_int("status")?;
            let expired = row.ts("created_at")? < expired_before;
            if !expired && row.text("request_hash")? != hash {
                return Ok(IdempotencyClaim::Mismatch);
            }
            if let (Some(s), false) = (status, expired) {
                return Ok(IdempotencyClaim::Completed {
                    status: u16::try_from(s).unwrap_or(500),
                    response: row.opt_text("response")?.unwrap_or_default(),
                });
            }
            let lease = row.int("lease_until")?;
            if !expired && lease >= now.micros() {
                return Ok(IdempotencyClaim::InFlight);
            }
            // Expired, or its owner died: take it over, only if nobody else
            // did (and the owner did not renew or finish) meanwhile.
            let taken = bind_claim(
                sqlx::query(
                    "UPDATE idempotency_keys SET request_hash = $4, owner = $5, lease_until = $6, \
                     status = NULL, response = NULL, created_at = $7 \
                     WHERE project_id = $1 AND user_id = $2 AND idem_key = $3 \
                     AND owner = $8 AND lease_until = $9 AND created_at = $10 \
                     AND (status IS NULL OR created_at < $11)",
                ),
                hold,
                hash,
                now,
                lease_until,
            )
            .bind(row.text("owner")?)
            .bind(lease)
            .bind(row.int("created_at")?)
            .bind(expired_before.micros())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            if taken.rows_affected() == 1 {
                return Ok(IdempotencyClaim::Claimed);
            }
        }
        Ok(IdempotencyClaim::InFlight)
    }

    /// Extends the lease of a claim its request still holds; false when
    /// the claim is no longer this request's (taken over or finished).
    pub async fn idempotency_renew(
        &self,
        hold: &IdempotencyHold,
        lease_until: Timestamp,
    ) -> Result<bool, Error> {
        let k = &hold.key;
        let r = sqlx::query(
            "UPDATE idempotency_keys SET lease_until = $5 \
             WHERE project_id = $1 AND user_id = $2 AND idem_key = $3 AND owner = $4 \
             AND status IS NULL",
        )
        .bind(&k.scope)
        .bind(&k.user)
        .bind(&k.key)
        .bind(&hold.owner)
        .bind(lease_until.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the answer of the request holding the key; false when the
    /// claim was taken over meanwhile (the answer is then not recorded).
    pub async fn idempotency_complete(&self, record: &IdempotencyRecord) -> Result<bool, Error> {
        let r = complete_query(record)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets an in-flight claim this request holds (the request failed
    /// before doing anything a retry would duplicate).
    pub async fn idempotency_release(&self, hold: &IdempotencyHold) -> Result<(), Error> {
        let k = &hold.key;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE project_id = $1 AND user_id = $2 \
             AND idem_key = $3 AND owner = $4 AND status IS NULL",
        )
        .bind(&k.scope)
        .bind(&k.user)
        .bind(&k.key)
        .bind(&hold.owner)
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

fn complete_query(
    record: &IdempotencyRecord,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    let k = &record.hold.key;
    sqlx::query(
        "UPDATE idempotency_keys SET status = $5, response = $6 \
         WHERE project_id = $1 AND user_id = $2 AND idem_key = $3 AND owner = $4",
    )
    .bind(&k.scope)
    .bind(&k.user)
    .bind(&k.key)
    .bind(&record.hold.owner)
    .bind(i64::from(record.status))
    .bind(&record.response)
}

/// Completes a held key inside the transaction that makes what the
/// answer names, so the two commit together: a retry after a crash finds
/// the answer, never a lapsed claim beside a made resource. A claim taken
/// over meanwhile (this request stalled past its lease, and a retry now
/// runs) is a Conflict, which rolls the creation back: the retry's
/// creation is the one that counts.
pub(crate) async fn complete_in(
    tx: &mut Transaction<'static, sqlx::Any>,
    record: &IdempotencyRecord,
) -> Result<(), Error> {
    let r = complete_query(record)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::conflict(format!(
            "Idempotency-Key '{}' was taken over by a retry of this request while it ran: \
             the retry's answer is the one that counts.",
            record.hold.key.key
        )))
    }
}
