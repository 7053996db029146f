//! Test fixtures shared by the workspace's integration tests.
//!
//! * [`TestDb`]: a fresh, migrated store on SQLite (a temporary file) or
//!   PostgreSQL (a new database on the server at `CLOUD_TEST_PG_URL`,
//!   default `postgres://postgres@127.0.0.1:5432/postgres`, dropped
//!   afterwards). PostgreSQL being unreachable is a test failure, never a
//!   silent pass.
//! * [`TestApi`]: the API server on a free port over a fresh store, with the
//!   bootstrap admin, and [`Client`] to talk to it like a user would.

mod api;
mod binaries;
mod client;
mod db;
pub mod guest;
pub mod netbed;
mod network;
mod plane;
mod records;

pub use api::{ADMIN_PASSWORD, Account, TestApi};
pub use binaries::{build_binaries, free_port, terminate};
pub use client::{Client, Reply};
pub use db::{TestDb, pg_base_url};
pub use network::{create_external_network, create_network, create_router, first_subnet};
pub use plane::{
    ControlPlane, FakeHost, PlaneOptions, amqp_test_bus, boot, upload_image, wait_for_status,
};
pub use records::{
    fake_host_report, lift_compute_quotas, record_active_image, record_flavor, record_network_node,
};

/// Runs a store/API test body once per backend: expands to two `#[tokio::test]`
/// functions, `<name>_sqlite` and `<name>_postgres`, each calling
/// `body(TestDb)`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::TestDb::sqlite().await;
                ($body)(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = $crate::TestDb::postgres().await;
                ($body)(db).await;
            }
        }
    };
}
