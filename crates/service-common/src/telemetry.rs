//! Tracing initialisation.
//!
//! Logs go to stderr; the level comes from `RUST_LOG` (default `info`).
//! Request and message spans carry the request id, so every line logged
//! while handling a request names it.
//!
//! Besides the log output, the subscriber counts the database statements
//! the process executes ([`db_statements`], exported at `/metrics` as
//! `cloud_db_statements_total`): sqlx reports every statement as a
//! `sqlx::query` event, so counting them needs no change to the store.

use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

static DB_STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Installs the global subscriber. Safe to call twice (the second call is
/// ignored), which the all-in-one binary and tests rely on.
pub fn init_tracing(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn,lapin=warn")));
    let output = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(output)
        .with(StatementCounter.with_filter(statement_events()))
        .try_init();
}

/// Database statements executed by this process so far (counted only
/// once [`init_tracing`] installed the subscriber).
pub fn db_statements() -> u64 {
    DB_STATEMENTS.load(Ordering::Relaxed)
}

/// The events sqlx emits once per executed statement (at DEBUG, its
/// default `log_statements` level; slow ones at WARN).
fn statement_events() -> Targets {
    Targets::new().with_target("sqlx::query", Level::DEBUG)
}

/// Counts `sqlx::query` events into [`db_statements`].
struct StatementCounter;

impl<S: Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
        DB_STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_events_are_counted() {
        init_tracing("info");
        let before = db_statements();
        tracing::debug!(target: "sqlx::query", summary = "SELECT 1", "statement");
        tracing::debug!(target: "other", "not a statement");
        assert_eq!(db_statements(), before + 1);
    }
}
