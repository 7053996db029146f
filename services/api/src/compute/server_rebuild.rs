//! The `rebuild` server action: a fresh root disk from a (new) image; the
//! server keeps its id, ports and addresses.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::response::Response;
use serde_json::Value;

/// Runs `rebuild` on server `id`.
pub async fn rebuild(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id, args);
    Err(ApiError::bad_request("Not implemented yet."))
}
