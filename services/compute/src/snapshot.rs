//! Snapshots on the agent: the driver captures the root disk into a local
//! file, and the agent uploads it through the image API.
//!
//! The agent has no database credentials, so a snapshot reaches the image
//! store the way a user's upload does: with the service account of
//! `[image_api]` (the same [`HttpImageFetcher`] and token that download
//! images), `PUT /v2/images/{id}/file` into the queued image the API
//! created. The image API's upload path moves it `saving` -> `active` and
//! records size and checksums. The captured file lives in a scratch
//! directory only while it is uploaded, and is removed whatever happens.

use crate::Agent;
use crate::image_fetcher::HttpImageFetcher;
use cloud_model::InstanceId;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an agent's snapshots go: the image API client and the directory
/// captured disks wait in while they upload.
pub(crate) struct SnapshotUploads {
    api: Arc<HttpImageFetcher>,
    scratch_dir: PathBuf,
}

/// The default scratch directory, for agents that were given none.
pub fn default_scratch_dir(host: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cloud-compute-{host}-snapshots"))
}

impl Agent {
    /// Lets this agent upload snapshots with `api` (the image fetcher the
    /// driver downloads with, or another with the same service account),
    /// keeping captured disks in `scratch_dir` while they upload (it should
    /// be on a disk with room for a root disk: the driver's state
    /// directory). An agent without it fails every snapshot, saying why.
    /// A second call changes nothing.
    pub fn with_image_api(
        self: Arc<Self>,
        api: Arc<HttpImageFetcher>,
        scratch_dir: PathBuf,
    ) -> Arc<Self> {
        let _ = self
            .snapshot_uploads
            .set(SnapshotUploads { api, scratch_dir });
        self
    }

    /// Captures server `id`'s root disk and uploads it into image
    /// `image_id`; the error is in words for the user.
    pub(crate) async fn capture_and_upload(
        &self,
        id: InstanceId,
        image_id: &str,
    ) -> Result<(), String> {
        let uploads = self.snapshot_uploads.get().ok_or_else(|| {
            format!(
                "host {} cannot upload snapshots: its agent has no image API account \
                 ([image_api])",
                self.config.host
            )
        })?;
        tokio::fs::create_dir_all(&uploads.scratch_dir)
            .await
            .map_err(|e| {
                format!(
                    "cannot create the snapshot directory {}: {e}",
                    uploads.scratch_dir.display()
                )
            })?;
        let file = uploads.scratch_dir.join(format!("{image_id}.disk"));
        let result = capture_then_upload(self, uploads, id, image_id, &file).await;
        if let Err(e) = tokio::fs::remove_file(&file).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), error = %e, "cannot remove a snapshot file");
        }
        match &result {
            Ok(()) => tracing::info!(instance = %id, image = image_id, "snapshot uploaded"),
            Err(e) => {
                tracing::warn!(instance = %id, image = image_id, error = %e, "snapshot failed")
            }
        }
        result
    }
}

/// The two steps: the driver's capture into `file`, then the upload.
async fn capture_then_upload(
    agent: &Agent,
    uploads: &SnapshotUploads,
    id: InstanceId,
    image_id: &str,
    file: &Path,
) -> Result<(), String> {
    // A file left by an earlier attempt (a crash mid-upload) is stale.
    let _ = tokio::fs::remove_file(file).await;
    let disk = agent
        .driver
        .snapshot(id, file)
        .await
        .map_err(|e| e.full_message())?;
    tracing::info!(instance = %id, image = image_id, format = %disk.disk_format,
        bytes = disk.size, "root disk captured; uploading");
    uploads
        .api
        .upload(image_id, file, &disk.disk_format)
        .await
        .map_err(|e| format!("the upload to the image API failed: {e:#}"))
}
