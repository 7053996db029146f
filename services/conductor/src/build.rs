//! The build workflow.
//!
//! Steps, persisted in the `workflows` table:
//! `schedule` (ask a scheduler, which claims the host's resources) ->
//! `networking` (create or bind the ports) -> `spawning` (cast the spawn
//! to the host) -> `waiting` (for the host's report) -> done. A failed
//! spawn releases the claim, records the host in `tried` and goes back to
//! `schedule`, which then excludes the hosts tried; after
//! `max_build_attempts` hosts, or when no host fits, the server goes to
//! ERROR with a fault that says what happened on each host.
//!
//! The unshelve of a shelved-offloaded server runs the same steps in a
//! workflow of its own ([`Boot::Unshelve`]): its ports are bound to the
//! new host, the host boots the shelve snapshot, and a failure leaves the
//! server SHELVED_OFFLOADED (see `shelve.rs`).

use crate::Conductor;
use cloud_bus::{SCHEDULER_QUEUE, compute_queue};
use cloud_model::instance::{Fault, Instance, PowerState, TaskState, VmState};
use cloud_model::{Error, InstanceId, PortId, Timestamp};
use cloud_rpc::{ComputeMsg, Reply, SchedulerMsg, Selection};
use cloud_store::{StateUpdate, Workflow, workflow_id};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What the build workflow remembers between steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct BuildData {
    /// Hosts that failed, with why.
    #[serde(default)]
    pub tried: Vec<TriedHost>,
    /// The host currently claimed.
    #[serde(default)]
    pub host: Option<String>,
    /// Ports we created for the server (deleted with it).
    #[serde(default)]
    pub created_ports: Vec<PortId>,
    /// All the server's ports, in NIC order.
    #[serde(default)]
    pub ports: Vec<PortId>,
}

/// A host that failed a build attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TriedHost {
    /// The host.
    pub host: String,
    /// What went wrong there.
    pub error: String,
}

/// What a build workflow boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Boot {
    /// A new server (the `build` workflow, action `create`).
    Create,
    /// A shelved-offloaded server, from its shelve snapshot (the
    /// `unshelve` workflow and action; the task stays `unshelving`).
    Unshelve,
}

impl Boot {
    /// The boot a report about `inst` belongs to.
    pub(crate) fn of(inst: &Instance) -> Boot {
        if inst.task_state == Some(TaskState::Unshelving) {
            Boot::Unshelve
        } else {
            Boot::Create
        }
    }

    /// The workflow's kind.
    pub(crate) fn workflow(self) -> &'static str {
        match self {
            Boot::Create => "build",
            Boot::Unshelve => "unshelve",
        }
    }

    /// The instance action its events belong to.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Boot::Create => "create",
            Boot::Unshelve => "unshelve",
        }
    }

    /// The task state shown during a step (`during` for a create).
    fn task(self, during: TaskState) -> TaskState {
        match self {
            Boot::Create => during,
            Boot::Unshelve => TaskState::Unshelving,
        }
    }

    /// Whether `inst` still wants this boot (a timed-out unshelve does not).
    fn wanted(self, inst: &Instance) -> bool {
        self == Boot::Create || inst.task_state == Some(TaskState::Unshelving)
    }
}

impl BuildData {
    fn from(wf: &Workflow) -> BuildData {
        serde_json::from_value(wf.data.clone()).unwrap_or_default()
    }

    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// `host-a: error; host-b: error`.
    pub(crate) fn tried_summary(&self) -> String {
        self.tried
            .iter()
            .map(|t| format!("{}: {}", t.host, t.error))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Conductor {
    /// Runs or resumes the build of `id` as far as it can go without
    /// waiting for a host.
    pub(crate) async fn build(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        self.boot(id, Boot::Create, request_id).await
    }

    /// Runs or resumes the workflow of `boot` for `id`.
    pub(crate) async fn boot(
        self: &Arc<Self>,
        id: InstanceId,
        boot: Boot,
        request_id: &str,
    ) -> Result<(), Error> {
        let wf_id = workflow_id(id, boot.workflow());
        let Some(claimed) = self.claim(&wf_id, false).await? else {
            tracing::debug!(instance = %id, "build workflow finished or owned by another conductor");
            return Ok(());
        };
        let r = self
            .run_build(
                &wf_id,
                claimed.wf.clone(),
                claimed.taken_over,
                boot,
                request_id,
            )
            .await;
        if r.is_err() {
            self.release_after_failure(&wf_id).await;
        }
        drop(claimed);
        r
    }

    /// The steps of a build we hold, from where it stands.
    async fn run_build(
        self: &Arc<Self>,
        wf_id: &str,
        mut wf: Workflow,
        mut taken_over: bool,
        boot: Boot,
        request_id: &str,
    ) -> Result<(), Error> {
        let id = wf.instance_id;
        loop {
            let inst = self.store.instance_get_any(id).await?;
            if inst.deleted_at.is_some()
                || inst.task_state == Some(TaskState::Deleting)
                || !boot.wanted(&inst)
            {
                // The delete workflow takes it from here.
                self.store.workflow_finish(wf_id, "aborted").await?;
                return Ok(());
            }
            let mut data = BuildData::from(&wf);
            let next = match wf.step.as_str() {
                "schedule" => {
                    self.step_schedule(&inst, &mut data, boot, request_id)
                        .await?
                }
                "networking" => self.step_networking(&inst, &mut data, boot).await?,
                "spawning" => {
                    return self.step_spawn(wf_id, &inst, &data, boot, request_id).await;
                }
                // Our predecessor recorded the step and may have died
                // before the host heard of it.
                "waiting" if taken_over => {
                    return self.resend_spawn(&inst, &data, boot, request_id).await;
                }
                _ => return Ok(()),
            };
            taken_over = false;
            let Some(next) = next else { return Ok(()) };
            if !self
                .store
                .workflow_advance(wf_id, &self.id, &wf.step, next, &data.to_value())
                .await?
            {
                tracing::info!(instance = %id, step = %wf.step, "build workflow moved on elsewhere");
                return Ok(());
            }
            wf = match self.store.workflow_get(wf_id).await? {
                Some(w) => w,
                None => return Ok(()),
            };
            if wf.step == "waiting" || wf.finished_at.is_some() {
                return Ok(());
            }
        }
    }

    /// Asks a scheduler for a host. Returns the next step, or None when the
    /// build ended (in ERROR).
    async fn step_schedule(
        self: &Arc<Self>,
        inst: &Instance,
        data: &mut BuildData,
        boot: Boot,
        request_id: &str,
    ) -> Result<Option<&'static str>, Error> {
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    task_state: Some(Some(boot.task(TaskState::Scheduling))),
                    host: Some(None),
                    ..Default::default()
                },
            )
            .await?;
        let msg = SchedulerMsg::SelectDestinations {
            instance_id: inst.id,
            ignore_hosts: data.tried.iter().map(|t| t.host.clone()).collect(),
            num_alternates: 2,
        };
        let env = cloud_rpc::encode(&msg, request_id)?;
        let reply = self
            .bus
            .call(
                SCHEDULER_QUEUE,
                env,
                Duration::from_secs(self.config.scheduler_timeout_secs),
            )
            .await?;
        match cloud_rpc::decode_reply::<Selection>(&reply)? {
            Reply::Ok(sel) => {
                self.store
                    .action_event(inst, boot.action(), "schedule", Some(&sel.host), true, None)
                    .await?;
                data.host = Some(sel.host.clone());
                self.store
                    .instance_update_state(
                        inst.id,
                        &StateUpdate {
                            task_state: Some(Some(boot.task(TaskState::Networking))),
                            host: Some(Some(sel.host.clone())),
                            numa_placement: Some(
                                sel.numa.as_ref().and_then(|n| serde_json::to_value(n).ok()),
                            ),
                            progress: Some(10),
                            ..Default::default()
                        },
                    )
                    .await?;
                Ok(Some("networking"))
            }
            // Nothing was claimed: the message comes back and the build
            // resumes at this step.
            Reply::Unavailable(why) => Err(Error::unavailable(format!(
                "the scheduler cannot place servers now: {why}"
            ))),
            Reply::Err(message) => {
                let message = if data.tried.is_empty() {
                    message
                } else {
                    format!(
                        "Build failed on {} host(s) ({}); then: {message}",
                        data.tried.len(),
                        data.tried_summary()
                    )
                };
                self.fail_build(inst, data, &message, "schedule", boot)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Creates or binds the server's ports on the chosen host.
    async fn step_networking(
        self: &Arc<Self>,
        inst: &Instance,
        data: &mut BuildData,
        boot: Boot,
    ) -> Result<Option<&'static str>, Error> {
        let host = data.host.clone().unwrap_or_default();
        match self.ensure_ports(inst, &host, data).await {
            Ok(()) => {
                self.store
                    .instance_update_state(
                        inst.id,
                        &StateUpdate {
                            task_state: Some(Some(boot.task(TaskState::Spawning))),
                            progress: Some(30),
                            ..Default::default()
                        },
                    )
                    .await?;
                Ok(Some("spawning"))
            }
            Err(e @ (Error::Unavailable { .. } | Error::Internal { .. })) => Err(e),
            Err(e) => {
                // A network problem is the user's (address taken, pool
                // exhausted): another host would not help.
                self.fail_build(
                    inst,
                    data,
                    &format!("Network allocation failed: {}", e.external_message()),
                    "networking",
                    boot,
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Arms the deadline, moves the workflow to `waiting`, then casts the
    /// spawn to the host. The step is recorded before the cast, as the
    /// delete workflow does: a fast host (the fake driver answers at once)
    /// may report before a write made after the cast, and a report that
    /// finds the workflow still at `spawning` is ignored as stale, which
    /// left the server building until its spawn deadline.
    async fn step_spawn(
        self: &Arc<Self>,
        wf_id: &str,
        inst: &Instance,
        data: &BuildData,
        boot: Boot,
        request_id: &str,
    ) -> Result<(), Error> {
        let host = data
            .host
            .clone()
            .ok_or_else(|| Error::internal("spawn step without a host"))?;
        let spec = self.boot_spec(inst, &data.ports, boot).await?;
        self.start_spawn_deadline(inst, Some(50)).await?;
        if !self
            .store
            .workflow_advance(wf_id, &self.id, "spawning", "waiting", &data.to_value())
            .await?
        {
            tracing::info!(instance = %inst.id, step = "spawning", "build workflow moved on elsewhere");
            return Ok(());
        }
        let msg = ComputeMsg::Spawn {
            spec: Box::new(spec),
        };
        if let Err(e) = self.cast(&compute_queue(&host), &msg, request_id).await {
            // Nothing reached the host: step back, so that the retried
            // message (or the reconciler) sends the spawn again.
            let _ = self
                .store
                .workflow_advance(wf_id, &self.id, "waiting", "spawning", &data.to_value())
                .await;
            return Err(e);
        }
        Ok(())
    }

    /// Gives `inst` a fresh spawn deadline (now plus `spawn_timeout_secs`)
    /// and `progress` if given: a first spawn and a resent one both wait
    /// that long for the host before the reconciler fails the build.
    async fn start_spawn_deadline(
        &self,
        inst: &Instance,
        progress: Option<i64>,
    ) -> Result<(), Error> {
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    task_deadline: Some(Some(
                        Timestamp::now().plus_seconds(self.config.spawn_timeout_secs),
                    )),
                    progress,
                    ..Default::default()
                },
            )
            .await
    }

    /// Sends the spawn of a build taken over while `waiting` again (a
    /// no-op on a host that has the VM already, which then reports it
    /// again), with a fresh deadline.
    async fn resend_spawn(
        self: &Arc<Self>,
        inst: &Instance,
        data: &BuildData,
        boot: Boot,
        request_id: &str,
    ) -> Result<(), Error> {
        let Some(host) = data.host.clone() else {
            return Ok(());
        };
        tracing::info!(instance = %inst.id, %host, "took over a waiting build; sending the spawn again");
        let spec = self.boot_spec(inst, &data.ports, boot).await?;
        self.start_spawn_deadline(inst, None).await?;
        let msg = ComputeMsg::Spawn {
            spec: Box::new(spec),
        };
        self.cast(&compute_queue(&host), &msg, request_id).await
    }

    /// A host reported a successful spawn.
    pub(crate) async fn build_spawned(
        self: &Arc<Self>,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        let boot = Boot::of(inst);
        let wf_id = workflow_id(inst.id, boot.workflow());
        let Some(wf) = self
            .store
            .workflow_claim_waiting(&wf_id, &self.id, self.config.lease_secs)
            .await?
        else {
            return Ok(());
        };
        let data = BuildData::from(&wf);
        if wf.step != "waiting" || data.host.as_deref() != Some(host) {
            tracing::info!(instance = %inst.id, %host, step = %wf.step, "ignoring a stale spawn report");
            return Ok(());
        }
        if boot == Boot::Unshelve {
            return self
                .unshelve_spawned(inst, host, power_state, &data.ports)
                .await;
        }
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::Active),
                    task_state: Some(None),
                    power_state: Some(power_state),
                    progress: Some(100),
                    launched_at: Some(Timestamp::now()),
                    task_deadline: Some(None),
                    fault: Some(None),
                    ..Default::default()
                },
            )
            .await?;
        self.ports_set_status(&data.ports, "ACTIVE").await?;
        self.store
            .action_event(inst, "create", "compute_spawn", Some(host), true, None)
            .await?;
        self.store.action_finish(inst.id, "create").await?;
        self.store.workflow_finish(&wf_id, "done").await?;
        let boot = (Timestamp::now().micros() - inst.created_at.micros()) as f64 / 1e6;
        cloud_service_common::metrics::observe(
            "cloud_boot_seconds",
            "Time from the create request to ACTIVE.",
            &[],
            boot,
        );
        tracing::info!(instance = %inst.id, %host, boot_s = boot, "server is ACTIVE");
        Ok(())
    }

    /// A spawn failed on `host` (reported by the host, or timed out):
    /// release the claim and try another host, or give up.
    pub(crate) async fn build_failed_on_host(
        self: &Arc<Self>,
        inst: &Instance,
        host: &str,
        error: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let boot = Boot::of(inst);
        let wf_id = workflow_id(inst.id, boot.workflow());
        let Some(wf) = self
            .store
            .workflow_claim_waiting(&wf_id, &self.id, self.config.lease_secs)
            .await?
        else {
            return Ok(());
        };
        let mut data = BuildData::from(&wf);
        if wf.step != "waiting" || data.host.as_deref() != Some(host) {
            tracing::info!(instance = %inst.id, %host, "ignoring a stale spawn failure");
            return Ok(());
        }
        tracing::warn!(instance = %inst.id, %host, %error, "spawn failed; rescheduling");
        self.store
            .action_event(
                inst,
                boot.action(),
                "compute_spawn",
                Some(host),
                false,
                Some(error),
            )
            .await?;
        self.store.host_failure_record(host, inst.id).await?;
        self.store.placement_release(inst.id).await?;
        data.tried.push(TriedHost {
            host: host.to_owned(),
            error: error.to_owned(),
        });
        data.host = None;
        if data.tried.len() >= self.config.max_build_attempts {
            let message = format!(
                "Build of instance {} failed on {} host(s), giving up after the maximum number \
                 of attempts: {}",
                inst.id,
                data.tried.len(),
                data.tried_summary()
            );
            self.store
                .workflow_advance(&wf_id, &self.id, "waiting", "waiting", &data.to_value())
                .await?;
            self.fail_build(inst, &data, &message, "compute_spawn", boot)
                .await?;
            return Ok(());
        }
        if self
            .store
            .workflow_advance(&wf_id, &self.id, "waiting", "schedule", &data.to_value())
            .await?
        {
            self.store
                .instance_update_state(
                    inst.id,
                    &StateUpdate {
                        task_deadline: Some(None),
                        ..Default::default()
                    },
                )
                .await?;
            self.boot(inst.id, boot, request_id).await?;
        }
        Ok(())
    }

    /// Ends a build in ERROR with `message` as the fault, releasing the
    /// host claim and the ports.
    pub(crate) async fn fail_build(
        self: &Arc<Self>,
        inst: &Instance,
        data: &BuildData,
        message: &str,
        event: &str,
        boot: Boot,
    ) -> Result<(), Error> {
        if boot == Boot::Unshelve {
            return self.unshelve_failed(inst, data, message, event).await;
        }
        tracing::warn!(instance = %inst.id, %message, "build failed");
        self.store.placement_release(inst.id).await?;
        self.release_ports(inst, data).await?;
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    vm_state: Some(VmState::Error),
                    task_state: Some(None),
                    power_state: Some(PowerState::NoState),
                    host: Some(None),
                    task_deadline: Some(None),
                    numa_placement: Some(None),
                    fault: Some(Some(Fault {
                        code: 500,
                        message: message.to_owned(),
                        details: data.tried_summary(),
                        created: Timestamp::now(),
                    })),
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(inst, "create", event, None, false, Some(message))
            .await?;
        self.store.action_finish(inst.id, "create").await?;
        self.store
            .workflow_finish(&workflow_id(inst.id, "build"), "failed")
            .await?;
        Ok(())
    }

    /// The build workflow's data, for the delete workflow.
    pub(crate) async fn build_data(&self, id: InstanceId) -> Result<BuildData, Error> {
        Ok(self
            .store
            .workflow_get(&workflow_id(id, "build"))
            .await?
            .map(|wf| BuildData::from(&wf))
            .unwrap_or_default())
    }
}
