//! The sender thread: batches finished spans and posts them to the
//! collector as OTLP/HTTP JSON.
//!
//! A thread of its own (with a one-thread runtime for the HTTP client), so
//! exporting never competes with the service's tasks and works whatever
//! runtime, if any, the service runs. Spans are handed over through a
//! bounded queue: when the collector is slow or down, spans beyond the
//! queue are dropped and counted rather than held in memory or slowing
//! the service (`cloud_trace_spans_dropped_total`). A batch the collector
//! refuses is dropped too; the first failure of a streak is logged.

use super::{AttrValue, FinishedSpan, encode};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Spans waiting for the sender at most (about 1 KiB each).
const QUEUE: usize = 8192;
/// Spans per request to the collector at most.
const MAX_BATCH: usize = 512;
/// How long a span waits for others to share its request: short, so a
/// trace is complete at the collector soon after the operation ended.
const BATCH_DELAY: Duration = Duration::from_millis(300);
/// A collector that does not answer in this time is skipped.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The attributes of the exporting process (`service.name`, ...).
#[derive(Clone, Debug, Default)]
pub(crate) struct Resource {
    /// Key-value pairs.
    pub attributes: Vec<(&'static str, AttrValue)>,
}

/// The layer's end of the queue.
pub(crate) struct Sender {
    tx: SyncSender<FinishedSpan>,
}

impl Sender {
    /// Starts the sender thread posting to `url` (`.../v1/traces`).
    pub(crate) fn start(url: String, resource: Resource) -> std::io::Result<Sender> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || run(&url, &resource, &rx))?;
        Ok(Sender { tx })
    }

    /// A sender whose spans go to the returned receiver (for tests).
    #[cfg(test)]
    pub(crate) fn channel() -> (Sender, Receiver<FinishedSpan>) {
        let (tx, rx) = sync_channel(QUEUE);
        (Sender { tx }, rx)
    }

    /// Queues `span` without ever blocking.
    pub(crate) fn send(&self, span: FinishedSpan) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(span) {
            crate::metrics::count(
                "cloud_trace_spans_dropped_total",
                "Finished spans dropped because the OTLP collector could not keep up.",
                &[],
                1,
            );
        }
    }
}

fn run(url: &str, resource: &Resource, rx: &Receiver<FinishedSpan>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the span exporter; spans are not exported");
            return;
        }
    };
    let client = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the span exporter's HTTP client");
            return;
        }
    };
    let mut failing = false;
    while let Some(batch) = next_batch(rx) {
        let body = encode::export_request(resource, &batch);
        let posted = runtime.block_on(async {
            client
                .post(url)
                .json(&body)
                .send()
                .await?
                .error_for_status()
        });
        let outcome = if posted.is_ok() { "exported" } else { "failed" };
        crate::metrics::count(
            "cloud_trace_spans_total",
            "Finished spans sent to the OTLP collector, by outcome.",
            &[("outcome", outcome)],
            batch.len() as u64,
        );
        match posted {
            Ok(_) if failing => {
                tracing::info!(%url, "the OTLP collector takes spans again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!(%url, error = %e, "cannot export spans; dropping them until the collector answers");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Waits for a span, then gathers what else arrives within the batch
/// delay. `None` once every sender is gone.
fn next_batch(rx: &Receiver<FinishedSpan>) -> Option<Vec<FinishedSpan>> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    let deadline = Instant::now() + BATCH_DELAY;
    while batch.len() < MAX_BATCH {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(span) => batch.push(span),
            Err(_) => break,
        }
    }
    Some(batch)
}
