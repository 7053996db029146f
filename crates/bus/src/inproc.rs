//! The in-process bus: tokio channels behind the [`Bus`] trait.
//!
//! Work queues are shared receivers (each message goes to one consumer);
//! a message cast before anyone consumes waits in the queue. Acknowledging
//! settles a message; nack with requeue, or dropping a delivery unsettled
//! (its handler panicked, its consumer went away), puts it back marked
//! redelivered, as the broker does. Within one process there is no broker
//! to crash, so delivery is exactly as reliable as the process itself,
//! which is the contract the all-in-one binary needs.

use crate::{Acker, Bus, BusError, Consumer, Delivery, Envelope};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A message waiting in a work queue.
struct Queued {
    envelope: Envelope,
    /// Where the reply of a call goes.
    reply: Option<oneshot::Sender<Envelope>>,
    /// Whether it was handed to a consumer before.
    redelivered: bool,
}

type QueueTx = mpsc::UnboundedSender<Queued>;
type QueueRx = mpsc::UnboundedReceiver<Queued>;

struct Queue {
    tx: QueueTx,
    rx: Arc<tokio::sync::Mutex<QueueRx>>,
}

/// The in-process bus. Clones share the same queues.
#[derive(Clone, Default)]
pub struct InProcBus {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
    topics: Arc<Mutex<HashMap<String, Vec<mpsc::Sender<Delivery>>>>>,
}

impl InProcBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, name: &str) -> (QueueTx, Arc<tokio::sync::Mutex<QueueRx>>) {
        let mut queues = self.queues.lock().expect("bus lock");
        let q = queues.entry(name.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            Queue {
                tx,
                rx: Arc::new(tokio::sync::Mutex::new(rx)),
            }
        });
        (q.tx.clone(), q.rx.clone())
    }
}

struct InProcAcker {
    /// The queue to put the message back in (none for broadcasts).
    requeue: Option<(QueueTx, Envelope)>,
    reply: Mutex<Option<oneshot::Sender<Envelope>>>,
    expects_reply: bool,
    /// Set once acked or nacked; dropping an unsettled delivery requeues it.
    settled: AtomicBool,
}

impl InProcAcker {
    fn new(requeue: Option<(QueueTx, Envelope)>, reply: Option<oneshot::Sender<Envelope>>) -> Self {
        InProcAcker {
            expects_reply: reply.is_some(),
            requeue,
            reply: Mutex::new(reply),
            settled: AtomicBool::new(false),
        }
    }

    /// Marks the message settled; false if it already was.
    fn settle(&self) -> bool {
        !self.settled.swap(true, Ordering::SeqCst)
    }

    fn put_back(&self) -> Result<(), BusError> {
        if let Some((tx, env)) = &self.requeue {
            let reply = self.reply.lock().map(|mut r| r.take()).unwrap_or(None);
            tx.send(Queued {
                envelope: env.clone(),
                reply,
                redelivered: true,
            })
            .map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }
}

impl Drop for InProcAcker {
    fn drop(&mut self) {
        if self.settle() {
            let _ = self.put_back();
        }
    }
}

#[async_trait]
impl Acker for InProcAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle();
        Ok(())
    }

    async fn nack(&self, requeue: bool) -> Result<(), BusError> {
        if self.settle() && requeue {
            self.put_back()?;
        }
        Ok(())
    }

    async fn reply(&self, reply: Envelope) -> Result<(), BusError> {
        let tx = self.reply.lock().map(|mut r| r.take()).unwrap_or(None);
        if let Some(tx) = tx
            && tx.send(reply).is_ok()
        {
            crate::stats::note_published();
        }
        Ok(())
    }

    fn expects_reply(&self) -> bool {
        self.expects_reply
    }
}

#[async_trait]
impl Bus for InProcBus {
    async fn cast(&self, queue: &str, msg: Envelope) -> Result<(), BusError> {
        let (tx, _) = self.queue(queue);
        tx.send(Queued {
            envelope: msg,
            reply: None,
            redelivered: false,
        })
        .map_err(|_| BusError::Closed)?;
        crate::stats::note_published();
        Ok(())
    }

    async fn call(
        &self,
        queue: &str,
        msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let (tx, _) = self.queue(queue);
        let (reply_tx, reply_rx) = oneshot::channel();
        tx.send(Queued {
            envelope: msg,
            reply: Some(reply_tx),
            redelivered: false,
        })
        .map_err(|_| BusError::Closed)?;
        crate::stats::note_published();
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout {
                queue: queue.to_owned(),
                timeout,
            }),
        }
    }

    async fn broadcast(&self, topic: &str, msg: Envelope) -> Result<(), BusError> {
        let subs = {
            let mut topics = self.topics.lock().expect("bus lock");
            let subs = topics.entry(topic.to_owned()).or_default();
            subs.retain(|s| !s.is_closed());
            subs.clone()
        };
        crate::stats::note_published();
        for s in subs {
            let d = Delivery::new(msg.clone(), false, Box::new(InProcAcker::new(None, None)));
            let _ = s.send(d).await;
        }
        Ok(())
    }

    async fn consume(&self, queue: &str) -> Result<Consumer, BusError> {
        let (tx, rx) = self.queue(queue);
        let (out_tx, out_rx) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                // Take the next message only when our consumer has room,
                // so competing consumers share the queue; stop waiting as
                // soon as the consumer is dropped so that no message is
                // taken for it afterwards.
                let Ok(permit) = out_tx.reserve().await else {
                    return;
                };
                let item = tokio::select! {
                    item = async { rx.lock().await.recv().await } => item,
                    _ = out_tx.closed() => return,
                };
                let Some(q) = item else { return };
                let acker = InProcAcker::new(Some((tx.clone(), q.envelope.clone())), q.reply);
                permit.send(Delivery::new(q.envelope, q.redelivered, Box::new(acker)));
            }
        });
        Ok(Consumer::new(out_rx))
    }

    async fn subscribe(&self, topic: &str) -> Result<Consumer, BusError> {
        let (tx, rx) = mpsc::channel(1024);
        self.topics
            .lock()
            .expect("bus lock")
            .entry(topic.to_owned())
            .or_default()
            .push(tx);
        Ok(Consumer::new(rx))
    }
}
