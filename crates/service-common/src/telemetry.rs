//! Tracing initialisation.
//!
//! Logs go to stderr; the level comes from `RUST_LOG` (default `info`).
//! Request and message spans carry the request id, so every line logged
//! while handling a request names it.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call is
/// ignored), which the all-in-one binary and tests rely on.
pub fn init_tracing(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn,lapin=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
