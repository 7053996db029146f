//! Consumers that outlive connections, and how their deliveries are
//! acknowledged and answered.
//!
//! [`start`] opens a lapin consumer on the current link and hands it to a
//! task that forwards its deliveries into the [`Consumer`]'s channel. When
//! the lapin consumer ends (connection lost, channel closed, queue deleted)
//! the task waits for the supervisor's next link and opens a new one on a
//! new channel, feeding the same channel: the [`Consumer`] never notices.
//! Deliveries still held from the dead channel can no longer be
//! acknowledged; the broker has requeued them and delivers them again
//! (at-least-once), so their acks are ignored.

use super::Shared;
use super::link::{self, Link};
use crate::{Acker, BusError, Consumer, Delivery, Envelope};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often a consumer task checks its channel is still open.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// What a consumer reads.
#[derive(Clone)]
pub(super) enum Source {
    /// A work queue: logical name and broker name.
    Queue { queue: String, full: ShortString },
    /// A broadcast topic's fanout exchange; each opening binds a new
    /// exclusive queue.
    Topic { exchange: ShortString },
}

impl Source {
    fn describe(&self) -> &str {
        match self {
            Source::Queue { full, .. } => full.as_str(),
            Source::Topic { exchange } => exchange.as_str(),
        }
    }
}

/// Opens a consumer now (so that errors surface and, for a subscription,
/// broadcasts sent after this returns are received) and keeps it open.
pub(super) async fn start(shared: Arc<Shared>, source: Source) -> Result<Consumer, BusError> {
    let deadline = Instant::now() + shared.config.publish_timeout;
    let link = shared.wait_link(deadline).await?;
    let opened = tokio::time::timeout(link::SETUP_TIMEOUT, open(&shared, &link, &source))
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| BusError::Unavailable(format!("consuming {}: {e}", source.describe())))?;
    // One slot: the broker's prefetch, not this channel, bounds what a
    // consumer takes ahead.
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(run(shared, source, tx, opened));
    Ok(Consumer::new(rx))
}

/// Opens a channel with the prefetch limit, declares what `source` needs
/// and starts consuming with manual acks.
async fn open(
    shared: &Shared,
    link: &Link,
    source: &Source,
) -> Result<(Channel, lapin::Consumer), lapin::Error> {
    let ch = link.conn.create_channel().await?;
    let r = async {
        ch.basic_qos(shared.config.prefetch, BasicQosOptions::default())
            .await?;
        let queue = match source {
            Source::Queue { queue, full } => {
                link::declare_work_queue(shared, &ch, queue, full).await?;
                full.clone()
            }
            Source::Topic { exchange } => {
                link::declare_fanout(&ch, exchange).await?;
                let q = ch
                    .queue_declare(
                        "".into(),
                        QueueDeclareOptions {
                            exclusive: true,
                            auto_delete: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                ch.queue_bind(
                    q.name().clone(),
                    exchange.clone(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
                q.name().clone()
            }
        };
        ch.basic_consume(
            queue,
            ShortString::from(format!("c-{}", uuid::Uuid::new_v4())),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    }
    .await;
    match r {
        Ok(c) => Ok((ch, c)),
        Err(e) => {
            let _ = ch.close(200, "consumer setup failed".into()).await;
            Err(e)
        }
    }
}

/// Forwards deliveries until the [`Consumer`] is dropped or the bus is
/// closed, re-opening the lapin consumer whenever it ends.
async fn run(
    shared: Arc<Shared>,
    source: Source,
    tx: mpsc::Sender<Delivery>,
    first: (Channel, lapin::Consumer),
) {
    let mut current = Some(first);
    let mut attempt = 0u32;
    loop {
        let (ch, stream) = match current.take() {
            Some(c) => c,
            None => {
                let link = tokio::select! {
                    l = shared.wait_link(Instant::now() + Duration::from_secs(3600)) => l,
                    _ = tx.closed() => return,
                };
                let opened = match link {
                    Ok(link) => {
                        let opening = open(&shared, &link, &source);
                        tokio::select! {
                            r = tokio::time::timeout(link::SETUP_TIMEOUT, opening) => match r {
                                Ok(r) => r.map_err(|e| e.to_string()),
                                Err(_) => Err("timed out".to_owned()),
                            },
                            _ = tx.closed() => return,
                        }
                    }
                    Err(BusError::Closed) => return,
                    Err(e) => Err(e.to_string()),
                };
                match opened {
                    Ok(c) => {
                        tracing::info!(source = source.describe(), "bus: consumer re-opened");
                        attempt = 0;
                        c
                    }
                    Err(error) => {
                        let delay = link::backoff(attempt);
                        attempt = attempt.saturating_add(1);
                        tracing::warn!(source = source.describe(), %error, ?delay, "bus: re-opening consumer failed");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = tx.closed() => return,
                            _ = shared.shutdown.cancelled() => return,
                        }
                        continue;
                    }
                }
            }
        };
        match forward(&shared, &source, &tx, &ch, stream).await {
            Ended::Lost => continue,
            Ended::Done => {
                let _ = ch.close(200, "consumer closed".into()).await;
                return;
            }
        }
    }
}

enum Ended {
    /// The lapin consumer ended; open another.
    Lost,
    /// The [`Consumer`] was dropped or the bus closed.
    Done,
}

async fn forward(
    shared: &Arc<Shared>,
    source: &Source,
    tx: &mpsc::Sender<Delivery>,
    ch: &Channel,
    mut stream: lapin::Consumer,
) -> Ended {
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(d)) => {
                    let work = matches!(source, Source::Queue { .. });
                    let Some(delivery) = to_delivery(shared, d, work) else { continue };
                    tokio::select! {
                        r = tx.send(delivery) => if r.is_err() { return Ended::Done },
                        _ = shared.shutdown.cancelled() => return Ended::Done,
                    }
                }
                Some(Err(e)) => {
                    if !shared.shutdown.is_cancelled() {
                        tracing::warn!(source = source.describe(), error = %e, "bus: consumer interrupted");
                    }
                    return Ended::Lost;
                }
                None => {
                    tracing::warn!(source = source.describe(), "bus: consumer cancelled by the broker");
                    return Ended::Lost;
                }
            },
            _ = tx.closed() => return Ended::Done,
            _ = shared.shutdown.cancelled() => return Ended::Done,
            _ = health.tick() => if !ch.status().connected() {
                tracing::warn!(source = source.describe(), "bus: consumer channel closed");
                return Ended::Lost;
            },
        }
    }
}

/// Wraps a lapin delivery; an undecodable message is rejected for good
/// (requeueing it would loop forever) and skipped.
fn to_delivery(
    shared: &Arc<Shared>,
    d: lapin::message::Delivery,
    requeue_on_drop: bool,
) -> Option<Delivery> {
    let acker = AmqpAcker {
        acker: d.acker.clone(),
        requeue_on_drop,
        reply_to: reply_address(&d.properties),
        shared: shared.clone(),
        settled: AtomicBool::new(false),
    };
    match Envelope::from_bytes(&d.data) {
        Ok(env) => Some(Delivery::new(env, d.redelivered, Box::new(acker))),
        Err(e) => {
            tracing::error!(error = %e, routing_key = %d.routing_key, "bus: dropping an undecodable message");
            acker.settled.store(true, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = d.acker.reject(BasicRejectOptions { requeue: false }).await;
            });
            None
        }
    }
}

fn reply_address(p: &BasicProperties) -> Option<(String, String)> {
    let to = p.reply_to().as_ref()?.to_string();
    let corr = p.correlation_id().as_ref()?.to_string();
    Some((to, corr))
}

/// Acknowledges through the lapin channel the message came on, and answers
/// calls through the bus's publishing channel.
struct AmqpAcker {
    acker: lapin::Acker,
    /// Whether dropping it unsettled requeues it (work queues) or discards
    /// it (broadcasts), as the in-process bus does.
    requeue_on_drop: bool,
    /// Reply queue and correlation id of a call.
    reply_to: Option<(String, String)>,
    shared: Arc<Shared>,
    /// Set once acked or rejected; an unsettled acker is rejected with
    /// requeue when dropped.
    settled: AtomicBool,
}

impl AmqpAcker {
    fn settle(&self) -> bool {
        !self.settled.swap(true, Ordering::SeqCst)
    }
}

/// Logs an acknowledgement that could not be made: its channel is gone and
/// the broker has requeued the message, so it will be delivered again.
fn ignore_dead_channel(what: &str, r: lapin::Result<bool>) {
    match r {
        Ok(true) => {}
        Ok(false) => tracing::debug!(
            "bus: {what} ignored, its channel is closed (message will be redelivered)"
        ),
        Err(e) => {
            tracing::debug!(error = %e, "bus: {what} failed, its channel is closed (message will be redelivered)")
        }
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> Result<(), BusError> {
        if self.settle() {
            ignore_dead_channel("ack", self.acker.ack(Default::default()).await);
        }
        Ok(())
    }

    async fn nack(&self, requeue: bool) -> Result<(), BusError> {
        if self.settle() {
            let r = self.acker.reject(BasicRejectOptions { requeue }).await;
            ignore_dead_channel("nack", r);
        }
        Ok(())
    }

    async fn reply(&self, reply: Envelope) -> Result<(), BusError> {
        let Some((to, corr)) = &self.reply_to else {
            return Ok(());
        };
        let kind = super::wire::Kind::Transient {
            correlation_id: Some(corr),
        };
        self.shared
            .publish(
                super::Target::Reply(to),
                &reply,
                kind,
                self.shared.publish_deadline(),
            )
            .await
    }

    fn expects_reply(&self) -> bool {
        self.reply_to.is_some()
    }
}

impl Drop for AmqpAcker {
    /// A work item dropped unhandled (its handler panicked or forgot it)
    /// goes back to the queue at once rather than when the channel closes.
    fn drop(&mut self) {
        if self.settle()
            && self.acker.usable()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let acker = self.acker.clone();
            let requeue = self.requeue_on_drop;
            rt.spawn(async move {
                let r = acker.reject(BasicRejectOptions { requeue }).await;
                ignore_dead_channel("requeue of a dropped delivery", r);
            });
        }
    }
}
