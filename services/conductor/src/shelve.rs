//! Shelve, offload and unshelve: a server snapshotted and stopped, then
//! removed from its host with its allocations released, then scheduled
//! anew and booted from its snapshot.
//!
//! The API records the shelve snapshot (`instance_shelves`) and casts the
//! shelve to the host; the host uploads the snapshot, powers the VM off and
//! reports `Shelved`. Then, with `shelved_offload_time` 0, or later from
//! the reconciler's periodic pass (or `shelveOffload`), the offload: the
//! host destroys the VM (`Destroy`, task `shelving_offloading`) and on its
//! report the allocations are released, the ports unbound and the server
//! left on no host (SHELVED_OFFLOADED). Unshelving a SHELVED server powers
//! it on where it is; a SHELVED_OFFLOADED one runs the build workflow's
//! steps in an `unshelve` workflow ([`Boot::Unshelve`]) with the snapshot
//! as its image. Either way the snapshot image is deleted once the server
//! runs again, as Nova does; a failed unshelve leaves the server
//! SHELVED_OFFLOADED with a fault, to be unshelved again.

use crate::Conductor;
use crate::build::{Boot, BuildData};
use cloud_bus::compute_queue;
use cloud_driver::VmSpec;
use cloud_model::instance::{Fault, Instance, PowerState, TaskState, VmState};
use cloud_model::{Error, InstanceId, NetworkId, PortId, SecurityGroupId, Timestamp};
use cloud_rpc::ComputeMsg;
use cloud_store::{PortFilter, Scope, StateUpdate, workflow_id};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The event of the offload step in `server event list`.
const OFFLOAD_EVENT: &str = "compute_shelve_offload_instance";
/// The event of a completed unshelve.
const UNSHELVE_EVENT: &str = "compute_unshelve_instance";

impl Conductor {
    /// The host snapshotted and stopped the server: SHELVED, and with
    /// `shelved_offload_time` 0 straight on to the offload.
    pub(crate) async fn shelved(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
        image_id: &str,
    ) -> Result<(), Error> {
        if inst.task_state != Some(TaskState::Shelving) {
            return Ok(());
        }
        tracing::info!(instance = %inst.id, %host, image = %image_id, "server shelved");
        self.store
            .shelve_mark_done(inst.id, Timestamp::now())
            .await?;
        let offload_now = self.config.shelved_offload_time == 0;
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::Shelved),
                    task_state: Some(offload_now.then_some(TaskState::ShelvingOffloading)),
                    task_deadline: Some(offload_now.then(|| self.offload_deadline())),
                    power_state: Some(power_state),
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(
                inst,
                "shelve",
                "compute_shelve_instance",
                Some(host),
                true,
                None,
            )
            .await?;
        if !offload_now {
            return self.store.action_finish(inst.id, "shelve").await;
        }
        self.send_offload(inst, host, "req-shelve-offload").await
    }

    /// When an offload that the host does not confirm is looked at again.
    fn offload_deadline(&self) -> Timestamp {
        Timestamp::now().plus_seconds(self.config.delete_timeout_secs)
    }

    /// Asks `host` to destroy the shelved server's VM (the task is
    /// `shelving_offloading` already); a host that is down is not waited
    /// for (it reaps the VM, which then belongs to no host, when it is back).
    async fn send_offload(
        &self,
        inst: &Instance,
        host: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        if !self.host_is_up(host).await? {
            tracing::warn!(instance = %inst.id, %host, "host is down; offloading without it");
            return self
                .offload_done(
                    inst,
                    Some(host),
                    Some("the host is down; the VM will be removed when it comes back"),
                )
                .await;
        }
        self.cast(
            &compute_queue(host),
            &ComputeMsg::Destroy {
                instance_id: inst.id,
            },
            request_id,
        )
        .await
    }

    /// The host destroyed a VM: the end of an offload, if one runs.
    pub(crate) async fn offloaded(&self, inst: &Instance, host: &str) -> Result<(), Error> {
        if inst.task_state != Some(TaskState::ShelvingOffloading) {
            return Ok(());
        }
        self.offload_done(inst, Some(host), None).await
    }

    /// Leaves `inst` SHELVED_OFFLOADED on no host: its allocations
    /// released and its ports unbound first, then the state (with `fault`
    /// when a failed unshelve got it there).
    async fn leave_offloaded(&self, inst: &Instance, fault: Option<Fault>) -> Result<(), Error> {
        self.store.placement_release(inst.id).await?;
        self.unbind_ports(inst).await?;
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::ShelvedOffloaded),
                    task_state: Some(None),
                    task_deadline: Some(None),
                    power_state: Some(PowerState::Shutdown),
                    host: Some(None),
                    numa_placement: Some(None),
                    fault: fault.map(Some),
                    ..Default::default()
                },
            )
            .await
    }

    /// Frees the host of a shelved server: its allocations released, its
    /// ports unbound, then the server SHELVED_OFFLOADED on no host. The
    /// release comes first: a crash in between leaves the task, whose
    /// deadline sends the destroy again and so completes the offload.
    async fn offload_done(
        &self,
        inst: &Instance,
        host: Option<&str>,
        note: Option<&str>,
    ) -> Result<(), Error> {
        self.leave_offloaded(inst, None).await?;
        let action = self.offload_action(inst).await?;
        self.store
            .action_event(inst, action, OFFLOAD_EVENT, host, true, note)
            .await?;
        self.store.action_finish(inst.id, action).await?;
        tracing::info!(instance = %inst.id, "server shelved and offloaded");
        Ok(())
    }

    /// The instance action an offload belongs to: an explicit (or
    /// periodic) `shelveOffload` still open, else the `shelve` that
    /// offloads at once.
    async fn offload_action(&self, inst: &Instance) -> Result<&'static str, Error> {
        let open = self
            .store
            .action_latest(inst.id, "shelveOffload")
            .await?
            .is_some_and(|a| a.finish_time.is_none());
        Ok(if open { "shelveOffload" } else { "shelve" })
    }

    /// Unbinds the server's ports from their host (they keep their
    /// addresses for the unshelve) and tells the hosts concerned.
    async fn unbind_ports(&self, inst: &Instance) -> Result<(), Error> {
        let ports = self
            .store
            .port_list(&PortFilter {
                device_id: Some(inst.id.to_string()),
                ..PortFilter::all(Scope::All)
            })
            .await?;
        let mut networks: BTreeSet<NetworkId> = BTreeSet::new();
        let mut groups: BTreeSet<SecurityGroupId> = BTreeSet::new();
        let mut hosts: BTreeSet<String> = BTreeSet::new();
        for port in ports {
            networks.insert(port.network_id);
            groups.extend(port.security_group_ids.iter().copied());
            if port.binding_host.is_none() && port.status == "DOWN" {
                continue;
            }
            hosts.extend(port.binding_host.clone());
            let mut unbound = port;
            unbound.binding_host = None;
            unbound.status = "DOWN".to_owned();
            self.store.port_update(&unbound).await?;
        }
        self.network_changed(
            &networks.into_iter().collect::<Vec<_>>(),
            &groups.into_iter().collect::<Vec<_>>(),
            &hosts.into_iter().collect::<Vec<_>>(),
            "req-ports-unbound",
        )
        .await
    }

    /// The host did not confirm an offload in time. An offload is a
    /// destroy: like a delete it is asked again of a host that is up, and
    /// completes without a host that is down.
    pub(crate) async fn offload_timed_out(&self, inst: &Instance) -> Result<(), Error> {
        let Some(host) = inst.host.clone() else {
            return self.offload_done(inst, None, None).await;
        };
        tracing::warn!(instance = %inst.id, %host, "the host did not confirm the offload in time");
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    task_deadline: Some(Some(self.offload_deadline())),
                    ..Default::default()
                },
            )
            .await?;
        self.send_offload(inst, &host, "req-reconcile").await
    }

    /// The periodic offload: SHELVED servers older than
    /// `shelved_offload_time` seconds leave their hosts (every pass when
    /// it is 0, which also finishes an offload a crash cut short before
    /// it began; never when it is negative).
    pub(crate) async fn offload_shelved(&self) -> Result<(), Error> {
        let after = self.config.shelved_offload_time;
        if after < 0 {
            return Ok(());
        }
        let before = Timestamp::now().plus_seconds(-after);
        for inst in self.store.shelved_before(before).await? {
            if let Err(e) = self.begin_offload(&inst).await {
                tracing::warn!(instance = %inst.id, error = %e, "cannot offload a shelved server");
            }
        }
        Ok(())
    }

    /// Starts the offload of a SHELVED server, as `shelveOffload` does.
    async fn begin_offload(&self, inst: &Instance) -> Result<(), Error> {
        let Some(host) = inst.host.clone() else {
            return Ok(());
        };
        match self
            .store
            .instance_begin_task(
                inst.id,
                &Scope::All,
                "shelveOffload",
                &[VmState::Shelved],
                &[],
                TaskState::ShelvingOffloading,
                self.offload_deadline(),
            )
            .await
        {
            Ok(_) => {}
            // It moved on meanwhile (unshelved, deleted).
            Err(Error::Conflict { .. } | Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        self.store
            .action_start(
                inst.id,
                &request_id,
                "shelveOffload",
                &inst.project_id,
                &inst.user_id,
            )
            .await?;
        tracing::info!(instance = %inst.id, %host, "offloading a shelved server");
        self.send_offload(inst, &host, &request_id).await
    }

    /// A shelve the host failed (`ActionFailed` while `shelving`) leaves
    /// no snapshot behind; an in-place unshelve that failed (its power on)
    /// is recorded as the unshelve. Returns the action to record it under.
    pub(crate) async fn shelve_action_failed(
        &self,
        inst: &Instance,
        action: String,
    ) -> Result<String, Error> {
        match inst.task_state {
            Some(TaskState::Shelving) => {
                self.drop_shelve_image(inst).await?;
                Ok("shelve".to_owned())
            }
            Some(TaskState::Unshelving) => Ok("unshelve".to_owned()),
            _ => Ok(action),
        }
    }

    /// A shelve the host never reported: the task is cleared (the server
    /// stays as it was) and the snapshot, complete or not, dropped.
    pub(crate) async fn shelve_timed_out(&self, inst: &Instance) -> Result<(), Error> {
        tracing::warn!(instance = %inst.id, "the shelve timed out");
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
                "shelve",
                "compute_shelve_instance",
                inst.host.as_deref(),
                false,
                Some("the host did not report the result in time"),
            )
            .await?;
        self.store.action_finish(inst.id, "shelve").await?;
        self.drop_shelve_image(inst).await
    }

    /// Deletes the server's shelve snapshot image (its record: the bytes
    /// are the image API's) and forgets it: the server runs again, or is
    /// deleted, or its shelve failed.
    pub(crate) async fn drop_shelve_image(&self, inst: &Instance) -> Result<(), Error> {
        let Some(shelve) = self.store.shelve_get(inst.id).await? else {
            return Ok(());
        };
        match self.store.image_delete(shelve.image_id).await {
            Ok(()) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.store.shelve_forget(inst.id).await?;
        tracing::info!(instance = %inst.id, image = %shelve.image_id, "shelve snapshot deleted");
        Ok(())
    }

    /// What the delete of a server ends for its shelve: the snapshot (as
    /// Nova deletes it) and an unshelve workflow still open.
    pub(crate) async fn shelve_deleted(&self, inst: &Instance) -> Result<(), Error> {
        self.drop_shelve_image(inst).await?;
        self.store
            .workflow_finish(&workflow_id(inst.id, Boot::Unshelve.workflow()), "aborted")
            .await
    }

    /// Runs (or resumes) the unshelve of server `id`. One whose snapshot
    /// is gone (its owner deleted the image) cannot boot: it fails at once
    /// rather than retrying forever.
    pub(crate) async fn unshelve(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        let inst = self.store.instance_get_any(id).await?;
        if inst.task_state == Some(TaskState::Unshelving)
            && inst.vm_state == VmState::ShelvedOffloaded
            && let Some(why) = self.snapshot_missing(&inst).await?
        {
            return self
                .unshelve_failed(&inst, &BuildData::default(), &why, "unshelve")
                .await;
        }
        self.boot(id, Boot::Unshelve, request_id).await
    }

    /// Why the server's shelve snapshot cannot be booted, if it cannot.
    async fn snapshot_missing(&self, inst: &Instance) -> Result<Option<String>, Error> {
        let Some(shelve) = self.store.shelve_get(inst.id).await? else {
            return Ok(Some(format!("server {} has no shelve snapshot", inst.id)));
        };
        match self.store.image_get(shelve.image_id, &Scope::All).await {
            Ok(image) if image.status == "active" => Ok(None),
            Ok(image) => Ok(Some(format!(
                "the shelve snapshot {} is {}, not active",
                image.id, image.status
            ))),
            Err(Error::NotFound { .. }) => Ok(Some(format!(
                "the shelve snapshot {} was deleted",
                shelve.image_id
            ))),
            Err(e) => Err(e),
        }
    }

    /// The spec a build workflow casts: an unshelve boots the snapshot.
    pub(crate) async fn boot_spec(
        &self,
        inst: &Instance,
        ports: &[PortId],
        boot: Boot,
    ) -> Result<VmSpec, Error> {
        match boot {
            Boot::Create => self.vm_spec(inst, ports).await,
            Boot::Unshelve => {
                let shelve = self.store.shelve_get(inst.id).await?.ok_or_else(|| {
                    Error::internal(format!("server {} has no shelve snapshot", inst.id))
                })?;
                self.vm_spec_from(inst, ports, shelve.image_id).await
            }
        }
    }

    /// The host booted an unshelved server from its snapshot: ACTIVE, and
    /// the snapshot goes (first: a crash before the end has the report
    /// delivered again, and the drop is idempotent).
    pub(crate) async fn unshelve_spawned(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
        ports: &[PortId],
    ) -> Result<(), Error> {
        self.drop_shelve_image(inst).await?;
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::Active),
                    task_state: Some(None),
                    power_state: Some(power_state),
                    progress: Some(100),
                    task_deadline: Some(None),
                    fault: Some(None),
                    ..Default::default()
                },
            )
            .await?;
        self.ports_set_status(ports, "ACTIVE").await?;
        self.store
            .action_event(inst, "unshelve", UNSHELVE_EVENT, Some(host), true, None)
            .await?;
        self.store.action_finish(inst.id, "unshelve").await?;
        self.store
            .workflow_finish(&workflow_id(inst.id, Boot::Unshelve.workflow()), "done")
            .await?;
        tracing::info!(instance = %inst.id, %host, "server unshelved");
        Ok(())
    }

    /// A SHELVED server powered on where it was: ACTIVE, snapshot gone.
    pub(crate) async fn unshelved_in_place(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        self.drop_shelve_image(inst).await?;
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::Active),
                    task_state: Some(None),
                    task_deadline: Some(None),
                    power_state: Some(power_state),
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(inst, "unshelve", UNSHELVE_EVENT, Some(host), true, None)
            .await?;
        self.store.action_finish(inst.id, "unshelve").await
    }

    /// An unshelve that found no host, or whose spawns failed: as in Nova
    /// the server stays SHELVED_OFFLOADED (on no host, holding nothing,
    /// its snapshot kept) with a fault saying why, to be unshelved again.
    pub(crate) async fn unshelve_failed(
        &self,
        inst: &Instance,
        data: &BuildData,
        message: &str,
        event: &str,
    ) -> Result<(), Error> {
        tracing::warn!(instance = %inst.id, %message, "unshelve failed");
        let fault = Fault {
            code: 500,
            message: message.to_owned(),
            details: data.tried_summary(),
            created: Timestamp::now(),
        };
        self.leave_offloaded(inst, Some(fault)).await?;
        self.store
            .action_event(inst, "unshelve", event, None, false, Some(message))
            .await?;
        self.store.action_finish(inst.id, "unshelve").await?;
        self.store
            .workflow_finish(&workflow_id(inst.id, Boot::Unshelve.workflow()), "failed")
            .await
    }

    /// An unshelve past its deadline: a spawn the host never reported
    /// counts as a failure there (the workflow moves on); an unshelve
    /// whose workflow is not running (lost before it started) is cleared,
    /// leaving the server SHELVED_OFFLOADED.
    pub(crate) async fn unshelve_timed_out(self: &Arc<Self>, inst: &Instance) -> Result<(), Error> {
        let wf = self
            .store
            .workflow_get(&workflow_id(inst.id, Boot::Unshelve.workflow()))
            .await?
            .filter(|w| w.finished_at.is_none());
        match wf {
            Some(w) if w.step == "waiting" => {
                let host = inst.host.clone().unwrap_or_default();
                let message = format!(
                    "the host did not report the spawn within {} s (is it down?)",
                    self.config.spawn_timeout_secs
                );
                self.build_failed_on_host(inst, &host, &message, "req-reconcile")
                    .await
            }
            // The orphaned-workflow pass resumes it.
            Some(_) => Ok(()),
            None => {
                self.unshelve_failed(
                    inst,
                    &BuildData::default(),
                    "the unshelve was not started in time",
                    "unshelve",
                )
                .await
            }
        }
    }
}
