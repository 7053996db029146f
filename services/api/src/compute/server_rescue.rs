//! The `rescue` and `unrescue` server actions.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::response::Response;
use serde_json::Value;

/// Runs `rescue` on server `id`.
pub async fn rescue(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id, args);
    Err(ApiError::bad_request("Not implemented yet."))
}

/// Runs `unrescue` on server `id`.
pub async fn unrescue(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id);
    Err(ApiError::bad_request("Not implemented yet."))
}
