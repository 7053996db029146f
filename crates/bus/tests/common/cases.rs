//! The bus contract's cases, shared by the contract suite (every case on
//! the in-process bus and on a single RabbitMQ, `contract.rs`) and the
//! cluster suite (every case on a three-node RabbitMQ cluster,
//! `cluster.rs`). Each case takes a [`Fixture`] naming its backend.

use super::{Fixture, assert_quiet, msg, next_within, num, serve};
use cloud_bus::BusError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls macro `$m` with the name of every case, so that a suite cannot
/// forget one.
#[allow(unused_macros)] // amqp.rs runs no contract case
macro_rules! with_contract_cases {
    ($m:ident) => {
        $m!(
            cast_goes_to_exactly_one_of_two_consumers,
            cast_before_any_consumer_waits_for_one,
            call_gets_its_reply,
            call_nobody_answers_times_out,
            concurrent_calls_get_their_own_replies,
            broadcast_reaches_every_subscriber,
            nack_with_requeue_redelivers,
            unacked_delivery_goes_to_another_consumer_when_its_consumer_dies,
            delivery_dropped_by_a_panicking_handler_is_redelivered,
        );
    };
}

/// 100 casts to a queue with two consumers (two replicas): each message is
/// handled exactly once overall, and both replicas do some of the work.
pub async fn cast_goes_to_exactly_one_of_two_consumers(f: &Fixture) {
    let q = f.queue("work");
    let got: Arc<Mutex<HashMap<&'static str, Vec<u32>>>> = Arc::default();
    let mut tasks = Vec::new();
    let mut buses = Vec::new();
    for name in ["a", "b"] {
        let bus = f.bus().await;
        let mut c = bus.consume(&q).await.unwrap();
        buses.push(bus);
        let got = got.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(d) = c.next().await {
                got.lock()
                    .unwrap()
                    .entry(name)
                    .or_default()
                    .push(num(&d.envelope));
                // A little work, so that one consumer cannot drain the
                // queue before the other is given anything.
                tokio::time::sleep(Duration::from_millis(2)).await;
                d.ack().await.unwrap();
            }
        }));
    }
    let producer = f.bus().await;
    for n in 0..100 {
        producer.cast(&q, msg(n)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let total: usize = got.lock().unwrap().values().map(Vec::len).sum();
        if total >= 100 {
            break;
        }
        assert!(Instant::now() < deadline, "only {total} of 100 delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything delivered twice would show up now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    let mut all: Vec<u32> = got.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..100).collect::<Vec<_>>(),
        "each message exactly once"
    );
    for name in ["a", "b"] {
        let n = got.get(name).map(Vec::len).unwrap_or(0);
        assert!(n > 0, "consumer {name} got nothing: {got:?}");
    }
    for t in tasks {
        t.abort();
    }
}

/// A message cast while nobody consumes (the conductor restarting) waits
/// in the queue for the next consumer.
pub async fn cast_before_any_consumer_waits_for_one(f: &Fixture) {
    let q = f.queue("later");
    let producer = f.bus().await;
    producer.cast(&q, msg(7)).await.unwrap();
    producer.cast(&q, msg(8)).await.unwrap();
    let consumer_bus = f.bus().await;
    let mut c = consumer_bus.consume(&q).await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 7);
    assert_eq!(d.envelope.kind, "test");
    assert_eq!(d.envelope.request_id, "req-7");
    assert!(!d.expects_reply(), "a cast expects no reply");
    assert!(!d.redelivered);
    d.ack().await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 8);
    d.ack().await.unwrap();
    assert_quiet(&mut c, 200).await;
}

/// A call is answered by whoever consumes the queue; the reply carries the
/// answer to that request.
pub async fn call_gets_its_reply(f: &Fixture) {
    let q = f.queue("rpc");
    let server = f.bus().await;
    let mut c = server.consume(&q).await.unwrap();
    let client = f.bus().await;
    let call = tokio::spawn({
        let client = client.clone();
        let q = q.clone();
        async move { client.call(&q, msg(42), Duration::from_secs(10)).await }
    });
    let d = next_within(&mut c, 10).await;
    assert!(d.expects_reply(), "a call expects a reply");
    assert_eq!(num(&d.envelope), 42);
    let mut reply = msg(43);
    reply.kind = "answer".into();
    reply.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    d.reply(reply.clone()).await.unwrap();
    let got = call.await.unwrap().expect("reply");
    assert_eq!(got, reply, "the reply arrives unchanged");
    // The call was acknowledged by reply(): nothing comes back.
    assert_quiet(&mut c, 300).await;
}

/// A call to a queue nobody consumes fails with a timeout, after the
/// timeout and not much later.
pub async fn call_nobody_answers_times_out(f: &Fixture) {
    let q = f.queue("nobody");
    let bus = f.bus().await;
    let started = Instant::now();
    let err = bus
        .call(&q, msg(1), Duration::from_millis(500))
        .await
        .expect_err("nobody answers");
    let took = started.elapsed();
    match err {
        BusError::Timeout { queue, timeout } => {
            assert_eq!(queue, q);
            assert_eq!(timeout, Duration::from_millis(500));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(500),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
}

/// Twenty calls in flight at once, answered out of order by two servers,
/// each get their own reply.
pub async fn concurrent_calls_get_their_own_replies(f: &Fixture) {
    let q = f.queue("rpc");
    let s1 = f.bus().await;
    let s2 = f.bus().await;
    // Later requests are answered sooner, so replies overtake each other.
    let delay = |n: u32| u64::from(20 - n.min(20)) * 10;
    let servers = [
        serve(s1.consume(&q).await.unwrap(), delay),
        serve(s2.consume(&q).await.unwrap(), delay),
    ];
    let client = f.bus().await;
    let calls = (0..20).map(|n| {
        let client = client.clone();
        let q = q.clone();
        async move { (n, client.call(&q, msg(n), Duration::from_secs(15)).await) }
    });
    for (n, reply) in futures::future::join_all(calls).await {
        let reply = reply.unwrap_or_else(|e| panic!("call {n}: {e}"));
        assert_eq!(num(&reply), n, "call {n} got another call's reply");
        assert_eq!(reply.body["answer"], true);
        assert_eq!(reply.request_id, format!("req-{n}"));
    }
    for s in servers {
        s.abort();
    }
}

/// A broadcast reaches every current subscriber, once.
pub async fn broadcast_reaches_every_subscriber(f: &Fixture) {
    let topic = f.topic("hosts");
    let mut buses = Vec::new();
    let mut subs = Vec::new();
    for _ in 0..3 {
        let bus = f.bus().await;
        subs.push(bus.subscribe(&topic).await.unwrap());
        buses.push(bus);
    }
    let sender = f.bus().await;
    sender.broadcast(&topic, msg(5)).await.unwrap();
    for c in &mut subs {
        let d = next_within(c, 10).await;
        assert_eq!(num(&d.envelope), 5);
        d.ack().await.unwrap();
    }
    for c in &mut subs {
        assert_quiet(c, 200).await;
    }
    // A broadcast nobody listens to is not an error.
    sender.broadcast(&f.topic("empty"), msg(6)).await.unwrap();
}

/// A nacked message with requeue comes back, marked redelivered; without
/// requeue it is gone.
pub async fn nack_with_requeue_redelivers(f: &Fixture) {
    let q = f.queue("retry");
    let bus = f.bus().await;
    let mut c = bus.consume(&q).await.unwrap();
    bus.cast(&q, msg(1)).await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 1);
    assert!(!d.redelivered);
    d.nack(true).await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 1);
    assert!(d.redelivered, "a requeued message is marked redelivered");
    d.nack(false).await.unwrap();
    bus.cast(&q, msg(2)).await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(
        num(&d.envelope),
        2,
        "a message nacked without requeue is dropped"
    );
    d.ack().await.unwrap();
    assert_quiet(&mut c, 300).await;
}

/// A consumer that dies mid-handling (its delivery and consumer dropped,
/// its process gone) does not lose the message: another consumer gets it.
pub async fn unacked_delivery_goes_to_another_consumer_when_its_consumer_dies(f: &Fixture) {
    let q = f.queue("crash");
    let doomed = f.bus().await;
    let mut c1 = doomed.consume(&q).await.unwrap();
    let producer = f.bus().await;
    producer.cast(&q, msg(9)).await.unwrap();
    let d = next_within(&mut c1, 10).await;
    assert_eq!(num(&d.envelope), 9);

    let survivor = f.bus().await;
    let mut c2 = survivor.consume(&q).await.unwrap();
    assert_quiet(&mut c2, 200).await;
    drop(d);
    drop(c1);
    drop(doomed);
    let d = next_within(&mut c2, 10).await;
    assert_eq!(num(&d.envelope), 9);
    assert!(d.redelivered);
    d.ack().await.unwrap();
    assert_quiet(&mut c2, 300).await;
}

/// A handler that panics drops its delivery unsettled: the message goes
/// back to the queue at once instead of being lost or stuck.
pub async fn delivery_dropped_by_a_panicking_handler_is_redelivered(f: &Fixture) {
    let q = f.queue("panic");
    let bus = f.bus().await;
    let mut c = bus.consume(&q).await.unwrap();
    bus.cast(&q, msg(11)).await.unwrap();
    let d = next_within(&mut c, 10).await;
    let handler = tokio::spawn(async move {
        let _held = d;
        panic!("handler bug (expected by the test)");
    });
    assert!(handler.await.is_err());
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 11);
    assert!(d.redelivered);
    d.ack().await.unwrap();
    assert_quiet(&mut c, 300).await;
}
