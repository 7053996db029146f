//! The image storage quota: Glance's `image_size_total`, the bytes of image
//! data one project may store (issue 16, finding 10).
//!
//! The limit is the configured default (`[quotas] image_size_total`) or the
//! project's own (a `quota_limits` row of that name); -1 is unlimited. An
//! upload is held to what is left three times: at once when it announces
//! its size (`Content-Length`), while it streams (receiving stops as soon
//! as it goes over, so nothing is buffered or kept), and when it is
//! recorded, in the store's transaction (two uploads finishing together
//! cannot both take the same room). Over the limit is Glance's 413.

use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use cloud_model::ProjectId;

/// What a project may still store, when it is limited.
#[derive(Clone, Copy, Debug)]
pub struct Room {
    /// The project's `image_size_total`, in bytes.
    pub limit: i64,
    /// The bytes of its images' data so far.
    pub used: i64,
}

impl Room {
    /// The bytes an upload may still bring.
    pub fn left(&self) -> u64 {
        u64::try_from(self.limit.saturating_sub(self.used)).unwrap_or(0)
    }

    /// The 413 for an upload of `size` bytes (or more, when `at_least`).
    pub fn refuse(&self, project: &ProjectId, size: u64, at_least: bool) -> ApiError {
        ApiError::new(
            FaultKind::OverQuota,
            format!(
                "Image storage quota exceeded: {}{size} bytes of image data do not fit in what \
                 project {project} has left ({} of its image_size_total limit of {} bytes are \
                 used). Delete images or ask an admin for a higher limit.",
                if at_least { "more than " } else { "" },
                self.used,
                self.limit
            ),
        )
    }
}

/// The room `project` has for image data; `None` when it is unlimited.
pub async fn room(state: &AppState, project: &ProjectId) -> ApiResult<Option<Room>> {
    let defaults = &state.config().quotas;
    let limit = state
        .store()
        .quota_limits(project, defaults)
        .await?
        .get("image_size_total")
        .copied()
        .unwrap_or(defaults.image_size_total);
    if limit < 0 {
        return Ok(None);
    }
    let used = state.store().image_bytes_used(project).await?;
    Ok(Some(Room { limit, used }))
}

/// The size an upload announces (`Content-Length`), if it does.
pub fn announced_size(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
