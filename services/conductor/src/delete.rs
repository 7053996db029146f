//! The delete workflow: `destroy` (cast to the host) -> `waiting` (for
//! the host) -> `cleanup` (release the claim, the ports and the quota,
//! mark the server deleted). The server is marked deleted only once its
//! host confirmed, or when the host is down (the host reaps the VM when it
//! comes back): a host that is up but did not answer within
//! `delete_timeout_secs` is sent the destroy again (ADR 0009).

use crate::Conductor;
use cloud_bus::compute_queue;
use cloud_model::instance::Instance;
use cloud_model::{Error, InstanceId, Timestamp};
use cloud_rpc::ComputeMsg;
use cloud_store::{StateUpdate, Workflow, workflow_id};
use std::sync::Arc;

impl Conductor {
    /// Runs or resumes the delete of `id`.
    pub(crate) async fn delete(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        let wf_id = workflow_id(id, "delete");
        let Some(claimed) = self.claim(&wf_id, true).await? else {
            return Ok(());
        };
        let r = self
            .run_delete(&claimed.wf, claimed.taken_over, request_id)
            .await;
        if r.is_err() {
            self.release_after_failure(&wf_id).await;
        }
        drop(claimed);
        r
    }

    /// The steps of a delete we hold.
    async fn run_delete(
        self: &Arc<Self>,
        wf: &Workflow,
        taken_over: bool,
        request_id: &str,
    ) -> Result<(), Error> {
        let inst = self.store.instance_get_any(wf.instance_id).await?;
        if inst.deleted_at.is_some() {
            self.store.workflow_finish(&wf.id, "done").await?;
            return Ok(());
        }
        match wf.step.as_str() {
            "destroy" => self.send_destroy(&inst, Some(wf), request_id).await,
            // Our predecessor recorded the step and may have died before
            // the host heard of it: tell the host (again).
            "waiting" if taken_over => self.send_destroy(&inst, None, request_id).await,
            "waiting" => Ok(()),
            _ => self.delete_cleanup(&inst).await,
        }
    }

    /// Asks the server's host to destroy the VM, with a deadline, moving
    /// `wf` (at `destroy`) to `waiting` first; without `wf` the delete is
    /// waiting already and the destroy is sent again. A server without a
    /// host, or on a host that is down, is deleted without it (the host
    /// reaps the VM when it comes back).
    pub(crate) async fn send_destroy(
        self: &Arc<Self>,
        inst: &Instance,
        wf: Option<&Workflow>,
        request_id: &str,
    ) -> Result<(), Error> {
        let host = match &inst.host {
            Some(h) if self.host_is_up(h).await? => h.clone(),
            host => {
                if let Some(h) = host {
                    tracing::warn!(instance = %inst.id, host = %h, "host is down; deleting without it");
                    self.store
                        .action_event(
                            inst,
                            "delete",
                            "compute_terminate",
                            Some(h),
                            false,
                            Some("the host is down; the VM will be removed when it comes back"),
                        )
                        .await?;
                }
                return self.delete_cleanup(inst).await;
            }
        };
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    task_deadline: Some(Some(
                        Timestamp::now().plus_seconds(self.config.delete_timeout_secs),
                    )),
                    ..Default::default()
                },
            )
            .await?;
        if let Some(wf) = wf
            && !self
                .store
                .workflow_advance(&wf.id, &self.id, "destroy", "waiting", &wf.data)
                .await?
        {
            return Ok(());
        }
        self.cast(
            &compute_queue(&host),
            &ComputeMsg::Destroy {
                instance_id: inst.id,
            },
            request_id,
        )
        .await
    }

    /// The host destroyed the VM (or will never answer): finish the delete.
    pub(crate) async fn delete_cleanup(self: &Arc<Self>, inst: &Instance) -> Result<(), Error> {
        let data = self.build_data(inst.id).await?;
        self.store.placement_release(inst.id).await?;
        self.release_ports(inst, &data).await?;
        self.shelve_deleted(inst).await?;
        self.store.instance_mark_deleted(inst).await?;
        self.store
            .workflow_finish(&workflow_id(inst.id, "build"), "aborted")
            .await?;
        self.store.action_finish(inst.id, "delete").await?;
        self.store
            .workflow_finish(&workflow_id(inst.id, "delete"), "done")
            .await?;
        tracing::info!(instance = %inst.id, "server deleted");
        Ok(())
    }

    /// Whether `host`'s compute service is alive and not forced down.
    pub(crate) async fn host_is_up(&self, host: &str) -> Result<bool, Error> {
        let now = Timestamp::now();
        Ok(self.store.service_list().await?.iter().any(|s| {
            s.host == host
                && s.binary == "cloud-compute"
                && s.is_up(now, self.config.service_down_secs)
        }))
    }
}
