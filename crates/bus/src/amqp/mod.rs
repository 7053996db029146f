//! The AMQP 0-9-1 bus over RabbitMQ (lapin).
//!
//! Layout on the broker, every name starting with the configured prefix:
//! * `<prefix>.work`: a durable topic exchange; work queue `q` is the
//!   durable queue `<prefix>.q` bound to it under routing key `q`, classic
//!   or quorum as [`AmqpConfig::queue_type`] says. Casts are persistent and
//!   published with confirms: `cast` returns only once the broker confirmed
//!   (for a quorum queue: once a majority of its replicas has it); a nack,
//!   an unroutable return or a connection lost before the confirm is
//!   retried until [`AmqpConfig::publish_timeout`], then reported. Consumers
//!   ack manually after handling, with a prefetch limit so that competing
//!   consumers share work.
//! * `<prefix>.reply.<uuid>`: this bus's reply queue; calls carry it as
//!   `reply_to` with a `correlation_id`. It survives a lost connection for
//!   a while (`x-expires`), so replies sent during a reconnection wait for
//!   the caller instead of being dropped. It is not exclusive, so it can be
//!   a quorum queue too, and then also survives the loss of its node.
//! * `<prefix>.fanout.<topic>`: a fanout exchange per broadcast topic; each
//!   subscriber binds its own exclusive auto-delete queue (re-created on
//!   reconnection: broadcasts sent while a subscriber reconnects are lost,
//!   which suits notifications).
//!
//! Reconnection is ours (see `link.rs`): a supervisor task re-establishes
//! the connection with backoff, trying the configured broker URLs in turn, publishers wait for it (bounded by
//! [`AmqpConfig::publish_timeout`]) and consumer tasks re-open their
//! consumers on it, feeding the same [`Consumer`] (see `consumer.rs`).

mod config;
mod consumer;
mod link;
mod wire;

pub use config::{AmqpConfig, QueueType, TlsFiles};

use crate::{Bus, BusError, Consumer, Envelope};
use async_trait::async_trait;
use link::{Link, PublishChannel};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wire::{Kind, Names};

/// Calls waiting for their reply, by correlation id.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Envelope>>>>;

/// State shared by the bus handle, the supervisor and the consumer tasks.
struct Shared {
    config: AmqpConfig,
    names: Names,
    reply_queue: String,
    /// The current link; `None` while reconnecting.
    link: watch::Sender<Option<Arc<Link>>>,
    pending: Pending,
    shutdown: CancellationToken,
    /// Index in `config.urls` of the broker to try first when connecting:
    /// the one after the broker whose connection was lost last.
    next_url: AtomicUsize,
}

/// The AMQP bus. Clones share one connection; dropping the last clone (or
/// [`AmqpBus::close`]) closes it and ends every [`Consumer`].
#[derive(Clone)]
pub struct AmqpBus {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    supervisor: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Where a message goes and what must exist for it to arrive.
enum Target<'a> {
    /// Work queue (logical name, broker name): declared and bound first;
    /// published mandatory so a queue deleted behind our back is noticed.
    Queue(&'a str, &'a lapin::types::ShortString),
    /// A fanout exchange, declared first.
    Fanout(&'a lapin::types::ShortString),
    /// A reply queue, through the default exchange; dropped if gone.
    Reply(&'a str),
}

impl AmqpBus {
    /// Connects to the broker. Fails if the first connection cannot be
    /// made; after that, connection losses are repaired in the background.
    pub async fn connect(config: AmqpConfig) -> Result<AmqpBus, BusError> {
        if config.urls.is_empty() {
            return Err(BusError::Unavailable("no broker URL configured".into()));
        }
        let names = Names::new(&config.prefix);
        let shared = Arc::new(Shared {
            reply_queue: names.reply_queue(),
            names,
            config,
            link: watch::Sender::new(None),
            pending: Pending::default(),
            shutdown: CancellationToken::new(),
            next_url: AtomicUsize::new(0),
        });
        let first = Link::open(&shared, 0).await?;
        let supervisor = tokio::spawn(link::supervise(shared.clone(), first));
        let bus = AmqpBus {
            handle: Arc::new(Handle {
                shared,
                supervisor: tokio::sync::Mutex::new(Some(supervisor)),
            }),
        };
        // The supervisor publishes the link; wait for it so the first
        // operation does not race it.
        bus.shared()
            .wait_link(Instant::now() + Duration::from_secs(5))
            .await?;
        tracing::info!(config = ?bus.shared().config, "bus: connected to the broker");
        Ok(bus)
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Closes the connection and ends every consumer of this bus (and of
    /// its clones). Calls still waiting fail with [`BusError::Closed`].
    pub async fn close(&self) {
        let shared = self.shared();
        // The reply queue outlives connections (see link.rs); remove it now
        // rather than leave it to expire, unless the broker is unreachable.
        let reply_queue = shared.reply_queue.clone();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.admin(|ch| async move {
                ch.queue_delete(reply_queue.as_str().into(), Default::default())
                    .await
                    .map(|_| ())
            }),
        )
        .await;
        shared.shutdown.cancel();
        if let Some(task) = self.handle.supervisor.lock().await.take() {
            let _ = task.await;
        }
        if let Ok(mut p) = shared.pending.lock() {
            p.clear();
        }
    }

    /// Deletes work queue `queue` and its messages (e.g. the queue of a
    /// decommissioned compute host).
    pub async fn delete_queue(&self, queue: &str) -> Result<(), BusError> {
        let full = self.shared().names.queue(queue)?;
        self.admin(|ch| async move { ch.queue_delete(full, Default::default()).await.map(|_| ()) })
            .await
    }

    /// Deletes the fanout exchange of broadcast topic `topic`.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), BusError> {
        let full = self.shared().names.fanout(topic)?;
        self.admin(|ch| async move { ch.exchange_delete(full, Default::default()).await })
            .await
    }

    /// Deletes the work exchange of this bus's prefix: with
    /// [`AmqpBus::delete_queue`] and [`AmqpBus::delete_topic`], tears a whole
    /// prefix down (test runs, a removed cloud).
    pub async fn delete_work_exchange(&self) -> Result<(), BusError> {
        let full = wire::short(self.shared().names.work_exchange(), "prefix")?;
        self.admin(|ch| async move { ch.exchange_delete(full, Default::default()).await })
            .await
    }

    /// Runs one administrative operation on a fresh channel (so that an
    /// error closes nothing else).
    async fn admin<F, Fut>(&self, op: F) -> Result<(), BusError>
    where
        F: FnOnce(lapin::Channel) -> Fut,
        Fut: std::future::Future<Output = Result<(), lapin::Error>>,
    {
        let shared = self.shared();
        let link = shared
            .wait_link(Instant::now() + shared.config.publish_timeout)
            .await?;
        let unavailable = |e: lapin::Error| BusError::Unavailable(e.to_string());
        let ch = link.conn.create_channel().await.map_err(unavailable)?;
        let r = op(ch.clone()).await.map_err(unavailable);
        let _ = ch.close(200, "done".into()).await;
        r
    }
}

impl Shared {
    /// The current live link, waiting for the supervisor to establish one
    /// until `deadline`.
    async fn wait_link(&self, deadline: Instant) -> Result<Arc<Link>, BusError> {
        let mut rx = self.link.subscribe();
        loop {
            if self.shutdown.is_cancelled() {
                return Err(BusError::Closed);
            }
            if let Some(l) = rx.borrow_and_update().clone()
                && l.is_alive()
            {
                return Ok(l);
            }
            tokio::select! {
                _ = rx.changed() => {}
                // The link may die before the supervisor notices.
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(BusError::Unavailable("not connected to the message broker".into()));
                }
                _ = self.shutdown.cancelled() => return Err(BusError::Closed),
            }
        }
    }

    /// Publishes `msg` to `target`, retrying across channel errors and
    /// reconnections until the broker confirms it or `deadline` passes.
    async fn publish(
        &self,
        target: Target<'_>,
        msg: &Envelope,
        kind: Kind<'_>,
        deadline: Instant,
    ) -> Result<(), BusError> {
        let props = wire::properties(msg, kind);
        let body = msg.to_bytes();
        let mut attempt = 0u32;
        // The cause of the last failed attempt: what the caller is told
        // when the deadline cuts the next attempt short.
        let mut last_error: Option<String> = None;
        loop {
            let link = match self.wait_link(deadline).await {
                Ok(l) => l,
                Err(BusError::Unavailable(e)) => {
                    return Err(BusError::Unavailable(give_up(e, last_error.take())));
                }
                Err(e) => return Err(e),
            };
            let once = self.publish_once(&link, &target, &body, props.clone());
            let error = match tokio::time::timeout_at(deadline, once).await {
                Ok(Ok(())) => {
                    crate::stats::note_published();
                    return Ok(());
                }
                Ok(Err(e)) => e,
                Err(_) => give_up(
                    "no confirmation from the broker".to_owned(),
                    last_error.take(),
                ),
            };
            if Instant::now() >= deadline {
                return Err(BusError::Unavailable(error));
            }
            let delay = link::backoff(attempt).min(deadline - Instant::now());
            attempt = attempt.saturating_add(1);
            tracing::debug!(%error, attempt, "bus: publish failed, retrying");
            last_error = Some(error);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return Err(BusError::Closed),
            }
        }
    }

    async fn publish_once(
        &self,
        link: &Link,
        target: &Target<'_>,
        body: &[u8],
        props: lapin::BasicProperties,
    ) -> Result<(), String> {
        let ch: PublishChannel = link.publisher().await.map_err(|e| e.to_string())?;
        let (exchange, routing_key, mandatory, declared_name) = match target {
            Target::Queue(queue, full) => {
                if !ch.is_declared(full.as_str()) {
                    link::declare_work_queue(self, &ch.channel, queue, full)
                        .await
                        .map_err(|e| format!("declaring queue {full}: {e}"))?;
                    ch.mark_declared(full.as_str());
                }
                let ex = self.names.work_exchange();
                (ex, queue.to_string(), true, Some(full.as_str()))
            }
            Target::Fanout(full) => {
                if !ch.is_declared(full.as_str()) {
                    link::declare_fanout(&ch.channel, full)
                        .await
                        .map_err(|e| format!("declaring exchange {full}: {e}"))?;
                    ch.mark_declared(full.as_str());
                }
                (full.to_string(), String::new(), false, None)
            }
            Target::Reply(queue) => (String::new(), queue.to_string(), false, None),
        };
        let pending = ch
            .channel
            .basic_publish(
                wire::short(exchange, "exchange").map_err(|e| e.to_string())?,
                wire::short(routing_key, "routing key").map_err(|e| e.to_string())?,
                lapin::options::BasicPublishOptions {
                    mandatory,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(|e| e.to_string())?;
        // A confirmation that will never come (its channel or connection
        // died) must not hold the caller until the deadline: retry at once.
        let confirm = tokio::select! {
            c = pending => c.map_err(|e| e.to_string())?,
            _ = closed(&ch.channel, link) => {
                return Err("channel closed before the broker confirmed".to_owned());
            }
        };
        match confirm {
            lapin::Confirmation::Ack(None) | lapin::Confirmation::NotRequested => Ok(()),
            lapin::Confirmation::Ack(Some(_)) => {
                // Mandatory and unroutable: the queue was deleted after we
                // declared it. Declare it again on the next attempt.
                if let Some(name) = declared_name {
                    ch.forget(name);
                }
                Err(format!(
                    "queue {} does not exist",
                    declared_name.unwrap_or("?")
                ))
            }
            lapin::Confirmation::Nack(_) => {
                link.discard_publisher(&ch.channel).await;
                Err("the broker refused the message".to_owned())
            }
        }
    }

    fn publish_deadline(&self) -> Instant {
        Instant::now() + self.config.publish_timeout
    }
}

/// The error of a publish that ran out of time: `now`, and the cause of
/// the attempt before it, which is usually the real reason.
fn give_up(now: String, last_error: Option<String>) -> String {
    match last_error {
        Some(last) => format!("{now} (previous attempt: {last})"),
        None => now,
    }
}

/// Resolves once `channel` (or its connection) is no longer usable.
async fn closed(channel: &lapin::Channel, link: &Link) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if !channel.status().connected() || !link.is_alive() {
            return;
        }
    }
}

/// Removes a call's entry from the pending map however the call ends.
struct PendingGuard<'a> {
    pending: &'a Pending,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&self.id);
        }
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn cast(&self, queue: &str, msg: Envelope) -> Result<(), BusError> {
        let shared = self.shared();
        let full = shared.names.queue(queue)?;
        shared
            .publish(
                Target::Queue(queue, &full),
                &msg,
                Kind::Cast,
                shared.publish_deadline(),
            )
            .await
    }

    async fn call(
        &self,
        queue: &str,
        msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let shared = self.shared();
        let full = shared.names.queue(queue)?;
        let deadline = Instant::now() + timeout;
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        shared
            .pending
            .lock()
            .map_err(|_| BusError::Closed)?
            .insert(correlation_id.clone(), tx);
        let _guard = PendingGuard {
            pending: &shared.pending,
            id: correlation_id.clone(),
        };
        let kind = Kind::Call {
            reply_to: &shared.reply_queue,
            correlation_id: &correlation_id,
            ttl_ms: timeout.as_millis(),
        };
        shared
            .publish(Target::Queue(queue, &full), &msg, kind, deadline)
            .await?;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout {
                queue: queue.to_owned(),
                timeout,
            }),
        }
    }

    async fn broadcast(&self, topic: &str, msg: Envelope) -> Result<(), BusError> {
        let shared = self.shared();
        let full = shared.names.fanout(topic)?;
        let kind = Kind::Transient {
            correlation_id: None,
        };
        shared
            .publish(Target::Fanout(&full), &msg, kind, shared.publish_deadline())
            .await
    }

    async fn consume(&self, queue: &str) -> Result<Consumer, BusError> {
        let full = self.shared().names.queue(queue)?;
        consumer::start(
            self.shared().clone(),
            consumer::Source::Queue {
                queue: queue.to_owned(),
                full,
            },
        )
        .await
    }

    async fn subscribe(&self, topic: &str) -> Result<Consumer, BusError> {
        let exchange = self.shared().names.fanout(topic)?;
        consumer::start(self.shared().clone(), consumer::Source::Topic { exchange }).await
    }
}
