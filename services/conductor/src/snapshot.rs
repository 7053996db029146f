//! Snapshots (createImage): applying the host's report of a captured and
//! uploaded root disk.
//!
//! The server never leaves its vm_state during a snapshot; the conductor
//! only clears the `image_snapshot` task and finishes the `createImage`
//! instance action (its event `compute_snapshot_instance`, failed with the
//! host's message when the snapshot failed). A failed snapshot's image is
//! deleted, as Nova does, so the user is not left with an image that will
//! never fill. Reports are idempotent: a repeated one finds the task
//! already cleared and only makes sure a failed snapshot's image is gone.

use crate::Conductor;
use cloud_model::instance::{Instance, PowerState, TaskState};
use cloud_model::{Error, ImageId};
use cloud_store::StateUpdate;

/// The action and its event, as Nova names them.
const ACTION: &str = "createImage";
const EVENT: &str = "compute_snapshot_instance";

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
        let failure = match failure {
            Some(message) => {
                self.discard_failed_snapshot(inst, image_id, message)
                    .await?
            }
            None => None,
        };
        if inst.task_state != Some(TaskState::ImageSnapshot) {
            return Ok(());
        }
        self.end_snapshot(inst, Some(host), Some(power_state), failure.as_deref())
            .await
    }

    /// The host did not report the snapshot before its deadline: the task
    /// ends as a failure and the images it was filling are removed.
    pub(crate) async fn snapshot_timed_out(&self, inst: &Instance) -> Result<(), Error> {
        tracing::warn!(instance = %inst.id, host = ?inst.host, "snapshot timed out");
        for image in self.store.image_snapshots_of(inst.id).await? {
            if image.status != "active"
                && image.properties.get("image_type").map(String::as_str) == Some("snapshot")
            {
                self.delete_image(inst, image.id).await?;
            }
        }
        self.end_snapshot(
            inst,
            inst.host.as_deref(),
            None,
            Some("the host did not report the snapshot in time; its image was deleted"),
        )
        .await
    }

    /// Deletes the image of a failed snapshot and says why it failed; `None`
    /// when the image turned out complete after all (its upload went
    /// through but the report of it was lost), which is then a success.
    async fn discard_failed_snapshot(
        &self,
        inst: &Instance,
        image_id: &str,
        message: &str,
    ) -> Result<Option<String>, Error> {
        let Some(id) = ImageId::parse(image_id) else {
            return Ok(Some(message.to_owned()));
        };
        match self.store.image_get(id, &cloud_store::Scope::All).await {
            Ok(image) if image.status == "active" => {
                tracing::info!(instance = %inst.id, image = %id,
                    "the snapshot's image is active although the host reported a failure");
                Ok(None)
            }
            Ok(_) => {
                self.delete_image(inst, id).await?;
                Ok(Some(message.to_owned()))
            }
            Err(Error::NotFound { .. }) => Ok(Some(message.to_owned())),
            Err(e) => Err(e),
        }
    }

    async fn delete_image(&self, inst: &Instance, id: ImageId) -> Result<(), Error> {
        tracing::info!(instance = %inst.id, image = %id, "deleting the image of a failed snapshot");
        match self.store.image_delete(id).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Clears the task and finishes the action (failed with `failure`).
    async fn end_snapshot(
        &self,
        inst: &Instance,
        host: Option<&str>,
        power_state: Option<PowerState>,
        failure: Option<&str>,
    ) -> Result<(), Error> {
        self.store
            .instance_update_state(
                inst.id,
                &StateUpdate {
                    task_state: Some(None),
                    task_deadline: Some(None),
                    power_state,
                    ..Default::default()
                },
            )
            .await?;
        self.store
            .action_event(inst, ACTION, EVENT, host, failure.is_none(), failure)
            .await?;
        self.store.action_finish(inst.id, ACTION).await
    }
}
