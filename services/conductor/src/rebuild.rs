//! The rebuild of a server: a fresh root disk from its (new) image on the
//! host it is on, keeping its id, ports and addresses.
//!
//! The API recorded the new image, name and metadata and put the server
//! in task `rebuilding`; here the spec is built from those records and
//! cast to the host, which answers `Rebuilt` or `ActionFailed`. The task
//! state is the only record needed: every step checks it, so a message
//! delivered twice, or a rebuild resumed by the reconciler, does no harm.
//!
//! Outcomes, as Nova's: a rebuilt server is ACTIVE, or STOPPED again if
//! it was STOPPED (its host powers the fresh guest off, see the agent);
//! a failed rebuild leaves it in ERROR with a fault (the old disk is gone
//! by then, so its previous state would be a lie), from where it can be
//! rebuilt again. A host that does not report in time is asked once more,
//! then the rebuild fails the same way.

use crate::Conductor;
use cloud_bus::compute_queue;
use cloud_model::instance::{Fault, Instance, PowerState, TaskState, VmState};
use cloud_model::{Error, InstanceId, Timestamp};
use cloud_rpc::ComputeMsg;
use cloud_store::StateUpdate;
use std::sync::Arc;

/// The instance action (and, prefixed `compute_`, its host event).
const ACTION: &str = "rebuild";
/// The event the host's outcome is recorded as.
const EVENT: &str = "compute_rebuild";

impl Conductor {
    /// Runs (or resumes) the rebuild of server `id`: builds the spec from
    /// the server's records and casts it to the server's host, with the
    /// host's deadline. Nothing happens unless the server is `rebuilding`.
    pub(crate) async fn rebuild(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        let inst = match self.store.instance_get_any(id).await {
            Ok(i) => i,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if inst.deleted_at.is_some() || inst.task_state != Some(TaskState::Rebuilding) {
            tracing::debug!(instance = %id, "no rebuild to run");
            return Ok(());
        }
        let Some(host) = inst.host.clone() else {
            return self
                .rebuild_failed(&inst, None, None, "the server is on no host")
                .await;
        };
        let ports = self.server_ports(&inst).await?;
        let spec = match self.vm_spec(&inst, &ports).await {
            Ok(spec) => spec,
            Err(e @ Error::Unavailable { .. }) => return Err(e),
            Err(e) => {
                let why = format!("the server cannot be described to its host: {e}");
                return self.rebuild_failed(&inst, Some(&host), None, &why).await;
            }
        };
        self.store
            .instance_update_state(
                id,
                &StateUpdate {
                    task_deadline: Some(Some(
                        Timestamp::now().plus_seconds(self.config.spawn_timeout_secs),
                    )),
                    ..Default::default()
                },
            )
            .await?;
        let msg = ComputeMsg::Rebuild {
            spec: Box::new(spec),
        };
        self.cast(&compute_queue(&host), &msg, request_id).await
    }

    /// The host rebuilt the server: ACTIVE, or STOPPED again when it was
    /// stopped and its host kept the fresh guest off.
    pub(crate) async fn rebuilt(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        if inst.task_state != Some(TaskState::Rebuilding) {
            return Ok(());
        }
        let vm_state = if inst.vm_state == VmState::Stopped && power_state != PowerState::Running {
            VmState::Stopped
        } else {
            VmState::Active
        };
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(vm_state),
                    task_state: Some(None),
                    task_deadline: Some(None),
                    power_state: Some(power_state),
                    progress: Some(100),
                    launched_at: Some(Timestamp::now()),
                    fault: Some(None),
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(inst, ACTION, EVENT, Some(host), true, None)
            .await?;
        self.store.action_finish(inst.id, ACTION).await?;
        tracing::info!(instance = %inst.id, %host, vm_state = vm_state.as_str(), "server rebuilt");
        Ok(())
    }

    /// The rebuild failed (`message` says why): the server goes to ERROR
    /// with a fault, and the action's event records it.
    pub(crate) async fn rebuild_failed(
        &self,
        inst: &Instance,
        host: Option<&str>,
        power_state: Option<PowerState>,
        message: &str,
    ) -> Result<(), Error> {
        if inst.task_state != Some(TaskState::Rebuilding) {
            return Ok(());
        }
        tracing::warn!(instance = %inst.id, ?host, %message, "rebuild failed");
        let fault = Fault {
            code: 500,
            message: format!("Rebuild of instance {} failed: {message}", inst.id),
            details: message.to_owned(),
            created: Timestamp::now(),
        };
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::Error),
                    task_state: Some(None),
                    task_deadline: Some(None),
                    power_state,
                    fault: Some(Some(fault)),
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(inst, ACTION, EVENT, host, false, Some(message))
            .await?;
        self.store.action_finish(inst.id, ACTION).await
    }

    /// The host did not report the rebuild by its deadline: a host that
    /// is up and was not asked again yet is sent it once more (the first
    /// cast may have been lost, or the conductor died before it); after
    /// that, or with the host down, the rebuild fails.
    pub(crate) async fn rebuild_timed_out(self: &Arc<Self>, inst: &Instance) -> Result<(), Error> {
        let host = inst.host.clone();
        let up = match &host {
            Some(h) => self.host_is_up(h).await?,
            None => false,
        };
        if up && !self.rebuild_resent(inst).await? {
            tracing::warn!(instance = %inst.id, ?host, "the host did not report the rebuild in time; asking again");
            self.store
                .action_event(
                    inst,
                    ACTION,
                    EVENT,
                    host.as_deref(),
                    false,
                    Some("the host did not report the rebuild in time; asked again"),
                )
                .await?;
            return self.rebuild(inst.id, "req-reconcile").await;
        }
        let why = if up {
            "the host did not report the rebuild in time, twice"
        } else {
            "the host did not report the rebuild in time (is it down?)"
        };
        self.rebuild_failed(inst, host.as_deref(), None, why).await
    }

    /// Whether the current rebuild was sent again already (its action
    /// has a host event: the reconciler's "asked again").
    async fn rebuild_resent(&self, inst: &Instance) -> Result<bool, Error> {
        let Some(action) = self.store.action_latest(inst.id, ACTION).await? else {
            return Ok(false);
        };
        let action = self.store.action_get(inst.id, &action.request_id).await?;
        Ok(action.events.iter().any(|e| e.event == EVENT))
    }
}
