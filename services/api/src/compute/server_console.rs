//! Serial consoles: `os-getSerialConsole` hands out a `ws://` URL with a
//! one-time token ([`crate::console_tokens`]); the websocket behind it is
//! the console proxy ([`crate::console_proxy`]), which connects it to the
//! guest's serial port on the server's host.
//!
//! As in Nova, only the `serial` type is served (noVNC, SPICE, RDP and MKS
//! consoles are not offered here), the server must be running or paused
//! on a host, and asking for a URL records no instance action. Nova's
//! `POST /servers/{id}/remote-consoles` exists from microversion 2.6; at
//! our maximum of 2.1 Nova answers it with a 404, and so do we (see
//! docs/adr/0012-serial-console-proxy.md).

use crate::auth::{Action, Ctx};
use crate::compute::servers::load;
use crate::console_tokens::{self, SERIAL};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::Json;
use axum::response::{IntoResponse, Response};
use cloud_bus::compute_queue;
use cloud_driver::SerialEndpoint;
use cloud_model::Error;
use cloud_model::instance::{Instance, VmState};
use cloud_rpc::{ComputeMsg, Reply};
use serde_json::{Value, json};
use std::time::Duration;

/// How long the host may take to say where a console is.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `os-getSerialConsole` on server `id`: 200 with the console's URL.
pub async fn get_serial_console(
    state: &AppState,
    ctx: &Ctx,
    base: &str,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    // A serial console is a root shell on many guests: a write, as in
    // Nova's policy (project members and admins).
    ctx.authorize(Action::ServerWrite)?;
    requested_type(args)?;
    let inst = load(state, ctx, id).await?;
    let host = console_host(&inst)?;
    // Asked now so that a host that cannot serve it is an error here, not
    // a websocket that closes at once.
    serial_endpoint(state, &inst, &host, request_id).await?;
    let token = console_tokens::issue(state, inst.id, SERIAL).await?;
    let url = crate::console_proxy::console_url(state, base, inst.id, &token);
    Ok(Json(json!({"console": {"type": SERIAL, "url": url}})).into_response())
}

/// The answer to the graphical console actions (`os-getVNCConsole`,
/// `os-getSPICEConsole`, `os-getRDPConsole`): a 400 saying only serial
/// consoles are offered, as `openstack console url show` asks for noVNC
/// by default.
pub fn graphical_console(action: &str) -> ApiError {
    ApiError::bad_request(format!(
        "'{action}' is not supported: this cloud offers serial consoles only \
         (os-getSerialConsole with type 'serial'; openstack console url show --serial)."
    ))
}

/// Checks the body's `type`: `serial` only.
fn requested_type(args: &Value) -> Result<(), ApiError> {
    match args.get("type") {
        Some(Value::String(t)) if t == SERIAL => Ok(()),
        Some(Value::String(t)) => Err(ApiError::bad_request(format!(
            "Invalid input for field 'os-getSerialConsole.type': '{t}' is not supported: this \
             cloud offers serial consoles only (type 'serial'); noVNC, SPICE, RDP and MKS \
             consoles are not available."
        ))),
        _ => Err(ApiError::bad_request(
            "Invalid input for field 'os-getSerialConsole.type': a string is required \
             ('serial').",
        )),
    }
}

/// The server's host, if its console can be reached: the server is
/// ACTIVE or PAUSED on a host (a 409 naming the state otherwise).
pub(crate) fn console_host(inst: &Instance) -> Result<String, ApiError> {
    match (&inst.host, inst.vm_state) {
        (Some(host), VmState::Active | VmState::Paused) => Ok(host.clone()),
        (host, vm_state) => Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "Cannot get the serial console of instance {} while it is in vm_state {}{}.",
                inst.id,
                vm_state.as_str(),
                if host.is_none() { " on no host" } else { "" }
            ),
        )),
    }
}

/// Asks `host` where the server's serial port is served.
pub(crate) async fn serial_endpoint(
    state: &AppState,
    inst: &Instance,
    host: &str,
    request_id: &str,
) -> Result<SerialEndpoint, ApiError> {
    let msg = ComputeMsg::SerialConsole {
        instance_id: inst.id,
    };
    let env = cloud_rpc::encode(&msg, request_id).map_err(Error::from)?;
    let reply = state
        .bus()
        .call(&compute_queue(host), env, CALL_TIMEOUT)
        .await
        .map_err(|e| {
            ApiError::new(
                FaultKind::Unavailable,
                format!("The host of instance {} did not answer: {e}", inst.id),
            )
        })?;
    match cloud_rpc::decode_reply::<SerialEndpoint>(&reply).map_err(Error::from)? {
        Reply::Ok(endpoint) => Ok(endpoint),
        Reply::Err(m) => Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "The serial console of instance {} is not available: {m}",
                inst.id
            ),
        )),
        Reply::Unavailable(m) => Err(Error::unavailable(format!(
            "The serial console of instance {} is not available now: {m}",
            inst.id
        ))
        .into()),
    }
}
