//! Noticing when servers settle without polling the API per server.
//!
//! Polling `GET /servers/{id}` every few milliseconds for every server in
//! flight would load the API (and the database behind it) with more
//! reads than the boots themselves cause, and skew what is measured. One
//! watcher instead asks the store every `interval` for the servers
//! changed since the oldest request still waiting (one indexed-by-time
//! query per tick, whatever the concurrency) and wakes their waiters.
//! The latency figures do not depend on the tick: they come from the
//! server's own `launched_at` (written in the same statement that makes
//! it ACTIVE) against the client's clock just before the POST, both on
//! this machine's clock.

use cloud_model::instance::{Instance, VmState};
use cloud_model::{InstanceId, Timestamp};
use cloud_store::{InstanceFilter, Scope, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

static QUERIES: AtomicU64 = AtomicU64::new(0);

/// Statements the watchers have run so far, to subtract from the
/// process's statement count (they are the harness's, not the services').
pub fn queries() -> u64 {
    QUERIES.load(Ordering::Relaxed)
}

/// What a waiter waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// ACTIVE or ERROR.
    Settled,
    /// Deleted.
    Gone,
}

struct Waiter {
    want: Want,
    since: Timestamp,
    tx: oneshot::Sender<Instance>,
}

type Waiters = Arc<Mutex<HashMap<InstanceId, Waiter>>>;

/// The watcher task; stops when dropped.
pub struct Watcher {
    waiters: Waiters,
    stop: CancellationToken,
}

impl Watcher {
    /// Starts watching `store` every `interval`.
    pub fn start(store: Store, interval: Duration) -> Watcher {
        let waiters: Waiters = Arc::default();
        let stop = CancellationToken::new();
        tokio::spawn(run(store, interval, waiters.clone(), stop.clone()));
        Watcher { waiters, stop }
    }

    /// Resolves with the server once it is in the `want` state; `since` is
    /// a time before its last change could have happened (the request's
    /// start).
    pub fn wait(
        &self,
        id: InstanceId,
        want: Want,
        since: Timestamp,
    ) -> oneshot::Receiver<Instance> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("watch lock")
            .insert(id, Waiter { want, since, tx });
        rx
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn reached(inst: &Instance, want: Want) -> bool {
    match want {
        Want::Settled => matches!(inst.vm_state, VmState::Active | VmState::Error),
        Want::Gone => inst.deleted_at.is_some() || inst.vm_state == VmState::Deleted,
    }
}

async fn run(store: Store, interval: Duration, waiters: Waiters, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        let since = waiters
            .lock()
            .expect("watch lock")
            .values()
            .map(|w| w.since)
            .min_by_key(|t| t.micros());
        let Some(since) = since else { continue };
        let mut filter = InstanceFilter::scope(Scope::All);
        // Margin for the clocks of a row written in the same microsecond.
        filter.changes_since = Some(Timestamp::from_micros(since.micros() - 1_000));
        QUERIES.fetch_add(1, Ordering::Relaxed);
        let Ok(changed) = store.instance_list(&filter, None, None).await else {
            continue;
        };
        let mut w = waiters.lock().expect("watch lock");
        for inst in changed {
            if w.get(&inst.id).is_some_and(|x| reached(&inst, x.want))
                && let Some(x) = w.remove(&inst.id)
            {
                let _ = x.tx.send(inst);
            }
        }
    }
}
