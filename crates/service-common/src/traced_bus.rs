//! The bus as seen by a service that exports spans: every message sent
//! is a `publish` span carrying its context to the receiver.
//!
//! The receiver's `message` span continues the `traceparent` of the
//! envelope, so sending inside a span of the operation (a request, a
//! message being handled) links the two processes' spans into one trace.
//! Wrapped around the bus only when spans are exported
//! ([`crate::bus::connect`]); otherwise messages keep the request-id based
//! `traceparent` that `cloud_rpc::encode` gives them.

use async_trait::async_trait;
use cloud_bus::{Bus, BusError, Consumer, Envelope};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// A [`Bus`] that traces what it sends.
pub struct TracedBus {
    inner: Arc<dyn Bus>,
}

impl TracedBus {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Bus>) -> TracedBus {
        TracedBus { inner }
    }
}

/// The span of one message sent, named as OpenTelemetry's messaging
/// conventions name them (`<destination> publish`).
fn publish_span(operation: &str, destination: &str, msg: &Envelope) -> tracing::Span {
    tracing::info_span!(
        "publish",
        otel.name = %format!("{destination} {operation}"),
        otel.kind = if operation == "call" { "client" } else { "producer" },
        messaging.system = "rabbitmq",
        messaging.operation = operation,
        messaging.destination.name = destination,
        message.kind = %msg.kind,
        request_id = %msg.request_id,
    )
}

/// Gives `msg` the context of the current (publish) span.
fn stamp(mut msg: Envelope) -> Envelope {
    if let Some(tp) = crate::telemetry::current_traceparent() {
        msg.traceparent = Some(tp);
    }
    msg
}

#[async_trait]
impl Bus for TracedBus {
    async fn cast(&self, queue: &str, msg: Envelope) -> Result<(), BusError> {
        let span = publish_span("publish", queue, &msg);
        async { self.inner.cast(queue, stamp(msg)).await }
            .instrument(span)
            .await
    }

    async fn call(
        &self,
        queue: &str,
        msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let span = publish_span("call", queue, &msg);
        async { self.inner.call(queue, stamp(msg), timeout).await }
            .instrument(span)
            .await
    }

    async fn broadcast(&self, topic: &str, msg: Envelope) -> Result<(), BusError> {
        let span = publish_span("broadcast", topic, &msg);
        async { self.inner.broadcast(topic, stamp(msg)).await }
            .instrument(span)
            .await
    }

    async fn consume(&self, queue: &str) -> Result<Consumer, BusError> {
        self.inner.consume(queue).await
    }

    async fn subscribe(&self, topic: &str) -> Result<Consumer, BusError> {
        self.inner.subscribe(topic).await
    }
}
