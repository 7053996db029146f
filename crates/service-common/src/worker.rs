//! The consume loop every bus-driven service runs: take deliveries from a
//! queue, handle up to `limit` at once, and on shutdown stop taking new
//! ones and wait for those in flight.

use cloud_bus::{Consumer, Delivery};
use std::future::Future;
use std::sync::Arc;

/// Runs `handle` on each delivery of `consumer`, at most `limit` at a
/// time, until `shutdown` resolves or the consumer ends; then waits for
/// the handlers still running.
pub async fn drain_queue<F, Fut>(
    mut consumer: Consumer,
    limit: usize,
    shutdown: impl Future<Output = ()>,
    handle: F,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = limit.max(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            d = consumer.next() => {
                let Some(d) = d else { break };
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let work = handle(d);
                tokio::spawn(async move {
                    work.await;
                    drop(permit);
                });
            }
        }
    }
    let _ = permits.acquire_many(limit as u32).await;
}
