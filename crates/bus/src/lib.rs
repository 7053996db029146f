//! The message bus between the control plane's services.
//!
//! One [`Bus`] interface, two implementations: AMQP 0-9-1 over RabbitMQ
//! (`amqp` module) for multi-process deployments, and in process
//! ([`InProcBus`]) for the all-in-one binary and tests. One contract suite
//! runs against both.
//!
//! Three patterns:
//! * **cast**: a message to a work queue (`conductor`, `scheduler`,
//!   `compute.<host>`), consumed by exactly one of the queue's consumers.
//!   Durable: it survives a broker restart and is acknowledged only after
//!   it was handled, so a crash mid-handling means redelivery (handlers are
//!   idempotent).
//! * **call**: a cast that expects a reply, correlated by id, with a timeout.
//! * **broadcast**: a message to every subscriber of a topic (fanout).

mod amqp;
mod envelope;
mod inproc;
mod stats;

pub use amqp::{AmqpBus, AmqpConfig, QueueType, TlsFiles};
pub use envelope::{Envelope, set_trace_context_source};
pub use inproc::InProcBus;
pub use stats::{BusStats, stats};

use async_trait::async_trait;
use std::time::Duration;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker is unreachable (the implementation keeps reconnecting).
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// No reply arrived in time for a call.
    #[error("no reply from {queue} within {timeout:?}")]
    Timeout {
        /// The queue called.
        queue: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A message could not be encoded or decoded.
    #[error("bad message: {0}")]
    Codec(String),
    /// The consumer or bus was closed.
    #[error("bus closed")]
    Closed,
}

impl From<BusError> for cloud_model::Error {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Codec(m) => cloud_model::Error::internal(format!("bus codec: {m}")),
            other => cloud_model::Error::unavailable(other.to_string()),
        }
    }
}

/// A message handed to a consumer. It must be acknowledged with
/// [`Delivery::ack`] once handled (or rejected with [`Delivery::nack`]);
/// a work-queue delivery dropped without either (its handler panicked, its
/// consumer went away) goes back to the queue and is delivered again,
/// marked `redelivered`.
pub struct Delivery {
    /// The message.
    pub envelope: Envelope,
    /// Whether this message was delivered before (AMQP `redelivered`).
    pub redelivered: bool,
    acker: Box<dyn Acker>,
}

/// How a delivery is acknowledged and answered; one per implementation.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Acknowledges the message: it will not be delivered again.
    async fn ack(&self) -> Result<(), BusError>;
    /// Rejects the message; `requeue` puts it back for another consumer.
    async fn nack(&self, requeue: bool) -> Result<(), BusError>;
    /// Sends the reply of a call (no-op for a cast).
    async fn reply(&self, reply: Envelope) -> Result<(), BusError>;
    /// Whether the sender waits for a reply.
    fn expects_reply(&self) -> bool;
}

impl Delivery {
    /// Builds a delivery (used by implementations).
    pub fn new(envelope: Envelope, redelivered: bool, acker: Box<dyn Acker>) -> Self {
        stats::note_consumed();
        Delivery {
            envelope,
            redelivered,
            acker,
        }
    }

    /// Acknowledges the message after it was handled.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Rejects the message.
    pub async fn nack(self, requeue: bool) -> Result<(), BusError> {
        self.acker.nack(requeue).await
    }

    /// Answers a call, then acknowledges the message.
    pub async fn reply(self, reply: Envelope) -> Result<(), BusError> {
        self.acker.reply(reply).await?;
        self.acker.ack().await
    }

    /// Whether the sender waits for a reply (a call).
    pub fn expects_reply(&self) -> bool {
        self.acker.expects_reply()
    }
}

/// A stream of deliveries from one queue or topic.
pub struct Consumer {
    rx: tokio::sync::mpsc::Receiver<Delivery>,
}

impl Consumer {
    /// Wraps a channel fed by an implementation.
    pub fn new(rx: tokio::sync::mpsc::Receiver<Delivery>) -> Self {
        Consumer { rx }
    }

    /// The next delivery, or `None` when the bus is closed.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

/// The bus interface. Cheap to share as `Arc<dyn Bus>`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends `msg` to work queue `queue` (declared durable if needed).
    /// Returns once the broker has taken responsibility for it.
    async fn cast(&self, queue: &str, msg: Envelope) -> Result<(), BusError>;

    /// Sends `msg` to `queue` and waits up to `timeout` for the reply.
    async fn call(
        &self,
        queue: &str,
        msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError>;

    /// Sends `msg` to every current subscriber of `topic`.
    async fn broadcast(&self, topic: &str, msg: Envelope) -> Result<(), BusError>;

    /// Consumes work queue `queue`: each message goes to one of its
    /// consumers. Consuming survives broker reconnections.
    async fn consume(&self, queue: &str) -> Result<Consumer, BusError>;

    /// Subscribes to broadcasts on `topic` (from now on).
    async fn subscribe(&self, topic: &str) -> Result<Consumer, BusError>;
}

/// The name of a compute host's queue.
pub fn compute_queue(host: &str) -> String {
    format!("compute.{host}")
}

/// The conductor's work queue.
pub const CONDUCTOR_QUEUE: &str = "conductor";
/// The scheduler's work queue.
pub const SCHEDULER_QUEUE: &str = "scheduler";
