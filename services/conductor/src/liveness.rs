//! The conductor's liveness and the takeover of a dead conductor's work
//! (ADR 0009).
//!
//! A running conductor beats every `heartbeat_secs` through a database
//! session of its own; a conductor that is killed stops beating and loses
//! its session, so the others (or itself, restarted) claim its workflows
//! at once instead of waiting for their leases. A workflow taken over while
//! `waiting` for a host may never have reached the host (the owner records
//! the step before it casts), so the taker sends the spawn or destroy
//! again: both are idempotent on the host.

use crate::Conductor;
use cloud_model::Error;
use cloud_store::{ConductorPresence, Workflow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A workflow we hold now, and whether we took it from another conductor.
pub(crate) struct Claimed {
    /// The workflow, as it is now that we hold it.
    pub wf: Workflow,
    /// Another conductor held it before us (it died, its lease ran out,
    /// or it was only waiting for a host).
    pub taken_over: bool,
    /// Keeps our other handlers off the workflow while we run it.
    _busy: Busy,
}

/// The workflows this conductor is running now. A lease keeps other
/// conductors out, not our own handlers: after a takeover the reconciler's
/// first pass and the redelivered message for the same workflow arrive
/// together, and two runs of the schedule step would each claim a host.
/// The second handler waits for the first, then resumes from the step the
/// first left.
#[derive(Clone, Default)]
pub(crate) struct Running(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

/// One handler's turn on a workflow; the last one out forgets it.
struct Busy {
    running: Running,
    wf_id: String,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Running {
    async fn enter(&self, wf_id: &str) -> Busy {
        let lock = self
            .0
            .lock()
            .expect("running workflows")
            .entry(wf_id.to_owned())
            .or_default()
            .clone();
        Busy {
            running: self.clone(),
            wf_id: wf_id.to_owned(),
            turn: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        drop(self.turn.take());
        let mut map = self.running.0.lock().expect("running workflows");
        if map
            .get(&self.wf_id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.wf_id);
        }
    }
}

impl Conductor {
    /// Claims workflow `wf_id` (also from a live holder while it is
    /// `waiting`, if `steal_waiting`), telling whether we took it over.
    pub(crate) async fn claim(
        &self,
        wf_id: &str,
        steal_waiting: bool,
    ) -> Result<Option<Claimed>, Error> {
        let busy = self.running.enter(wf_id).await;
        let before = self.store.workflow_get(wf_id).await?;
        let lease = self.config.lease_secs;
        let wf = if steal_waiting {
            self.store
                .workflow_claim_waiting(wf_id, &self.id, lease)
                .await?
        } else {
            self.store.workflow_claim(wf_id, &self.id, lease).await?
        };
        Ok(wf.map(|wf| Claimed {
            wf,
            taken_over: before
                .and_then(|b| b.owner)
                .is_some_and(|owner| owner != self.id),
            _busy: busy,
        }))
    }

    /// Lets go of workflow `wf_id` after a failed step, so the retried
    /// message (whichever conductor receives it) or the reconciler resumes
    /// it at once instead of after our lease. A workflow `waiting` for a
    /// host stays ours: whoever resumes it must know it changed hands.
    pub(crate) async fn release_after_failure(&self, wf_id: &str) {
        match self.store.workflow_get(wf_id).await {
            Ok(Some(wf)) if wf.step != "waiting" => {
                if let Err(e) = self.store.workflow_release(wf_id, &self.id).await {
                    tracing::warn!(workflow = %wf_id, error = %e, "cannot release a failed workflow");
                }
            }
            _ => {}
        }
    }

    /// Beats until `stop` fires, then records a clean stop so that our
    /// unfinished work is taken over at once.
    pub(crate) async fn liveness_loop(
        self: Arc<Self>,
        mut presence: ConductorPresence,
        mut stop: oneshot::Receiver<()>,
    ) {
        let period = Duration::from_secs_f64(self.config.heartbeat_secs.max(0.1));
        loop {
            let wait = match presence.beat().await {
                Ok(()) => period,
                Err(e) => {
                    // Our session may be gone, which makes us look dead:
                    // come back with a new one as soon as the database lets us.
                    tracing::warn!(error = %e, "cannot record the conductor's liveness");
                    Duration::from_millis(200).min(period)
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(e) = presence.stopped().await {
            tracing::warn!(error = %e, "cannot record the conductor's stop");
        }
    }
}
