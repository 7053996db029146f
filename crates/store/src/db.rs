//! Connection, dialect and error mapping.

use crate::failover::{Failover, refuse_standby, split_hosts, watch};
use cloud_model::Error;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;

/// The database behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (production, multi-node).
    Postgres,
    /// SQLite (embedded default, single node).
    Sqlite,
}

/// Handle on the state store. Cheap to clone: it wraps a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The candidate hosts when the URL names a primary and its standbys;
    /// while a clone of the store lives, a task keeps the pool on the
    /// primary.
    _failover: Option<Arc<Failover>>,
}

/// How long a statement waits for a connection before the caller gets
/// Unavailable (503 at the API, a retry in workers): long enough to ride
/// out a database restart or a standby's promotion, which the pool waits
/// for by dialling again with backoff.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Connects to `url` (`postgres://...` or `sqlite://PATH`). For SQLite
    /// the file is created if missing and put in WAL mode, so readers never
    /// wait for the writer. A PostgreSQL URL may list a primary and its
    /// standbys as libpq does (`postgres://u@db1:5432,db2:5432/cloud?target_session_attrs=read-write`):
    /// the store then uses whichever host is not in recovery and follows a
    /// promotion (see the `failover` module).
    pub async fn connect(url: &str) -> Result<Store, Error> {
        install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::invalid(format!(
                "unsupported database URL '{}': expected postgres:// or sqlite://",
                redact(url)
            )));
        };
        let unreachable = |e: sqlx::Error| {
            Error::unavailable(format!(
                "cannot connect to the database {}: {e}",
                redact(url)
            ))
        };
        // A pooled connection that died with a server restart is found out
        // by the ping before it is handed over, not by the request using it.
        let options = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true);
        let (pool, failover) = match backend {
            Backend::Postgres => {
                let options = options.max_connections(16);
                match split_hosts(url)? {
                    None => (options.connect(url).await.map_err(unreachable)?, None),
                    Some(urls) => {
                        let failover = Arc::new(Failover::new(&urls)?);
                        let (_, probe) = failover.find_primary().await?;
                        let _ = probe.close().await;
                        let clock = failover.clock();
                        let pool = options
                            .after_connect(|conn, _meta| Box::pin(refuse_standby(conn)))
                            .before_acquire(move |_conn, meta| {
                                let fresh = clock.opened_since_switch(meta.age);
                                Box::pin(async move { Ok(fresh) })
                            })
                            .connect_with(failover.current_options())
                            .await
                            .map_err(unreachable)?;
                        tokio::spawn(watch(pool.clone(), Arc::downgrade(&failover)));
                        (pool, Some(failover))
                    }
                }
            }
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                let pool = options
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(unreachable)?;
                (pool, None)
            }
        };
        Ok(Store {
            pool,
            backend,
            _failover: failover,
        })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so two transactions never deadlock
    /// upgrading a read lock; on PostgreSQL row locks and conditional
    /// updates do the same job with more concurrency.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, sqlx::Any>, Error> {
        let stmt = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        self.pool.begin_with(stmt).await.map_err(db_error)
    }

    /// Closes every connection; used on shutdown so SQLite checkpoints.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers (for health checks).
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_error)
    }
}

/// Hides the password of a database URL for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Maps a database error that the caller did not anticipate. Callers that
/// expect a constraint violation check [`is_unique_violation`] first.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    if is_transient(&e) {
        Error::unavailable(format!("the database is unavailable: {e}"))
    } else {
        Error::internal(format!("database error: {e}"))
    }
}

/// Whether `e` says the database was out of reach or gave up on the
/// statement for reasons of its own (a restart, a failover, a lock), so
/// that doing it again later can work: callers answer 503 and workers
/// retry, instead of failing a build for good. PostgreSQL: connection
/// exceptions (class 08), operator intervention (57P01 admin shutdown,
/// 57P02 crash shutdown, 57P03 cannot connect now), too many connections
/// (53300), a write reaching a server that became a standby (25006, the
/// connection is replaced after a failover), serialization failures and
/// deadlocks (40001, 40P01); SQLite: a busy or locked database.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "53300" | "25006" | "40001" | "40P01"
                )
                || matches!(code.as_ref(), "5" | "6" | "261" | "517")
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Whether `e` is a unique or primary key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation)
                || d.code().as_deref() == Some("23505")
                || d.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// Whether `e` is a foreign key violation.
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.kind(), sqlx::error::ErrorKind::ForeignKeyViolation)
                || d.code().as_deref() == Some("23503")
                || d.message().contains("FOREIGN KEY constraint failed")
        }
        _ => false,
    }
}

/// Boolean as stored (INTEGER 0/1 on both backends).
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Locks, in `tx`, the one row that `lock_sql` (a no-op `UPDATE` binding
/// `$1` = `id` and `$2` = the scope's project, `NULL` for all) matches, or
/// answers `kind` `id` not found: the first step of a read-modify-write.
/// A no-op update takes the row lock on PostgreSQL; on SQLite the
/// transaction holds the write lock already (`BEGIN IMMEDIATE`), so no
/// other change of the row comes between the read and the write.
pub(crate) async fn lock_scoped_row(
    tx: &mut Transaction<'static, sqlx::Any>,
    lock_sql: &str,
    id: impl std::fmt::Display,
    scope: &crate::Scope,
    kind: cloud_model::ResourceKind,
) -> Result<(), Error> {
    let locked = sqlx::query(lock_sql)
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if locked.rows_affected() == 0 {
        return Err(Error::not_found(kind, id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://cloud:s3cret@db:5432/cloud"),
            "postgres://cloud:***@db:5432/cloud"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
