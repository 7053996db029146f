//! Connecting a service to the message bus described by its `[bus]`.

use crate::config::BusConfig;
use cloud_bus::{AmqpBus, AmqpConfig, Bus};
use std::sync::Arc;

/// Connects to RabbitMQ as `[bus]` says. Fails if the broker cannot be
/// reached now; once connected, the bus reconnects by itself.
pub async fn connect(cfg: &BusConfig) -> anyhow::Result<Arc<dyn Bus>> {
    if cfg.url().is_none() {
        anyhow::bail!("no AMQP URL: set [bus] amqp_url or CLOUD_AMQP_URL");
    }
    let mut amqp = AmqpConfig::new("", cfg.prefix.clone());
    amqp.urls = cfg.urls();
    amqp.queue_type = cfg.queue_type;
    amqp.tls = cloud_bus::TlsFiles {
        ca_file: cfg.tls.ca_file.clone(),
        cert_file: cfg.tls.cert_file.clone(),
        key_file: cfg.tls.key_file.clone(),
    };
    amqp.connection_name = format!(
        "{}@{}",
        std::env::args()
            .next()
            .and_then(|a| a.rsplit('/').next().map(str::to_owned))
            .unwrap_or_else(|| "cloud".into()),
        crate::hostname()
    );
    let bus: Arc<dyn Bus> = Arc::new(AmqpBus::connect(amqp).await?);
    Ok(traced(bus))
}

/// `bus`, wrapped so that what it sends carries the sending span's trace
/// context when this process exports spans (as is when it does not).
pub fn traced(bus: Arc<dyn Bus>) -> Arc<dyn Bus> {
    if crate::telemetry::exporting() {
        Arc::new(crate::traced_bus::TracedBus::new(bus))
    } else {
        bus
    }
}
