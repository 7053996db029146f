//! Serial consoles: `os-getSerialConsole`, `remote-consoles`, and the
//! websocket proxy to the guest's serial port.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::response::Response;
use serde_json::Value;

/// Runs `os-getSerialConsole` on server `id`.
pub async fn get_serial_console(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    let _ = (state, ctx, id, request_id, args);
    Err(ApiError::bad_request("Not implemented yet."))
}
