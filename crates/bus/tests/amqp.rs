//! What only the AMQP bus has: a broker that can be unreachable, close our
//! connections, or look at our messages. These tests FAIL when RabbitMQ is
//! not running.

mod common;

use cloud_bus::{AmqpBus, AmqpConfig, Bus, BusError, QueueType};
use common::{Backend, Fixture, amqp_url, assert_quiet, msg, next_within, num, serve};
use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("cloud_bus=debug")
        .with_test_writer()
        .try_init();
}

#[tokio::test]
async fn connect_fails_when_the_broker_is_unreachable() {
    let started = Instant::now();
    let config = AmqpConfig::new("amqp://guest:guest@127.0.0.1:1/%2f", "unreachable");
    match AmqpBus::connect(config).await {
        Err(BusError::Unavailable(m)) => {
            assert!(m.contains("127.0.0.1:1"), "message names the broker: {m}");
            assert!(
                !m.contains("guest:guest"),
                "message hides the password: {m}"
            );
        }
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connected to nothing"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_broker_cannot_take_are_refused() {
    let f = Fixture::new(Backend::Amqp);
    let bus = f.amqp().await;
    let long = "x".repeat(300);
    assert!(matches!(
        bus.cast(&long, msg(1)).await,
        Err(BusError::Codec(_))
    ));
    assert!(matches!(bus.consume(&long).await, Err(BusError::Codec(_))));
    assert!(matches!(bus.subscribe("").await, Err(BusError::Codec(_))));
    assert!(matches!(
        bus.call(&long, msg(1), Duration::from_secs(1)).await,
        Err(BusError::Codec(_))
    ));
    // The bus still works afterwards.
    let q = f.queue("fine");
    let mut c = bus.consume(&q).await.unwrap();
    bus.cast(&q, msg(3)).await.unwrap();
    next_within(&mut c, 10).await.ack().await.unwrap();
    drop(c);
    bus.close().await;
    f.teardown().await;
}

/// A cast is a persistent message on `<prefix>.<queue>` whose properties
/// repeat the envelope's metadata, for broker tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_are_persistent_and_described_by_their_properties() {
    let f = Fixture::new(Backend::Amqp);
    let bus = f.amqp().await;
    let q = f.queue("inspect");
    let mut env = msg(1);
    env.kind = "build_instance".into();
    env.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    bus.cast(&q, env.clone()).await.unwrap();

    let conn = lapin::Connection::connect(&f.config.urls[0], Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let got = ch
        .basic_get(
            format!("{}.{q}", f.config.prefix).into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the message is in the prefixed queue");
    let p = &got.delivery.properties;
    assert_eq!(p.delivery_mode(), &Some(2), "persistent");
    assert_eq!(p.kind().as_ref().unwrap().as_str(), "build_instance");
    assert_eq!(
        p.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert!(p.message_id().is_some());
    assert!(p.timestamp().is_some());
    let headers = p.headers().clone().unwrap();
    let header = |k: &str| match headers.inner().get(k) {
        Some(lapin::types::AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("header {k}: {other:?}"),
    };
    assert_eq!(header("traceparent"), env.traceparent.clone().unwrap());
    assert_eq!(header("request_id"), "req-1");
    assert_eq!(
        cloud_bus::Envelope::from_bytes(&got.delivery.data).unwrap(),
        env,
        "the body is the envelope"
    );
    conn.close(200, "done".into()).await.unwrap();
    bus.close().await;
    f.teardown().await;
}

/// A consumer that went away while holding a delivery: the broker gives
/// the message to another consumer, and the late ack is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_ack_from_a_dead_consumer_is_ignored() {
    let f = Fixture::new(Backend::Amqp);
    let q = f.queue("late");
    let doomed = f.amqp().await;
    let mut c1 = doomed.consume(&q).await.unwrap();
    doomed.cast(&q, msg(4)).await.unwrap();
    let held = next_within(&mut c1, 10).await;
    let survivor = f.amqp().await;
    let mut c2 = survivor.consume(&q).await.unwrap();
    drop(c1);
    let d = next_within(&mut c2, 10).await;
    assert_eq!(num(&d.envelope), 4);
    assert!(d.redelivered);
    held.ack()
        .await
        .expect("an ack on a dead channel is not an error");
    d.ack().await.unwrap();
    assert_quiet(&mut c2, 300).await;
    drop(c2);
    doomed.close().await;
    survivor.close().await;
    f.teardown().await;
}

/// Closing the bus ends its consumers and fails its operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_consumers_and_operations() {
    let f = Fixture::new(Backend::Amqp);
    let q = f.queue("closing");
    let bus = f.amqp().await;
    let mut c = bus.consume(&q).await.unwrap();
    let waiting = tokio::spawn({
        let bus = bus.clone();
        let q = f.queue("nobody");
        async move { bus.call(&q, msg(1), Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    bus.close().await;
    let end = tokio::time::timeout(Duration::from_secs(5), c.next()).await;
    assert!(matches!(end, Ok(None)), "the consumer ends");
    let call = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert!(
        matches!(call, Ok(Ok(Err(BusError::Closed)))),
        "the waiting call fails: {call:?}"
    );
    assert!(matches!(bus.cast(&q, msg(2)).await, Err(BusError::Closed)));
    f.teardown().await;
}

/// A vhost of its own, so that closing "all" connections disturbs no other
/// test; deleted (with everything in it) when dropped.
struct Vhost {
    name: String,
}

impl Vhost {
    fn create() -> Vhost {
        let name = format!("cloud-bus-test-{}", uuid::Uuid::new_v4());
        rabbitmqctl(&["add_vhost", &name]);
        let v = Vhost { name };
        rabbitmqctl(&["set_permissions", "-p", &v.name, "guest", ".*", ".*", ".*"]);
        v
    }

    /// The test broker's URL with this vhost.
    fn url(&self) -> String {
        let base = amqp_url();
        let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(&base);
        format!("{server}/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = run_rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

/// Runs rabbitmqctl (as is, or through `sudo -n` when not root), returning
/// its output or a description of the failure.
fn run_rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let mut errors = Vec::new();
    for (prog, pre) in [("rabbitmqctl", vec![]), ("sudo", vec!["-n", "rabbitmqctl"])] {
        let mut cmd = Command::new(prog);
        cmd.args(&pre).args(args);
        if std::env::var_os("HOME").is_none() {
            // rabbitmqctl finds the Erlang cookie through HOME.
            cmd.env("HOME", "/root");
        }
        match cmd.output() {
            Ok(o) if o.status.success() => return Ok(String::from_utf8_lossy(&o.stdout).into()),
            Ok(o) => errors.push(format!(
                "{prog} {args:?}: {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => errors.push(format!("{prog}: {e}")),
        }
    }
    Err(errors.join("; "))
}

fn rabbitmqctl(args: &[&str]) -> String {
    run_rabbitmqctl(args).unwrap_or_else(|e| panic!("rabbitmqctl failed: {e}"))
}

/// With `queue_type = quorum`, work queues and the reply queue are quorum
/// queues on the broker (replicated over a cluster's nodes), durable as
/// the broker requires, and casts and calls work through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queue_type_declares_quorum_work_and_reply_queues() {
    let mut f = Fixture::new(Backend::Amqp);
    f.config.queue_type = QueueType::Quorum;
    let bus = f.amqp().await;
    let work = f.queue("work");
    let rpc = f.queue("rpc");
    let mut c = bus.consume(&work).await.unwrap();
    bus.cast(&work, msg(1)).await.unwrap();
    next_within(&mut c, 10).await.ack().await.unwrap();
    let server = serve(bus.consume(&rpc).await.unwrap(), |_| 0);
    let reply = bus.call(&rpc, msg(2), Duration::from_secs(10)).await;
    assert_eq!(num(&reply.expect("reply through a quorum reply queue")), 2);

    let listing = rabbitmqctl(&["list_queues", "-q", "name", "type", "durable"]);
    let ours: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| {
            cols.first()
                .is_some_and(|n| n.starts_with(&f.config.prefix))
        })
        .collect();
    for suffix in [".work", ".rpc", ".reply."] {
        let row = ours
            .iter()
            .find(|cols| cols[0].contains(suffix))
            .unwrap_or_else(|| panic!("no queue *{suffix}* in {ours:?}"));
        assert_eq!(row[1..], ["quorum", "true"], "queue {}", row[0]);
    }
    server.abort();
    drop(c);
    bus.close().await;
    f.teardown().await;
}

/// Publisher confirms: a cast the broker refuses (nack: its queue is full
/// under a `reject-publish` policy) is not reported as sent. It is retried
/// while the publish timeout lasts, then reported as an error; a cast that
/// is still retrying when room appears gets through and is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_the_broker_refuses_is_retried_then_reported_never_dropped() {
    let vhost = Vhost::create();
    rabbitmqctl(&[
        "set_policy",
        "-p",
        &vhost.name,
        "--apply-to",
        "queues",
        "one-at-a-time",
        r"\.full$",
        r#"{"max-length":1,"overflow":"reject-publish"}"#,
    ]);
    let mut f = Fixture::with_url(Backend::Amqp, &vhost.url());
    let q = f.queue("full");
    f.config.publish_timeout = Duration::from_secs(2);
    let impatient = f.amqp().await;
    impatient.cast(&q, msg(1)).await.expect("room for one");
    let started = Instant::now();
    match impatient.cast(&q, msg(2)).await {
        Err(BusError::Unavailable(m)) => assert!(m.contains("refused"), "{m}"),
        other => panic!("a refused cast must fail, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(2), "retried first");

    f.config.publish_timeout = Duration::from_secs(30);
    let patient = f.amqp().await;
    let pending = tokio::spawn({
        let (patient, q) = (patient.clone(), q.clone());
        async move { patient.cast(&q, msg(3)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!pending.is_finished(), "returned before the broker took it");
    let mut c = patient.consume(&q).await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 1);
    d.ack().await.unwrap();
    tokio::time::timeout(Duration::from_secs(15), pending)
        .await
        .expect("the retried cast gets through once there is room")
        .unwrap()
        .expect("cast 3");
    let d = next_within(&mut c, 10).await;
    assert_eq!(
        num(&d.envelope),
        3,
        "the refused cast 2 was reported, not queued"
    );
    d.ack().await.unwrap();
    assert_quiet(&mut c, 300).await;
    drop(c);
    impatient.close().await;
    patient.close().await;
    f.teardown().await;
}

async fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The broker closes every connection while 200 casts are under way: no
/// message is lost (duplicates are allowed), the consumer keeps receiving
/// on a new connection, and calls work afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_the_broker_closing_all_connections() {
    init_logs();
    let vhost = Vhost::create();
    let f = Fixture::with_url(Backend::Amqp, &vhost.url());
    let q = f.queue("work");
    let rpc = f.queue("rpc");
    let consumer_bus = f.amqp().await;
    let server_bus = f.amqp().await;
    let producer = f.amqp().await;

    let got: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let deliveries = Arc::new(AtomicUsize::new(0));
    let mut c = consumer_bus.consume(&q).await.unwrap();
    let consumer = tokio::spawn({
        let (got, deliveries) = (got.clone(), deliveries.clone());
        async move {
            while let Some(d) = c.next().await {
                deliveries.fetch_add(1, Ordering::SeqCst);
                got.lock().unwrap().insert(num(&d.envelope));
                d.ack().await.unwrap();
            }
        }
    });
    let server = serve(server_bus.consume(&rpc).await.unwrap(), |_| 0);
    let before = producer
        .call(&rpc, msg(1000), Duration::from_secs(10))
        .await;
    assert_eq!(num(&before.expect("call before the disconnect")), 1000);

    // Casts go on until 100 more were sent after the connections were
    // closed, however long closing them takes (rabbitmqctl starts an
    // Erlang VM: seconds on a loaded machine), so some are always in
    // flight across the reconnect.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop_at = Arc::new(AtomicUsize::new(usize::MAX));
    let casting = tokio::spawn({
        let (producer, q, sent, stop_at) =
            (producer.clone(), q.clone(), sent.clone(), stop_at.clone());
        async move {
            let mut n = 0;
            while n < stop_at.load(Ordering::SeqCst) {
                producer.cast(&q, msg(n as u32)).await?;
                n += 1;
                sent.store(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok::<usize, BusError>(n)
        }
    });
    wait_until("50 messages", 20, || got.lock().unwrap().len() >= 50).await;

    let listed = rabbitmqctl(&["list_connections", "-q", "-p", &vhost.name, "name"]);
    assert!(listed.lines().count() >= 3, "our connections: {listed}");
    let name = vhost.name.clone();
    tokio::task::spawn_blocking(move || {
        rabbitmqctl(&["close_all_connections", "-p", &name, "test"]);
    })
    .await
    .unwrap();
    stop_at.store(sent.load(Ordering::SeqCst) + 100, Ordering::SeqCst);

    let total = tokio::time::timeout(Duration::from_secs(60), casting)
        .await
        .expect("casting finishes")
        .unwrap()
        .expect("every cast succeeds across the reconnect");
    wait_until("every message", 60, || got.lock().unwrap().len() == total).await;
    assert!(deliveries.load(Ordering::SeqCst) >= total);

    let after = producer
        .call(&rpc, msg(1001), Duration::from_secs(15))
        .await;
    assert_eq!(num(&after.expect("call after the disconnect")), 1001);

    consumer.abort();
    server.abort();
    for bus in [&consumer_bus, &server_bus, &producer] {
        bus.close().await;
    }
    f.teardown().await;
    drop(vhost);
}

/// A call answered while the caller is cut off from the broker: the reply
/// waits in the caller's reply queue and the call still succeeds once the
/// caller is back. The caller has its own broker user, whose permissions
/// are withdrawn while the reply is sent, so the reply is certainly sent
/// during the caller's reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_while_the_caller_reconnects_is_not_lost() {
    init_logs();
    let vhost = Vhost::create();
    let user = format!("caller-{}", uuid::Uuid::new_v4().simple());
    rabbitmqctl(&["add_user", &user, "secret"]);
    let grant = || {
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            &user,
            ".*",
            ".*",
            ".*",
        ])
    };
    grant();
    let f = Fixture::with_url(Backend::Amqp, &vhost.url());
    let rpc = f.queue("slow-rpc");
    let server_bus = f.amqp().await;
    // The server answers 6 s after it receives the call (rabbitmqctl is
    // slow: cutting the caller off takes a few seconds).
    let server = serve(server_bus.consume(&rpc).await.unwrap(), |_| 6000);
    let mut config = f.config.clone();
    config.urls = vec![
        vhost
            .url()
            .replace("guest:guest", &format!("{user}:secret")),
    ];
    config.connection_name = "cloud-bus-test-caller".to_owned();
    let caller = AmqpBus::connect(config).await.unwrap();

    let started = Instant::now();
    let call = tokio::spawn({
        let (caller, rpc) = (caller.clone(), rpc.clone());
        async move { caller.call(&rpc, msg(7), Duration::from_secs(30)).await }
    });
    // Once the call is with the server: cut the caller off, and keep it
    // off until the reply has been sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    rabbitmqctl(&["clear_permissions", "-p", &vhost.name, &user]);
    let listed = rabbitmqctl(&["list_connections", "-q", "-p", &vhost.name, "pid", "user"]);
    for line in listed.lines().filter(|l| l.ends_with(&user)) {
        let pid = line.split_whitespace().next().unwrap();
        rabbitmqctl(&["close_connection", pid, "test: caller cut off"]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cutting the caller off took too long for this test's timing"
    );
    tokio::time::sleep_until((started + Duration::from_secs(8)).into()).await;
    assert!(!call.is_finished(), "the reply cannot have arrived yet");
    grant();

    let reply = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call ends")
        .unwrap()
        .expect("the call gets the reply sent while the caller was away");
    assert_eq!(num(&reply), 7);

    caller.close().await;
    server.abort();
    server_bus.close().await;
    f.teardown().await;
    let _ = run_rabbitmqctl(&["delete_user", &user]);
    drop(vhost);
}
