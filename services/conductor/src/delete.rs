//! The delete workflow: `destroy` (cast to the host) -> `waiting` (for
//! the host) -> `cleanup` (release the claim, the ports and the quota,
//! mark the server deleted). When the host is down, or does not answer
//! within `delete_timeout_secs`, the cleanup runs without it; the host
//! reaps the VM when it comes back.

use crate::Conductor;
use cloud_bus::compute_queue;
use cloud_model::instance::Instance;
use cloud_model::{Error, InstanceId, Timestamp};
use cloud_rpc::ComputeMsg;
use cloud_store::{StateUpdate, workflow_id};
use std::sync::Arc;

impl Conductor {
    /// Runs or resumes the delete of `id`.
    pub(crate) async fn delete(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        let wf_id = workflow_id(id, "delete");
        let Some(wf) = self
            .store
            .workflow_claim_waiting(&wf_id, &self.id, self.config.lease_secs)
            .await?
        else {
            return Ok(());
        };
        let inst = self.store.instance_get_any(id).await?;
        if inst.deleted_at.is_some() {
            self.store.workflow_finish(&wf_id, "done").await?;
            return Ok(());
        }
        match wf.step.as_str() {
            "destroy" => {
                let host_up = match &inst.host {
                    Some(h) => self.host_is_up(h).await?,
                    None => false,
                };
                match (&inst.host, host_up) {
                    (Some(host), true) => {
                        self.store
                            .instance_update_state(
                                id,
                                &StateUpdate {
                                    task_deadline: Some(Some(
                                        Timestamp::now()
                                            .plus_seconds(self.config.delete_timeout_secs),
                                    )),
                                    ..Default::default()
                                },
                            )
                            .await?;
                        if self
                            .store
                            .workflow_advance(&wf_id, &self.id, "destroy", "waiting", &wf.data)
                            .await?
                        {
                            self.cast(
                                &compute_queue(host),
                                &ComputeMsg::Destroy { instance_id: id },
                                request_id,
                            )
                            .await?;
                        }
                        Ok(())
                    }
                    (host, _) => {
                        if let Some(h) = host {
                            tracing::warn!(instance = %id, host = %h, "host is down; deleting without it");
                            self.store
                                .action_event(
                                    &inst,
                                    "delete",
                                    "compute_terminate",
                                    Some(h),
                                    false,
                                    Some("the host is down; the VM will be removed when it comes back"),
                                )
                                .await?;
                        }
                        self.delete_cleanup(&inst).await
                    }
                }
            }
            "waiting" => Ok(()),
            _ => self.delete_cleanup(&inst).await,
        }
    }

    /// The host destroyed the VM (or will never answer): finish the delete.
    pub(crate) async fn delete_cleanup(self: &Arc<Self>, inst: &Instance) -> Result<(), Error> {
        let data = self.build_data(inst.id).await?;
        self.store.placement_release(inst.id).await?;
        self.release_ports(inst, &data).await?;
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
