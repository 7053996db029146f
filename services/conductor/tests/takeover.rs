//! Taking over a dead conductor's work (ADR 0009), on both backends: a
//! workflow whose holder was killed is claimed by another conductor long
//! before the holder's 60 s lease ends, at once after a clean stop, and
//! never while the holder lives.

use cloud_model::InstanceId;
use cloud_store::{Backend, Store, workflow_id};
use cloud_test_utils::TestDb;
use std::time::{Duration, Instant};

const LEASE: i64 = 60;

async fn held_by_a(store: &Store, step: &str) -> String {
    let id = InstanceId::new();
    store.workflow_create(id, "build", step).await.unwrap();
    let wf = workflow_id(id, "build");
    assert!(
        store
            .workflow_claim(&wf, "a", LEASE)
            .await
            .unwrap()
            .is_some()
    );
    wf
}

/// Claims `wf` for "b" as soon as it can, giving up after `limit`.
async fn b_claims_within(store: &Store, wf: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if store
            .workflow_claim(wf, "b", LEASE)
            .await
            .unwrap()
            .is_some()
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn killed_holder(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    // On SQLite only the heartbeat tells: a short liveness timeout.
    let mut a = store.conductor_presence("a", "host-a", 1);
    a.beat().await.unwrap();
    let wf = held_by_a(store, "schedule").await;
    let waiting = held_by_a(store, "waiting").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store
            .workflow_claim(&wf, "b", LEASE)
            .await
            .unwrap()
            .is_none(),
        "a lives and holds the lease"
    );
    assert!(!store.conductor_is_dead("a").await.unwrap());
    assert!(
        store.workflows_orphaned(0, 100).await.unwrap().is_empty(),
        "a live conductor's work is not orphaned"
    );

    // Killed: its heartbeats and its session end with it.
    drop(a);
    let took = b_claims_within(store, &wf, Duration::from_secs(5))
        .await
        .expect("the dead conductor's workflow was not taken over before its lease");
    if backend == Backend::Postgres {
        assert!(
            took < Duration::from_millis(1500),
            "the session's end should tell at once, took {took:?}"
        );
    }
    assert!(store.conductor_is_dead("a").await.unwrap());
    // The reconciler sees what it waited for, even at the `waiting` step
    // (the host may never have been told).
    let orphans = store.workflows_orphaned(30, 100).await.unwrap();
    assert_eq!(
        orphans.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        [waiting.as_str()]
    );
}

async fn stopped_holder(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let mut a = store.conductor_presence("a", "host-a", 60);
    a.beat().await.unwrap();
    let wf = held_by_a(store, "networking").await;
    assert!(
        store
            .workflow_claim(&wf, "b", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    a.stopped().await.unwrap();
    assert!(
        store
            .workflow_claim(&wf, "b", LEASE)
            .await
            .unwrap()
            .is_some(),
        "a conductor that stopped is taken over at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_conductors_work_is_taken_over_before_its_lease_sqlite() {
    killed_holder(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_conductors_work_is_taken_over_at_once_postgres() {
    killed_holder(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_conductors_work_is_taken_over_at_once_sqlite() {
    stopped_holder(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_conductors_work_is_taken_over_at_once_postgres() {
    stopped_holder(Backend::Postgres).await;
}
