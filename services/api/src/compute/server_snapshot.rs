//! The `createImage` server action: the server's root disk captured and
//! uploaded as a new image of the project.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::response::Response;
use serde_json::Value;

/// Runs `createImage` on server `id`.
pub async fn create_image(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id, args);
    Err(ApiError::bad_request("Not implemented yet."))
}
