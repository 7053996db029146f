//! The in-process bus: tokio channels behind the [`Bus`] trait.
//!
//! Work queues are shared receivers (each message goes to one consumer);
//! a message cast before anyone consumes waits in the queue. Acknowledging
//! is a no-op and nack with requeue puts the message back: within one
//! process there is no broker to crash, so delivery is exactly as reliable
//! as the process itself, which is the contract the all-in-one binary needs.

use crate::{Acker, Bus, BusError, Consumer, Delivery, Envelope};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type QueueTx = mpsc::UnboundedSender<(Envelope, Option<oneshot::Sender<Envelope>>)>;
type QueueRx = mpsc::UnboundedReceiver<(Envelope, Option<oneshot::Sender<Envelope>>)>;

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
    requeue: Option<(QueueTx, Envelope)>,
    reply: Mutex<Option<oneshot::Sender<Envelope>>>,
    expects_reply: bool,
}

#[async_trait]
impl Acker for InProcAcker {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn nack(&self, requeue: bool) -> Result<(), BusError> {
        if requeue && let Some((tx, env)) = &self.requeue {
            let reply = self.reply.lock().expect("reply lock").take();
            tx.send((env.clone(), reply))
                .map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }

    async fn reply(&self, reply: Envelope) -> Result<(), BusError> {
        if let Some(tx) = self.reply.lock().expect("reply lock").take() {
            let _ = tx.send(reply);
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
        tx.send((msg, None)).map_err(|_| BusError::Closed)
    }

    async fn call(
        &self,
        queue: &str,
        msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let (tx, _) = self.queue(queue);
        let (reply_tx, reply_rx) = oneshot::channel();
        tx.send((msg, Some(reply_tx)))
            .map_err(|_| BusError::Closed)?;
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
        for s in subs {
            let d = Delivery::new(
                msg.clone(),
                false,
                Box::new(InProcAcker {
                    requeue: None,
                    reply: Mutex::new(None),
                    expects_reply: false,
                }),
            );
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
                let Some((env, reply)) = item else { return };
                let expects_reply = reply.is_some();
                permit.send(Delivery::new(
                    env.clone(),
                    false,
                    Box::new(InProcAcker {
                        requeue: Some((tx.clone(), env)),
                        reply: Mutex::new(reply),
                        expects_reply,
                    }),
                ));
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
