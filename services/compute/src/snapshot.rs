//! Snapshots on the agent: the driver captures the root disk into a local
//! file, and the agent uploads it through the image API.

use crate::Agent;
use cloud_model::InstanceId;

impl Agent {
    /// Captures server `id`'s root disk and uploads it into image
    /// `image_id`; the error is in words for the user.
    pub(crate) async fn capture_and_upload(
        &self,
        id: InstanceId,
        image_id: &str,
    ) -> Result<(), String> {
        let _ = (id, image_id);
        Err("snapshots are not implemented yet".to_owned())
    }
}
