//! The `shelve`, `shelveOffload` and `unshelve` server actions.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::response::Response;
use serde_json::Value;

/// Runs `shelve` on server `id`.
pub async fn shelve(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id);
    Err(ApiError::bad_request("Not implemented yet."))
}

/// Runs `shelveOffload` on server `id`.
pub async fn shelve_offload(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id);
    Err(ApiError::bad_request("Not implemented yet."))
}

/// Runs `unshelve` on server `id`.
pub async fn unshelve(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id, args);
    Err(ApiError::bad_request("Not implemented yet."))
}
