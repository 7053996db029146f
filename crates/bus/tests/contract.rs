//! The bus contract: every case (in `common/cases.rs`) runs against the
//! in-process bus (`inproc::<case>`), against RabbitMQ with classic queues
//! (`amqp::<case>`) and with quorum queues (`amqp_quorum::<case>`), so the
//! all-in-one binary and a multi-node cloud behave alike. `cluster.rs`
//! runs the same cases on a three-node RabbitMQ cluster.

#[macro_use]
mod common;

use common::{Backend, Fixture};

/// Generates `inproc::<case>`, `amqp::<case>` and `amqp_quorum::<case>`
/// for each case.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod inproc {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let f = super::Fixture::new(super::Backend::InProc);
                    crate::common::cases::$case(&f).await;
                    f.teardown().await;
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let f = super::Fixture::new(super::Backend::Amqp);
                    crate::common::cases::$case(&f).await;
                    f.teardown().await;
                }
            )*
        }
        mod amqp_quorum {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let mut f = super::Fixture::new(super::Backend::Amqp);
                    f.config.queue_type = cloud_bus::QueueType::Quorum;
                    crate::common::cases::$case(&f).await;
                    f.teardown().await;
                }
            )*
        }
    };
}

with_contract_cases!(contract);
