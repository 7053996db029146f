//! Conductor liveness (ADR 0009): each running conductor keeps a row in
//! `conductors` alive, so that a workflow whose lease holder is dead is
//! taken over at once instead of after its lease.
//!
//! A conductor is dead when its row says so: `alive_until` has passed (it
//! stopped beating, or stopped cleanly), or, on PostgreSQL, the database
//! session that writes its heartbeat is gone. That session is a connection
//! the conductor holds for its whole life, so a killed conductor loses it
//! within moments and the server forgets the session: a restart after 3 s
//! finds its predecessor dead without waiting for any timeout. An owner
//! without a row (a conductor that never announced itself) is judged by
//! its lease alone, as before.

use crate::db::{Backend, Store, db_error};
use cloud_model::{Error, Timestamp};
use sqlx::AnyConnection;
use sqlx::Connection;

/// Rows of conductors dead for longer than this are purged.
const PURGE_AFTER_SECS: i64 = 86_400;

/// The SQL of "the conductors that are dead at `$now`" (a subquery over
/// `conductors`), for the lease checks of workflows. `now` is the
/// placeholder holding the current time.
pub(crate) fn dead_conductors_sql(backend: Backend, now: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "SELECT c.id FROM conductors c WHERE c.alive_until < {now} \
             OR (c.session IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.session))"
        ),
        Backend::Sqlite => format!("SELECT c.id FROM conductors c WHERE c.alive_until < {now}"),
    }
}

/// One conductor's announcement that it is alive. It owns the connection
/// its heartbeats go through (outside the pool, so a busy pool never
/// delays a heartbeat and the session lives exactly as long as the
/// conductor); a failed heartbeat drops the connection and the next one
/// opens a new session.
pub struct ConductorPresence {
    store: Store,
    id: String,
    host: String,
    liveness_secs: i64,
    conn: Option<AnyConnection>,
}

impl Store {
    /// The presence of conductor `id` on `host`; it counts as alive for
    /// `liveness_secs` after each [`ConductorPresence::beat`].
    pub fn conductor_presence(
        &self,
        id: &str,
        host: &str,
        liveness_secs: i64,
    ) -> ConductorPresence {
        ConductorPresence {
            store: self.clone(),
            id: id.to_owned(),
            host: host.to_owned(),
            liveness_secs: liveness_secs.max(1),
            conn: None,
        }
    }

    /// Whether conductor `id` is known to be dead (see the module doc);
    /// `false` for a conductor without a row.
    pub async fn conductor_is_dead(&self, id: &str) -> Result<bool, Error> {
        let sql = format!(
            "SELECT 1 FROM conductors WHERE id = $1 AND id IN ({})",
            dead_conductors_sql(self.backend(), "$2")
        );
        Ok(sqlx::query(&sql)
            .bind(id)
            .bind(Timestamp::now().micros())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .is_some())
    }
}

impl ConductorPresence {
    /// Records that the conductor is alive for the next `liveness_secs`
    /// (and, on PostgreSQL, which session proves it). Also purges the rows
    /// of conductors dead for a day.
    pub async fn beat(&mut self) -> Result<(), Error> {
        if self.conn.is_none() {
            let conn = self.store.pool.acquire().await.map_err(db_error)?.detach();
            self.conn = Some(conn);
        }
        let session = match self.store.backend() {
            Backend::Postgres => "pg_backend_pid()",
            Backend::Sqlite => "NULL",
        };
        let now = Timestamp::now();
        let conn = self.conn.as_mut().expect("connection opened above");
        let written = sqlx::query(&format!(
            "INSERT INTO conductors (id, host, session, started_at, alive_until) \
             VALUES ($1, $2, {session}, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             session = excluded.session, alive_until = excluded.alive_until"
        ))
        .bind(&self.id)
        .bind(&self.host)
        .bind(now.micros())
        .bind(now.plus_seconds(self.liveness_secs).micros())
        .execute(&mut *conn)
        .await;
        if let Err(e) = written {
            // The session may be dead (a database restart): open a new one
            // next time.
            if let Some(c) = self.conn.take() {
                let _ = c.close().await;
            }
            return Err(db_error(e));
        }
        let purged = sqlx::query("DELETE FROM conductors WHERE alive_until < $1")
            .bind(now.plus_seconds(-PURGE_AFTER_SECS).micros())
            .execute(&mut *conn)
            .await;
        purged.map(|_| ()).map_err(db_error)
    }

    /// Records a clean stop: the conductor's workflows may be taken over
    /// at once. Closes the session.
    pub async fn stopped(mut self) -> Result<(), Error> {
        let r = sqlx::query("UPDATE conductors SET alive_until = 0 WHERE id = $1")
            .bind(&self.id)
            .execute(&self.store.pool)
            .await
            .map(|_| ())
            .map_err(db_error);
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
        r
    }
}
