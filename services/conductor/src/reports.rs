//! Applying what compute agents report. The conductor is the only writer
//! of this state; power states are generation-guarded so an old report
//! never overwrites a newer one.

use crate::Conductor;
use cloud_bus::compute_queue;
use cloud_driver::{HostResources, VmInfo};
use cloud_model::instance::{Instance, PowerState, TaskState, VmState};
use cloud_model::{Error, InstanceId};
use cloud_rpc::{ComputeMsg, HostEvent};
use cloud_store::{HostReport, StateUpdate, workflow_id};
use std::collections::HashMap;
use std::sync::Arc;

impl Conductor {
    /// A host (re)started or its resources changed.
    #[allow(clippy::too_many_arguments)] // the fields of one message
    pub(crate) async fn host_report(
        self: &Arc<Self>,
        host: &str,
        availability_zone: &str,
        resources: &HostResources,
        inventory: Vec<(String, i64, f64)>,
        vms: &[VmInfo],
        startup: bool,
        (local_ip, network_node): (Option<std::net::Ipv4Addr>, bool),
    ) -> Result<(), Error> {
        let before = self
            .store
            .compute_node(host)
            .await
            .ok()
            .and_then(|n| n.host_ip);
        self.store
            .host_register(&HostReport {
                host: host.to_owned(),
                hypervisor_type: resources.hypervisor_type.clone(),
                hypervisor_version: i64::try_from(resources.hypervisor_version).unwrap_or(0),
                cpu_arch: resources.cpu_arch.clone(),
                vcpus: i64::from(resources.vcpus),
                memory_mb: i64::try_from(resources.memory_mb).unwrap_or(i64::MAX),
                disk_gb: i64::try_from(resources.disk_gb).unwrap_or(i64::MAX),
                numa_topology: serde_json::to_value(&resources.numa_cells).unwrap_or_default(),
                availability_zone: availability_zone.to_owned(),
                host_ip: local_ip.map(|ip| ip.to_string()),
                network_node,
                inventory,
            })
            .await?;
        tracing::info!(%host, vms = vms.len(), startup, "host registered");
        let now = local_ip.map(|ip| ip.to_string());
        if before.is_some() && before != now {
            // Other hosts send this host's overlay traffic to the address
            // they were given: give them the new one now.
            tracing::info!(%host, ?before, ?now, "the host's underlay address changed");
            let networks = self.store.networks_bound_on_host(host).await?;
            self.network_changed(&networks, &[], &[], "req-underlay-changed")
                .await?;
        }
        self.power_sync(host, 0, vms, startup).await
    }

    /// Compares the hypervisor's view with ours: records drift, reaps VMs
    /// that belong to no live server, and notes servers whose VM vanished.
    pub(crate) async fn power_sync(
        self: &Arc<Self>,
        host: &str,
        generation: i64,
        vms: &[VmInfo],
        startup: bool,
    ) -> Result<(), Error> {
        let on_host: HashMap<InstanceId, PowerState> =
            vms.iter().map(|v| (v.id, v.power_state)).collect();
        let instances = self.store.instances_on_host(host).await?;
        let known: HashMap<InstanceId, &Instance> = instances.iter().map(|i| (i.id, i)).collect();
        for vm in vms {
            if known.contains_key(&vm.id) {
                continue;
            }
            let live = match self.store.instance_get_any(vm.id).await {
                Ok(i) => i.deleted_at.is_none() && i.host.as_deref() == Some(host),
                Err(Error::NotFound { .. }) => false,
                Err(e) => return Err(e),
            };
            if !live && self.config.reap_orphans {
                tracing::warn!(%host, instance = %vm.id, "reaping a VM that belongs to no live server");
                self.cast(
                    &compute_queue(host),
                    &ComputeMsg::Destroy { instance_id: vm.id },
                    "req-reap",
                )
                .await?;
            }
        }
        for inst in &instances {
            // Servers being built or changed are the workflows' business.
            if inst.task_state.is_some() || inst.vm_state == VmState::Building {
                continue;
            }
            let observed = on_host.get(&inst.id).copied();
            let power = observed.unwrap_or(PowerState::NoState);
            if generation > 0 {
                self.store
                    .instance_update_runtime(inst.id, generation, power)
                    .await?;
            } else if power != inst.power_state {
                self.store
                    .instance_update_state(
                        inst.id,
                        &StateUpdate {
                            power_state: Some(power),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            let drift = match (inst.vm_state, observed) {
                (VmState::Active, Some(PowerState::Shutdown | PowerState::Crashed)) => Some((
                    VmState::Stopped,
                    format!(
                        "the hypervisor reports {power} while the server is active; marked stopped"
                    ),
                )),
                (VmState::Active | VmState::Stopped, None) => Some((
                    VmState::Stopped,
                    format!(
                        "the VM is missing on host {host}{}; marked stopped",
                        if startup {
                            " after the agent restarted"
                        } else {
                            ""
                        }
                    ),
                )),
                (VmState::Stopped, Some(PowerState::Running)) => Some((
                    VmState::Active,
                    "the hypervisor reports RUNNING while the server is stopped; marked active"
                        .to_owned(),
                )),
                _ => None,
            };
            if let Some((vm_state, message)) = drift
                && (vm_state != inst.vm_state || observed.is_none())
            {
                tracing::warn!(instance = %inst.id, %host, %message, "power state drift");
                self.store
                    .instance_update_state(
                        inst.id,
                        &StateUpdate {
                            vm_state: Some(vm_state),
                            power_state: Some(power),
                            ..Default::default()
                        },
                    )
                    .await?;
                self.store
                    .action_event(
                        inst,
                        "power_sync",
                        "power_state_sync",
                        Some(host),
                        false,
                        Some(&message),
                    )
                    .await?;
                self.store.action_finish(inst.id, "power_sync").await?;
            }
        }
        Ok(())
    }

    /// Something happened to a server on a host.
    pub(crate) async fn instance_event(
        self: &Arc<Self>,
        id: InstanceId,
        host: &str,
        generation: i64,
        power_state: PowerState,
        event: HostEvent,
        request_id: &str,
    ) -> Result<(), Error> {
        let inst = match self.store.instance_get_any(id).await {
            Ok(i) => i,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if inst.deleted_at.is_some() {
            return Ok(());
        }
        if inst.task_state == Some(TaskState::Deleting) {
            if event == HostEvent::Destroyed {
                let waiting = self
                    .store
                    .workflow_get(&workflow_id(id, "delete"))
                    .await?
                    .is_some_and(|w| w.finished_at.is_none());
                if waiting {
                    self.store
                        .action_event(&inst, "delete", "compute_terminate", Some(host), true, None)
                        .await?;
                    return self.delete_cleanup(&inst).await;
                }
            }
            return Ok(());
        }
        if inst.host.as_deref() != Some(host) {
            tracing::info!(instance = %id, %host, "ignoring a report from a host the server is not on");
            return Ok(());
        }
        self.store
            .instance_update_runtime(id, generation, power_state)
            .await?;
        match event {
            HostEvent::Spawned => self.build_spawned(&inst, host, power_state).await,
            HostEvent::SpawnFailed { message } => {
                self.build_failed_on_host(&inst, host, &message, request_id)
                    .await
            }
            HostEvent::Destroyed => self.offloaded(&inst, host).await,
            HostEvent::PoweredOff => {
                self.finish_action(
                    &inst,
                    host,
                    TaskState::PoweringOff,
                    "stop",
                    VmState::Stopped,
                    power_state,
                )
                .await
            }
            HostEvent::PoweredOn if inst.task_state == Some(TaskState::Unshelving) => {
                self.unshelved_in_place(&inst, host, power_state).await
            }
            HostEvent::PoweredOn => {
                self.finish_action(
                    &inst,
                    host,
                    TaskState::PoweringOn,
                    "start",
                    VmState::Active,
                    power_state,
                )
                .await
            }
            HostEvent::Rebooted => {
                let task = inst.task_state.unwrap_or(TaskState::Rebooting);
                if matches!(task, TaskState::Rebooting | TaskState::RebootingHard) {
                    self.finish_action(&inst, host, task, "reboot", VmState::Active, power_state)
                        .await
                } else {
                    Ok(())
                }
            }
            HostEvent::Paused => {
                self.finish_action(
                    &inst,
                    host,
                    TaskState::Pausing,
                    "pause",
                    VmState::Paused,
                    power_state,
                )
                .await
            }
            HostEvent::Unpaused => {
                self.finish_action(
                    &inst,
                    host,
                    TaskState::Unpausing,
                    "unpause",
                    VmState::Active,
                    power_state,
                )
                .await
            }
            HostEvent::Suspended => {
                self.finish_action(
                    &inst,
                    host,
                    TaskState::Suspending,
                    "suspend",
                    VmState::Suspended,
                    power_state,
                )
                .await
            }
            HostEvent::Resumed => {
                self.finish_action(
                    &inst,
                    host,
                    TaskState::Resuming,
                    "resume",
                    VmState::Active,
                    power_state,
                )
                .await
            }
            HostEvent::Rebuilt => self.rebuilt(&inst, host, power_state).await,
            HostEvent::Snapshotted { image_id } => {
                self.snapshotted(&inst, host, power_state, &image_id, None)
                    .await
            }
            HostEvent::SnapshotFailed { image_id, message } => {
                self.snapshotted(&inst, host, power_state, &image_id, Some(&message))
                    .await
            }
            HostEvent::Rescued => self.rescued(&inst, host, power_state).await,
            HostEvent::Unrescued => self.unrescued(&inst, host, power_state).await,
            HostEvent::Shelved { image_id } => {
                self.shelved(&inst, host, power_state, &image_id).await
            }
            HostEvent::ActionFailed { action, message } if action == "rebuild" => {
                self.rebuild_failed(&inst, Some(host), Some(power_state), &message)
                    .await
            }
            HostEvent::ActionFailed { action, message } => {
                if inst.task_state.is_some() {
                    let action = self.shelve_action_failed(&inst, action).await?;
                    self.store
                        .instance_update_state(
                            id,
                            &StateUpdate {
                                task_state: Some(None),
                                task_deadline: Some(None),
                                power_state: Some(power_state),
                                ..Default::default()
                            },
                        )
                        .await?;
                    self.store
                        .action_event(
                            &inst,
                            &action,
                            &format!("compute_{action}"),
                            Some(host),
                            false,
                            Some(&message),
                        )
                        .await?;
                    self.store.action_finish(id, &action).await?;
                }
                Ok(())
            }
        }
    }

    /// Completes a power action whose task is `task`.
    pub(crate) async fn finish_action(
        &self,
        inst: &Instance,
        host: &str,
        task: TaskState,
        action: &str,
        vm_state: VmState,
        power_state: PowerState,
    ) -> Result<(), Error> {
        if inst.task_state != Some(task) {
            return Ok(());
        }
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(vm_state),
                    task_state: Some(None),
                    task_deadline: Some(None),
                    power_state: Some(power_state),
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(
                inst,
                action,
                &format!("compute_{action}"),
                Some(host),
                true,
                None,
            )
            .await?;
        self.store.action_finish(inst.id, action).await
    }
}
