//! Fresh databases for tests.

use cloud_store::{Backend, Store};
use sqlx::Connection;

/// Where the PostgreSQL test server is.
pub fn pg_base_url() -> String {
    std::env::var("CLOUD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A migrated store that disappears with the test.
pub struct TestDb {
    /// The store.
    pub store: Store,
    /// The database URL (to open more connections, e.g. a second service).
    pub url: String,
    pg_database: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A store on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A store on a new SQLite file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::connect(&url).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        TestDb {
            store,
            url,
            pg_database: None,
            _dir: Some(dir),
        }
    }

    /// A store on a new PostgreSQL database. Panics (fails the test) when
    /// the server cannot be reached: a test that needs PostgreSQL must not
    /// pass without it.
    pub async fn postgres() -> TestDb {
        sqlx::any::install_default_drivers();
        let base = pg_base_url();
        let name = format!("cloud_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&base)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for this test but {base} is unreachable: {e}. \
                 Start it with deploy/dev-services.sh."
                )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = database_url(&base, &name);
        let store = Store::connect(&url)
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate PostgreSQL");
        TestDb {
            store,
            url,
            pg_database: Some(name),
            _dir: None,
        }
    }

    /// The backend of this database.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Runs one SQL statement on its own connection, to set up states no
    /// API produces on demand (what a crashed process leaves behind, a
    /// clock long past). Panics on error.
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect to the test database");
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.close().await;
    }
}

/// `base` with its database name replaced by `name`.
fn database_url(base: &str, name: &str) -> String {
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &base[scheme_end..];
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    format!("{}{}/{name}", &base[..scheme_end], &rest[..host_end])
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_database.take() else {
            return;
        };
        let store = self.store.clone();
        // Dropping needs async I/O; do it on a private runtime so it works
        // whatever runtime (or none) the test is on.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                // Closing waits for connections in use to come back. One
                // may be held by a task of the test's runtime, which is
                // blocked in this very drop: never wait for it (that
                // deadlocked a test now and then); FORCE below ends it.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), store.close()).await;
                if let Ok(mut c) = sqlx::AnyConnection::connect(&pg_base_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}
