//! One broker connection ("link") and the supervisor that replaces it.
//!
//! A [`Link`] is a lapin connection plus what every bus needs on it: a
//! publishing channel in confirm mode (opened again when the broker closes
//! it) and this bus's reply queue with its consumer. The supervisor task
//! holds the current link in a `watch` channel; when the connection dies
//! (broker restart, `rabbitmqctl close_all_connections`, network loss) it
//! clears the slot, reconnects with exponential backoff and publishes the new
//! link. Publishers wait for a link in that slot; consumer tasks (see
//! `consumer.rs`) re-open their lapin consumers on it. Topology is declared
//! again on each link: the work exchange and reply queue here, work queues
//! and fanout exchanges lazily by whoever uses them first.
//!
//! lapin's own experimental auto-recovery is not used: recovering ourselves
//! keeps every step visible and testable.

use super::wire::{queue_arguments, redact, short};
use super::{QueueType, Shared, TlsFiles};
use crate::{BusError, Envelope};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a reply queue survives without a consumer (its process
/// reconnecting, or gone for good) before the broker deletes it.
pub(crate) const REPLY_QUEUE_EXPIRES: Duration = Duration::from_secs(120);

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting plus declaring the link's topology may take; also
/// bounds re-opening a consumer. A broker that stopped answering without
/// closing the socket is otherwise only noticed by heartbeats.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the supervisor checks that the connection is alive.
const HEALTH_INTERVAL: Duration = Duration::from_millis(200);
/// First and longest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The delay before attempt `attempt` (0-based) of something that keeps
/// failing: doubling from 100 ms up to 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    BACKOFF_MIN
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_MAX)
}

/// One live connection and its per-connection state.
pub(crate) struct Link {
    /// Counts links over the bus's life, for logs.
    pub(crate) generation: u64,
    /// Which of the configured broker URLs this link is connected to.
    url_index: usize,
    pub(crate) conn: Connection,
    /// The publishing channel (confirm mode) and the names declared through
    /// it; both are replaced together when the broker closes the channel.
    publisher: tokio::sync::Mutex<Publisher>,
    reply_channel: Channel,
}

struct Publisher {
    channel: Option<Channel>,
    declared: Arc<Mutex<HashSet<String>>>,
}

/// A publishing channel and the cache of what was declared on it.
pub(crate) struct PublishChannel {
    pub(crate) channel: Channel,
    declared: Arc<Mutex<HashSet<String>>>,
}

impl PublishChannel {
    /// Whether `name` was declared on this channel already.
    pub(crate) fn is_declared(&self, name: &str) -> bool {
        self.declared
            .lock()
            .map(|d| d.contains(name))
            .unwrap_or(false)
    }

    /// Remembers that `name` exists.
    pub(crate) fn mark_declared(&self, name: &str) {
        if let Ok(mut d) = self.declared.lock() {
            d.insert(name.to_owned());
        }
    }

    /// Forgets `name` (it turned out to be gone, e.g. deleted by an admin).
    pub(crate) fn forget(&self, name: &str) {
        if let Ok(mut d) = self.declared.lock() {
            d.remove(name);
        }
    }
}

impl Link {
    /// Connects and sets up the publishing channel, the work exchange and
    /// the reply queue with its consumer.
    pub(crate) async fn open(shared: &Arc<Shared>, generation: u64) -> Result<Link, BusError> {
        let (conn, url_index) = connect(shared).await?;
        let url = redact(&shared.config.urls[url_index]);
        let unavailable =
            |what: &str, e: lapin::Error| BusError::Unavailable(format!("{what} ({url}): {e}"));
        let publisher = open_publisher(&conn)
            .await
            .map_err(|e| unavailable("opening a channel on", e))?;
        publisher
            .exchange_declare(
                short(shared.names.work_exchange(), "prefix")?,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable("declaring the work exchange on", e))?;

        let reply_channel = conn
            .create_channel()
            .await
            .map_err(|e| unavailable("opening a channel on", e))?;
        let reply_queue = short(shared.reply_queue.clone(), "prefix")?;
        // Not exclusive: an exclusive queue dies with its connection, and a
        // reply sent while this bus reconnects would be dropped, failing a
        // call that the other side answered. The queue outlives a lost
        // connection by REPLY_QUEUE_EXPIRES, keeping such replies for the
        // next link, and the broker removes it once nobody uses it.
        // A quorum reply queue must be durable (the broker refuses anything
        // else); it still goes away by itself through `x-expires`.
        let queue_type = shared.config.queue_type;
        reply_channel
            .queue_declare(
                reply_queue.clone(),
                QueueDeclareOptions {
                    durable: queue_type == QueueType::Quorum,
                    ..Default::default()
                },
                queue_arguments(Some(REPLY_QUEUE_EXPIRES), queue_type),
            )
            .await
            .map_err(|e| unavailable("declaring the reply queue on", e))?;
        let replies = reply_channel
            .basic_consume(
                reply_queue,
                ShortString::from(format!("replies-{generation}")),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable("consuming the reply queue on", e))?;
        tokio::spawn(route_replies(replies, shared.pending.clone()));

        Ok(Link {
            generation,
            url_index,
            conn,
            publisher: tokio::sync::Mutex::new(Publisher {
                channel: Some(publisher),
                declared: Arc::default(),
            }),
            reply_channel,
        })
    }

    /// Whether the connection (and with it the reply queue) is usable.
    pub(crate) fn is_alive(&self) -> bool {
        self.conn.status().connected() && self.reply_channel.status().connected()
    }

    /// The publishing channel, opened again if the broker closed it (a
    /// channel error such as publishing to a deleted exchange closes only
    /// the channel, not the connection).
    pub(crate) async fn publisher(&self) -> Result<PublishChannel, lapin::Error> {
        let mut p = self.publisher.lock().await;
        if let Some(ch) = &p.channel
            && ch.status().connected()
        {
            return Ok(PublishChannel {
                channel: ch.clone(),
                declared: p.declared.clone(),
            });
        }
        let ch = open_publisher(&self.conn).await?;
        tracing::debug!(
            generation = self.generation,
            "bus: opened a new publishing channel"
        );
        p.channel = Some(ch.clone());
        p.declared = Arc::default();
        Ok(PublishChannel {
            channel: ch,
            declared: p.declared.clone(),
        })
    }

    /// Replaces the publishing channel `channel` with a new one at the next
    /// publish (no-op if it was replaced already). Used after the broker
    /// nacked a message: the broker keeps per-channel state for each quorum
    /// queue published to, and after a leader change that state can go on
    /// refusing messages the queue would accept on a fresh channel.
    pub(crate) async fn discard_publisher(&self, channel: &Channel) {
        let mut p = self.publisher.lock().await;
        if p.channel.as_ref().is_some_and(|c| c.id() == channel.id()) {
            p.channel = None;
            let _ = channel.close(200, "replaced after a nack".into()).await;
        }
    }

    /// Resolves when the connection is lost.
    async fn lost(&self) {
        let mut tick = tokio::time::interval(HEALTH_INTERVAL);
        loop {
            tick.tick().await;
            if !self.is_alive() {
                return;
            }
        }
    }

    /// Closes the connection politely (best effort).
    pub(crate) async fn close(&self) {
        if let Some(ch) = &self.publisher.lock().await.channel {
            let _ = ch.close(200, "bus closed".into()).await;
        }
        if self.conn.status().connected()
            && let Err(e) = self.conn.close(200, "bus closed".into()).await
        {
            tracing::debug!(error = %e, "bus: closing the connection");
        }
    }
}

/// How long opening a link may take: connecting plus declaring its
/// topology, plus a connection attempt for each further broker URL.
fn open_timeout(shared: &Shared) -> Duration {
    let others = u32::try_from(shared.config.urls.len().saturating_sub(1)).unwrap_or(u32::MAX);
    SETUP_TIMEOUT.saturating_add(CONNECT_TIMEOUT.saturating_mul(others))
}

/// Connects to the first configured broker that accepts, starting with
/// `shared.next_url` and going round the list once. Returns the
/// connection and the index of its URL.
async fn connect(shared: &Shared) -> Result<(Connection, usize), BusError> {
    let urls = &shared.config.urls;
    let start = shared.next_url.load(Ordering::Relaxed) % urls.len().max(1);
    let mut errors = Vec::new();
    for i in 0..urls.len() {
        let index = (start + i) % urls.len();
        let url = &urls[index];
        match tokio::time::timeout(CONNECT_TIMEOUT, connect_to(shared, url)).await {
            Ok(Ok(conn)) => return Ok((conn, index)),
            Ok(Err(e)) => errors.push(format!("{}: {e}", redact(url))),
            Err(_) => errors.push(format!("{}: timed out", redact(url))),
        }
    }
    Err(BusError::Unavailable(format!(
        "connecting to the message broker failed: {}",
        errors.join("; ")
    )))
}

/// One connection attempt to `url`, with the configured certificates
/// (used by `amqps://` URLs only).
async fn connect_to(shared: &Shared, url: &str) -> Result<Connection, String> {
    let props = ConnectionProperties::default()
        .with_connection_name(shared.config.connection_name.clone().into());
    let tls = tls_config(&shared.config.tls)?;
    let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
    Connection::connect_with_config(url, props, tls, runtime)
        .await
        .map_err(|e| e.to_string())
}

/// The TLS settings from the configured PEM files, read now so that a
/// renewed certificate is used from the next connection on.
fn tls_config(files: &TlsFiles) -> Result<OwnedTLSConfig, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let cert_chain = match &files.ca_file {
        Some(p) => Some(
            String::from_utf8(read(p)?)
                .map_err(|_| format!("{} is not a PEM file", p.display()))?,
        ),
        None => None,
    };
    let identity = match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read(cert)?,
            key: read(key)?,
        }),
        (None, None) => None,
        _ => return Err("a client certificate needs both cert_file and key_file".to_owned()),
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

async fn open_publisher(conn: &Connection) -> Result<Channel, lapin::Error> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// Declares work queue `queue` (broker name `full`) durable, of the
/// configured type, and binds it to the work exchange under its logical
/// name.
pub(crate) async fn declare_work_queue(
    shared: &Shared,
    channel: &Channel,
    queue: &str,
    full: &ShortString,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            full.clone(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            queue_arguments(shared.config.queue_expires, shared.config.queue_type),
        )
        .await?;
    channel
        .queue_bind(
            full.clone(),
            shared.names.work_exchange().into(),
            // Checked by the caller: `full` is longer than `queue`.
            ShortString::from(queue),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Declares the fanout exchange `exchange` of a broadcast topic. Transient:
/// whoever broadcasts or subscribes declares it again after a restart.
pub(crate) async fn declare_fanout(
    channel: &Channel,
    exchange: &ShortString,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            exchange.clone(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Hands each reply to the call waiting for its correlation id; replies
/// nobody waits for (a call that timed out, a duplicate) are dropped.
async fn route_replies(mut replies: lapin::Consumer, pending: super::Pending) {
    while let Some(item) = replies.next().await {
        let Ok(d) = item else { break };
        let Some(corr) = d
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
        else {
            tracing::warn!("bus: dropping a reply without correlation id");
            continue;
        };
        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&corr));
        let Some(waiter) = waiter else {
            tracing::debug!(correlation_id = %corr, "bus: dropping a reply nobody waits for");
            continue;
        };
        match Envelope::from_bytes(&d.data) {
            Ok(env) => {
                let _ = waiter.send(env);
            }
            Err(e) => tracing::warn!(correlation_id = %corr, error = %e, "bus: undecodable reply"),
        }
    }
}

/// Keeps the bus connected until it is closed: publishes each new link,
/// notices its loss, and reconnects with backoff.
pub(crate) async fn supervise(shared: Arc<Shared>, first: Link) {
    let mut next = Some(first);
    let mut generation = 0;
    let mut attempt = 0u32;
    let mut down_since: Option<Instant> = None;
    loop {
        let link = match next.take() {
            Some(l) => l,
            None => {
                generation += 1;
                let opened = tokio::select! {
                    r = tokio::time::timeout(open_timeout(&shared), Link::open(&shared, generation)) => {
                        r.unwrap_or_else(|_| Err(BusError::Unavailable("connection setup timed out".into())))
                    }
                    _ = shared.shutdown.cancelled() => return,
                };
                match opened {
                    Ok(l) => {
                        let down = down_since.take().map(|t| t.elapsed()).unwrap_or_default();
                        tracing::info!(generation, ?down, "bus: reconnected to the broker");
                        attempt = 0;
                        l
                    }
                    Err(e) => {
                        let delay = backoff(attempt);
                        attempt = attempt.saturating_add(1);
                        tracing::warn!(error = %e, attempt, ?delay, "bus: reconnecting failed, retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shared.shutdown.cancelled() => return,
                        }
                        continue;
                    }
                }
            }
        };
        let link = Arc::new(link);
        shared.link.send_replace(Some(link.clone()));
        tokio::select! {
            _ = link.lost() => {
                tracing::warn!(generation = link.generation, broker = %redact(&shared.config.urls[link.url_index]), "bus: connection to the broker lost, reconnecting");
                // That node may be down: try the others first.
                shared.next_url.store(link.url_index + 1, Ordering::Relaxed);
                down_since = Some(Instant::now());
                shared.link.send_replace(None);
            }
            _ = shared.shutdown.cancelled() => {
                shared.link.send_replace(None);
                link.close().await;
                return;
            }
        }
    }
}
