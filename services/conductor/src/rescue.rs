//! Rescue and unrescue: boot a server from a rescue image with its own
//! root disk attached second, and back.
//!
//! The API moved the server into `rescuing` and checked the image; here
//! the server's spec (its NICs, as built) is made and cast to its host
//! with the rescue image. The host's report ends the task: `Rescued` puts
//! the server in vm_state `rescued` (RESCUE), `Unrescued` back to ACTIVE.
//! A rescue that cannot even be sent (the image or a port vanished
//! meanwhile) fails at once as a failed `compute_rescue` event rather than
//! waiting for the task's deadline.

use crate::Conductor;
use crate::build::BuildData;
use cloud_bus::compute_queue;
use cloud_model::instance::{Instance, PowerState, TaskState, VmState};
use cloud_model::{Error, ImageId, InstanceId, PortId};
use cloud_rpc::ComputeMsg;
use cloud_store::{PortFilter, Scope, StateUpdate, workflow_id};
use std::sync::Arc;

impl Conductor {
    /// Builds the spec of server `id` and casts its rescue to its host.
    /// A duplicate message (the server is no longer `rescuing`) does
    /// nothing.
    pub(crate) async fn rescue(
        self: &Arc<Self>,
        id: InstanceId,
        rescue_image_ref: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let inst = match self.store.instance_get_any(id).await {
            Ok(i) => i,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(host) = inst.host.clone() else {
            return Ok(());
        };
        if inst.deleted_at.is_some() || inst.task_state != Some(TaskState::Rescuing) {
            tracing::debug!(instance = %id, "not rescuing (any more); nothing to send");
            return Ok(());
        }
        let msg = match self.rescue_message(&inst, rescue_image_ref).await {
            Ok(msg) => msg,
            Err(e @ Error::Unavailable { .. }) => return Err(e),
            Err(e) => {
                let why = format!("cannot prepare the rescue: {e}");
                return self.rescue_not_sent(&inst, &host, &why).await;
            }
        };
        self.cast(&compute_queue(&host), &msg, request_id).await
    }

    /// `ComputeMsg::Rescue`: the server as built, and the rescue image.
    async fn rescue_message(
        &self,
        inst: &Instance,
        rescue_image_ref: &str,
    ) -> Result<ComputeMsg, Error> {
        let ports = self.server_ports(inst).await?;
        let spec = self.vm_spec(inst, &ports).await?;
        let image_id = ImageId::parse(rescue_image_ref)
            .ok_or_else(|| Error::invalid(format!("'{rescue_image_ref}' is not an image id")))?;
        // The rescue image as the host must fetch and verify it: the spec
        // of the server as if it were booted from that image.
        let as_rescue = Instance {
            image_id,
            ..inst.clone()
        };
        let rescue_image = self.vm_spec(&as_rescue, &[]).await?.image;
        Ok(ComputeMsg::Rescue {
            spec: Box::new(spec),
            rescue_image,
        })
    }

    /// The server's ports in NIC order: the build's order, then any the
    /// build did not make (attached later).
    pub(crate) async fn server_ports(&self, inst: &Instance) -> Result<Vec<PortId>, Error> {
        let built: Vec<PortId> = match self
            .store
            .workflow_get(&workflow_id(inst.id, "build"))
            .await?
        {
            Some(wf) => serde_json::from_value::<BuildData>(wf.data)
                .map(|d| d.ports)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let mut attached: Vec<PortId> = self
            .store
            .port_list(&PortFilter {
                device_id: Some(inst.id.to_string()),
                ..PortFilter::all(Scope::All)
            })
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        attached.sort_by_key(|p| built.iter().position(|b| b == p).unwrap_or(usize::MAX));
        Ok(attached)
    }

    /// Ends a rescue that never reached the host: the server keeps its
    /// state, and the action shows why.
    async fn rescue_not_sent(&self, inst: &Instance, host: &str, why: &str) -> Result<(), Error> {
        tracing::warn!(instance = %inst.id, %host, %why, "rescue failed before the host");
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
                "rescue",
                "compute_rescue",
                Some(host),
                false,
                Some(why),
            )
            .await?;
        self.store.action_finish(inst.id, "rescue").await
    }

    /// The host booted the server from its rescue image.
    pub(crate) async fn rescued(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        self.finish_action(
            inst,
            host,
            TaskState::Rescuing,
            "rescue",
            VmState::Rescued,
            power_state,
        )
        .await
    }

    /// The host booted the server from its own disk again.
    pub(crate) async fn unrescued(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        self.finish_action(
            inst,
            host,
            TaskState::Unrescuing,
            "unrescue",
            VmState::Active,
            power_state,
        )
        .await
    }
}
