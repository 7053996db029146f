//! Shared fixture of the bus tests: one namespace per test, on either
//! implementation.
//!
//! AMQP tests run against the RabbitMQ at `CLOUD_AMQP_URL` (default: the
//! local broker with guest/guest) and FAIL when it is unreachable. Each
//! test uses its own prefix `t-<uuid>`, declares work queues with
//! `x-expires` (nothing is left behind even if it panics) and deletes its
//! queues and exchanges at the end.

#![allow(dead_code)]

#[macro_use]
pub mod cases;
pub mod rabbit;

use cloud_bus::{AmqpBus, AmqpConfig, Bus, Consumer, Delivery, Envelope, InProcBus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which implementation a test runs against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    InProc,
    Amqp,
}

/// The broker URL of the AMQP tests.
pub fn amqp_url() -> String {
    std::env::var("CLOUD_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// One test's namespace: buses that see each other's queues.
pub struct Fixture {
    pub backend: Backend,
    inproc: InProcBus,
    pub config: AmqpConfig,
    queues: Mutex<Vec<String>>,
    topics: Mutex<Vec<String>>,
    /// Whether the broker was cleaned up already.
    cleaned: AtomicBool,
}

impl Fixture {
    pub fn new(backend: Backend) -> Fixture {
        Fixture::with_url(backend, &amqp_url())
    }

    pub fn with_url(backend: Backend, url: &str) -> Fixture {
        let mut config = AmqpConfig::new(url, format!("t-{}", uuid::Uuid::new_v4()));
        config.queue_expires = Some(Duration::from_secs(300));
        config.connection_name = "cloud-bus-tests".to_owned();
        Fixture {
            backend,
            inproc: InProcBus::new(),
            config,
            queues: Mutex::default(),
            topics: Mutex::default(),
            cleaned: AtomicBool::new(false),
        }
    }

    /// A new handle on the namespace: another connection for AMQP (like
    /// another service replica), a clone for the in-process bus.
    pub async fn bus(&self) -> Arc<dyn Bus> {
        match self.backend {
            Backend::InProc => Arc::new(self.inproc.clone()),
            Backend::Amqp => Arc::new(self.amqp().await),
        }
    }

    /// A new AMQP bus on the namespace; panics (failing the test) when
    /// RabbitMQ is unreachable.
    pub async fn amqp(&self) -> AmqpBus {
        AmqpBus::connect(self.config.clone())
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ must be running for this test: {e}"))
    }

    /// Names a work queue of this test (deleted at teardown).
    pub fn queue(&self, name: &str) -> String {
        self.queues.lock().unwrap().push(name.to_owned());
        name.to_owned()
    }

    /// Names a broadcast topic of this test (deleted at teardown).
    pub fn topic(&self, name: &str) -> String {
        self.topics.lock().unwrap().push(name.to_owned());
        name.to_owned()
    }

    /// Deletes what the test created on the broker (also done when the
    /// fixture is dropped, e.g. by a failing test).
    pub async fn teardown(self) {
        if let Some(bus) = self.cleanup_bus().await {
            self.cleanup(&bus).await;
        }
    }

    async fn cleanup_bus(&self) -> Option<AmqpBus> {
        if self.backend != Backend::Amqp || self.cleaned.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(self.amqp().await)
    }

    async fn cleanup(&self, bus: &AmqpBus) {
        let queues = self.queues.lock().unwrap().clone();
        let topics = self.topics.lock().unwrap().clone();
        for q in queues {
            bus.delete_queue(&q).await.expect("delete queue");
        }
        for t in topics {
            bus.delete_topic(&t).await.expect("delete topic");
        }
        bus.delete_work_exchange()
            .await
            .expect("delete work exchange");
        bus.close().await;
    }
}

impl Drop for Fixture {
    /// A test that panicked did not reach `teardown`: clean up from a
    /// thread of our own, as this may run inside the test's runtime.
    fn drop(&mut self) {
        if self.backend != Backend::Amqp || self.cleaned.load(Ordering::SeqCst) {
            return;
        }
        std::thread::scope(|s| {
            // Joined here so that a failed cleanup cannot panic again
            // while the test is already unwinding.
            let _ = s
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        if let Some(bus) = self.cleanup_bus().await {
                            self.cleanup(&bus).await;
                        }
                    });
                })
                .join();
        });
    }
}

/// Message number `n`.
pub fn msg(n: u32) -> Envelope {
    Envelope::new("test", &format!("req-{n}"), &serde_json::json!({ "n": n })).unwrap()
}

/// The number carried by a message.
pub fn num(e: &Envelope) -> u32 {
    e.body["n"].as_u64().expect("n") as u32
}

/// The next delivery, failing the test after `secs` seconds.
pub async fn next_within(c: &mut Consumer, secs: u64) -> Delivery {
    tokio::time::timeout(Duration::from_secs(secs), c.next())
        .await
        .unwrap_or_else(|_| panic!("no delivery within {secs}s"))
        .expect("consumer ended")
}

/// Asserts nothing arrives for `ms` milliseconds.
pub async fn assert_quiet(c: &mut Consumer, ms: u64) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(ms), c.next()).await {
        panic!("unexpected delivery of message {}", num(&d.envelope));
    }
}

/// Answers every call on `queue` with `{"n": <request n>, "answer": true}`
/// after `delay_ms(n)` milliseconds, each in its own task so replies can
/// overtake each other.
pub fn serve(mut c: Consumer, delay_ms: fn(u32) -> u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(d) = c.next().await {
            tokio::spawn(async move {
                let n = num(&d.envelope);
                tokio::time::sleep(Duration::from_millis(delay_ms(n))).await;
                let reply = Envelope::new(
                    "test_reply",
                    &d.envelope.request_id,
                    &serde_json::json!({ "n": n, "answer": true }),
                )
                .unwrap();
                d.reply(reply).await.expect("reply");
            });
        }
    })
}
