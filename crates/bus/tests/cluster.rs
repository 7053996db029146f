//! The bus on a three-node RabbitMQ cluster with quorum queues, started by
//! the test on this machine (own node names, ports and directories; the
//! system broker is not touched): the whole contract holds there, and
//! losing a node in the middle of 200 casts and 200 calls loses nothing.
//! Skipped without the RabbitMQ binaries, except under `CI=true`.

#[macro_use]
mod common;

use cloud_bus::{AmqpBus, AmqpConfig, Bus, QueueType};
use common::rabbit::{Binaries, Nodes};
use common::{Backend, Fixture, msg, num, serve};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 3;
/// Node killed mid-run; every participant but two starts on it.
const VICTIM: usize = 0;

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("cloud_bus=info")
        .with_test_writer()
        .try_init();
}

/// Starts the cluster, or `None` to skip (no binaries, not under CI).
async fn start_cluster() -> Option<Nodes> {
    let bins = Binaries::find()?;
    let started = Instant::now();
    let nodes = tokio::task::spawn_blocking(move || {
        let nodes = Nodes::start(&bins, NODES, |port, _| {
            format!("listeners.tcp.default = 127.0.0.1:{port}\n")
        });
        nodes.cluster();
        nodes
    })
    .await
    .expect("cluster start-up");
    eprintln!("cluster of {NODES} nodes up in {:?}", started.elapsed());
    Some(nodes)
}

/// `config` with every node's URL, node `first` first.
fn on_cluster(mut config: AmqpConfig, nodes: &Nodes, first: usize) -> AmqpConfig {
    config.urls = (0..NODES)
        .map(|k| nodes.nodes[(first + k) % NODES].url())
        .collect();
    config.queue_type = QueueType::Quorum;
    config
}

/// A test namespace on the cluster, with quorum queues.
fn fixture(nodes: &Nodes) -> Fixture {
    let mut f = Fixture::with_url(Backend::Amqp, &nodes.nodes[0].url());
    f.config = on_cluster(f.config.clone(), nodes, 0);
    f
}

macro_rules! run_contract {
    ($($case:ident),* $(,)?) => {
        /// Runs every contract case on the cluster, one namespace each.
        async fn run_contract(nodes: &Nodes) {
            $(
                let started = Instant::now();
                let f = fixture(nodes);
                common::cases::$case(&f).await;
                f.teardown().await;
                eprintln!("contract on the cluster: {} in {:?}", stringify!($case), started.elapsed());
            )*
        }
    };
}
with_contract_cases!(run_contract);

/// One cluster for both checks (starting one takes a while): the contract
/// suite on quorum queues, then the loss of a node under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_quorum_cluster_keeps_the_contract_and_loses_nothing_when_a_node_dies() {
    init_logs();
    let Some(mut nodes) = start_cluster().await else {
        return;
    };
    run_contract(&nodes).await;
    nothing_is_lost_when_a_node_dies(&mut nodes).await;
}

/// 200 casts and 200 calls run while node 1 is killed (SIGKILL) half-way.
/// Node 1 holds the producer's connection, one of the two workers and one
/// of the two call servers, and the leader of every queue (they declared
/// them first): all of them fail over. Every cast returns Ok and is
/// consumed (at least once: a delivery whose ack died with the node comes
/// again, and handlers are idempotent), every call gets its own answer.
async fn nothing_is_lost_when_a_node_dies(nodes: &mut Nodes) {
    const N: u32 = 200;
    let f = fixture(nodes);
    let work = f.queue("work");
    let rpc = f.queue("rpc");
    let connect = |first: usize| {
        let config = on_cluster(f.config.clone(), nodes, first);
        async move {
            AmqpBus::connect(config)
                .await
                .expect("connect to the cluster")
        }
    };
    let other = (VICTIM + 2) % NODES;
    let producer = connect(VICTIM).await;
    let (worker_a, worker_b) = (connect(VICTIM).await, connect(other).await);
    let (server_a, server_b) = (connect(VICTIM).await, connect(other).await);

    let deliveries: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for bus in [&worker_a, &worker_b] {
        let mut c = bus.consume(&work).await.unwrap();
        let deliveries = deliveries.clone();
        workers.push(tokio::spawn(async move {
            while let Some(d) = c.next().await {
                *deliveries
                    .lock()
                    .unwrap()
                    .entry(num(&d.envelope))
                    .or_default() += 1;
                let _ = d.ack().await;
            }
        }));
    }
    let servers = [
        serve(server_a.consume(&rpc).await.unwrap(), |_| 5),
        serve(server_b.consume(&rpc).await.unwrap(), |_| 5),
    ];
    assert_leaders_on(nodes, VICTIM, &f.config.prefix);

    let casts_done = Arc::new(AtomicUsize::new(0));
    let calls_done = Arc::new(AtomicUsize::new(0));
    let casts = tokio::spawn({
        let (producer, work, done) = (producer.clone(), work.clone(), casts_done.clone());
        async move {
            let mut failed = Vec::new();
            for n in 0..N {
                if let Err(e) = producer.cast(&work, msg(n)).await {
                    failed.push(format!("cast {n}: {e}"));
                }
                done.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            failed
        }
    });
    let calls = tokio::spawn({
        let (producer, rpc, done) = (producer.clone(), rpc.clone(), calls_done.clone());
        async move {
            futures::stream::iter(0..N)
                .map(|n| {
                    let (producer, rpc, done) = (producer.clone(), rpc.clone(), done.clone());
                    async move {
                        tokio::time::sleep(Duration::from_millis(60)).await;
                        let r = producer.call(&rpc, msg(n), Duration::from_secs(60)).await;
                        done.fetch_add(1, Ordering::SeqCst);
                        match r {
                            Ok(reply) if num(&reply) == n => None,
                            Ok(reply) => Some(format!("call {n} got reply {}", num(&reply))),
                            Err(e) => Some(format!("call {n}: {e}")),
                        }
                    }
                })
                .buffer_unordered(4)
                .filter_map(|r| async move { r })
                .collect::<Vec<_>>()
                .await
        }
    });

    let half = N as usize / 2;
    let deadline = Instant::now() + Duration::from_secs(60);
    while casts_done.load(Ordering::SeqCst) < half || calls_done.load(Ordering::SeqCst) < half {
        assert!(Instant::now() < deadline, "the load did not get half-way");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_kill = (
        casts_done.load(Ordering::SeqCst),
        calls_done.load(Ordering::SeqCst),
    );
    let killed_at = Instant::now();
    nodes.kill(VICTIM);
    eprintln!(
        "killed {} after {at_kill:?} casts/calls",
        nodes.nodes[VICTIM].name
    );
    assert!(
        at_kill.0 < N as usize && at_kill.1 < N as usize,
        "the node died mid-run: {at_kill:?}"
    );

    let failed_casts = tokio::time::timeout(Duration::from_secs(120), casts)
        .await
        .expect("casts finish")
        .unwrap();
    let Ok(failed_calls) = tokio::time::timeout(Duration::from_secs(120), calls).await else {
        let queues = nodes.ctl(
            (VICTIM + 1) % NODES,
            &[
                "list_queues",
                "name",
                "type",
                "leader",
                "members",
                "messages",
                "consumers",
            ],
        );
        panic!("calls did not finish; queues: {queues:?}");
    };
    let failed_calls = failed_calls.unwrap();
    assert!(failed_casts.is_empty(), "casts failed: {failed_casts:?}");
    assert!(failed_calls.is_empty(), "calls failed: {failed_calls:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = deliveries.lock().unwrap().len();
        if got == N as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {N} casts consumed; missing: {:?}",
            (0..N)
                .filter(|n| !deliveries.lock().unwrap().contains_key(n))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliveries = deliveries.lock().unwrap().clone();
    let duplicates: usize = deliveries.values().map(|c| c - 1).sum();
    eprintln!(
        "all {N} casts consumed ({duplicates} redelivered) and {N} calls answered, \
         {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(deliveries.keys().all(|n| *n < N));

    for t in workers {
        t.abort();
    }
    for s in servers {
        s.abort();
    }
    let closing = Instant::now();
    for bus in [producer, worker_a, worker_b, server_a, server_b] {
        bus.close().await;
    }
    eprintln!("closed the buses in {:?}", closing.elapsed());
    let tearing_down = Instant::now();
    f.teardown().await;
    eprintln!("tore down in {:?}", tearing_down.elapsed());
}

/// Asserts that node `i` leads the work and call queues and the reply
/// queues of the buses connected to it, so that killing it makes each of
/// them elect a new leader.
fn assert_leaders_on(nodes: &Nodes, i: usize, prefix: &str) {
    let victim = &nodes.nodes[i].name;
    let listing = nodes
        .ctl((i + 1) % NODES, &["list_queues", "-q", "name", "leader"])
        .expect("list_queues");
    let led: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with(prefix) && l.ends_with(victim.as_str()))
        .collect();
    for queue in [".work", ".rpc"] {
        assert!(
            led.iter().any(|l| l
                .split_whitespace()
                .next()
                .is_some_and(|n| n.ends_with(queue))),
            "{queue} not led by {victim}: {listing}"
        );
    }
    let replies = led.iter().filter(|l| l.contains(".reply.")).count();
    assert!(replies >= 3, "3 reply queues led by {victim}: {listing}");
}
