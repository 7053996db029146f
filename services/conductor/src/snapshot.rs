//! Snapshots (createImage): applying the host's report of a captured and
//! uploaded root disk.

use crate::Conductor;
use cloud_model::Error;
use cloud_model::instance::{Instance, PowerState};

impl Conductor {
    /// The host finished (or failed, with `failure`) the snapshot of
    /// `inst` into image `image_id`.
    pub(crate) async fn snapshotted(
        &self,
        inst: &Instance,
        host: &str,
        power_state: PowerState,
        image_id: &str,
        failure: Option<&str>,
    ) -> Result<(), Error> {
        let _ = (inst, host, power_state, image_id, failure);
        Ok(())
    }
}
