//! What every service binary shares: typed TOML configuration loading,
//! tracing initialisation, and the shutdown signal.

pub mod config;
pub mod shutdown;
pub mod telemetry;

pub use config::{LoadError, load_config};
pub use shutdown::shutdown_signal;
