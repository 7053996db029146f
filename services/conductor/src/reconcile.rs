//! Reconcilers: nothing stays in a transitional state forever.
//!
//! Every pass (a) resumes workflows whose conductor died (known dead, or
//! its lease expired), (b) handles tasks past their deadline: a spawn that
//! never reported counts as a failure on that host (the build moves on), a
//! delete the host never confirmed is sent again (or completes without a
//! host that is down), and a power action that never finished is cleared.

use crate::Conductor;
use cloud_model::instance::{Instance, TaskState, VmState};
use cloud_model::{Error, Timestamp};
use cloud_store::{StateUpdate, workflow_id};
use std::sync::Arc;
use std::time::Duration;

impl Conductor {
    pub(crate) async fn reconcile_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(
            self.config.reconcile_interval_secs.max(0.1),
        ));
        loop {
            tick.tick().await;
            if let Err(e) = self.reconcile_once().await {
                tracing::warn!(error = %e, "reconcile pass failed");
            }
        }
    }

    /// One reconciler pass (public for tests).
    pub async fn reconcile_once(self: &Arc<Self>) -> Result<(), Error> {
        for wf in self
            .store
            .workflows_orphaned(self.config.lease_secs.min(30), 100)
            .await?
        {
            if wf.owner.as_deref() == Some(self.id.as_str()) && wf.lease_until > Timestamp::now() {
                // We only look dead (our session was cut and is being
                // replaced): our own handlers still hold it.
                continue;
            }
            tracing::info!(workflow = %wf.id, step = %wf.step, "resuming an orphaned workflow");
            let r = match wf.kind.as_str() {
                "build" => self.build(wf.instance_id, "req-reconcile").await,
                "delete" => self.delete(wf.instance_id, "req-reconcile").await,
                "unshelve" => self.unshelve(wf.instance_id, "req-reconcile").await,
                _ => Ok(()),
            };
            if let Err(e) = r {
                tracing::warn!(workflow = %wf.id, error = %e, "resuming failed");
            }
        }
        for inst in self.store.instances_past_deadline(Timestamp::now()).await? {
            if let Err(e) = self.task_timed_out(&inst).await {
                tracing::warn!(instance = %inst.id, error = %e, "handling a timed-out task failed");
            }
        }
        self.offload_shelved().await?;
        Ok(())
    }

    /// The host did not confirm a delete in time. A host that is up is
    /// asked again (marking the server deleted now would leave its VM
    /// running); without a live host the delete completes without it.
    async fn delete_timed_out(self: &Arc<Self>, inst: &Instance) -> Result<(), Error> {
        let host = inst.host.clone().unwrap_or_default();
        tracing::warn!(instance = %inst.id, %host, "the host did not confirm the delete in time");
        let up = match &inst.host {
            Some(h) => self.host_is_up(h).await?,
            None => false,
        };
        if up {
            self.store
                .action_event(
                    inst,
                    "delete",
                    "compute_terminate",
                    inst.host.as_deref(),
                    false,
                    Some("the host did not confirm the delete in time; asked again"),
                )
                .await?;
        }
        self.send_destroy(inst, None, "req-reconcile").await
    }

    async fn task_timed_out(self: &Arc<Self>, inst: &Instance) -> Result<(), Error> {
        let host = inst.host.clone().unwrap_or_default();
        match (inst.vm_state, inst.task_state) {
            (_, Some(TaskState::Deleting)) => self.delete_timed_out(inst).await,
            (_, Some(TaskState::Rebuilding)) => self.rebuild_timed_out(inst).await,
            (VmState::Building, _) => {
                let build = self
                    .store
                    .workflow_get(&workflow_id(inst.id, "build"))
                    .await?;
                if build.is_some_and(|w| w.step == "waiting" && w.finished_at.is_none()) {
                    let message = format!(
                        "the host did not report the spawn within {} s (is it down?)",
                        self.config.spawn_timeout_secs
                    );
                    self.build_failed_on_host(inst, &host, &message, "req-reconcile")
                        .await
                } else {
                    Ok(())
                }
            }
            (VmState::ShelvedOffloaded, Some(TaskState::Unshelving)) => {
                self.unshelve_timed_out(inst).await
            }
            (_, Some(TaskState::ShelvingOffloading)) => self.offload_timed_out(inst).await,
            (_, Some(TaskState::Shelving)) => self.shelve_timed_out(inst).await,
            (_, Some(TaskState::ImageSnapshot)) => self.snapshot_timed_out(inst).await,
            (_, Some(task)) => {
                let action = match task {
                    TaskState::PoweringOff => "stop",
                    TaskState::PoweringOn => "start",
                    TaskState::Pausing => "pause",
                    TaskState::Unpausing => "unpause",
                    TaskState::Suspending => "suspend",
                    TaskState::Resuming => "resume",
                    TaskState::Rebuilding => "rebuild",
                    TaskState::ImageSnapshot => "createImage",
                    TaskState::Rescuing => "rescue",
                    TaskState::Unrescuing => "unrescue",
                    TaskState::Shelving => "shelve",
                    TaskState::ShelvingOffloading => "shelveOffload",
                    TaskState::Unshelving => "unshelve",
                    _ => "reboot",
                };
                tracing::warn!(instance = %inst.id, %host, task = task.as_str(), "task timed out");
                self.store
                    .instance_update_state(
                        inst.id,
                        &StateUpdate {
                            task_state: Some(None),
                            task_deadline: Some(None),
                            ..Default::default()
                        },
                    )
                    .await?;
                self.store
                    .action_event(
                        inst,
                        action,
                        &format!("compute_{action}"),
                        inst.host.as_deref(),
                        false,
                        Some("the host did not report the result in time"),
                    )
                    .await?;
                self.store.action_finish(inst.id, action).await
            }
            _ => {
                self.store
                    .instance_update_state(
                        inst.id,
                        &StateUpdate {
                            task_deadline: Some(None),
                            ..Default::default()
                        },
                    )
                    .await
            }
        }
    }
}
