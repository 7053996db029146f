//! What every service binary shares: typed TOML configuration loading,
//! tracing initialisation, and the shutdown signal.

pub mod bus;
pub mod config;
pub mod metrics;
mod otlp;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;
pub mod traced_bus;
pub mod worker;

pub use config::{LoadError, load_config, parse_config};
pub use shutdown::shutdown_signal;

/// This machine's host name (for service records and default agent names).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A task handle that aborts its task when dropped, so a service's
/// background loops (heartbeats, reconcilers) end with the service even
/// when the service's own task is aborted, as a crash would end them.
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
