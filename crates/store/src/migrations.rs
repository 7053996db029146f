//! The schema, embedded from `migrations/` at build time.
//!
//! The same files run on both backends. Migrations are append-only: a
//! merged file is never edited (sqlx refuses to start when a checksum
//! changes), a change is a new file.

use crate::db::{Store, db_error};
use cloud_model::Error;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// `(version, description, sql)` of each migration, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/0001_foundation.sql"),
    ),
    (
        2,
        "servers",
        include_str!("../../../migrations/0002_servers.sql"),
    ),
    (
        3,
        "data_plane",
        include_str!("../../../migrations/0003_data_plane.sql"),
    ),
    (4, "l3", include_str!("../../../migrations/0004_l3.sql")),
    (
        5,
        "tokens",
        include_str!("../../../migrations/0005_tokens.sql"),
    ),
    (
        6,
        "idempotency",
        include_str!("../../../migrations/0006_idempotency.sql"),
    ),
    (
        8,
        "conductor_liveness",
        include_str!("../../../migrations/0008_conductor_liveness.sql"),
    ),
    (
        9,
        "server_lock",
        include_str!("../../../migrations/0009_server_lock.sql"),
    ),
    (
        10,
        "console_tokens",
        include_str!("../../../migrations/0010_console_tokens.sql"),
    ),
    (
        11,
        "instance_shelves",
        include_str!("../../../migrations/0011_instance_shelves.sql"),
    ),
];

fn migrator() -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|(version, desc, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*desc),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

impl Store {
    /// Brings the schema up to date. Safe to run from several processes at
    /// once: PostgreSQL takes an advisory lock, SQLite the write lock.
    pub async fn migrate(&self) -> Result<(), Error> {
        migrator().run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_error(e),
            other => Error::internal(format!("migration failed: {other}")),
        })
    }
}
