//! The `trigger_crash_dump` server action: the server's host sends the
//! guest a non-maskable interrupt, which a kernel set up for it answers
//! with a crash dump (how a user debugs a hung guest).
//!
//! Nova added this action in microversion 2.17; we serve 2.1 only, and
//! raising the maximum would promise every 2.2..2.17 response shape, so we
//! accept the action at 2.1 as an extension (the body is Nova's, clients
//! that ask for it send exactly this). As in Nova it needs an ACTIVE or
//! PAUSED server with no task running (a 409 names the state that blocks
//! it) and is refused on a locked server. Unlike Nova it is a call to the
//! host rather than a cast: an NMI is instant, and a host whose driver has
//! none must be a 400 the user sees, not a fault they never hear of.

use crate::auth::{Action, Ctx};
use crate::compute::server_lock::refuse_if_locked;
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_bus::compute_queue;
use cloud_model::Error;
use cloud_model::instance::{Instance, VmState};
use cloud_rpc::{ComputeMsg, CrashDump, Reply};
use std::time::Duration;

/// The instance action's name (Nova's).
const ACTION: &str = "trigger_crash_dump";
/// How long the host may take to send the NMI.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `trigger_crash_dump` on server `id`: 202 once the NMI was sent.
pub async fn trigger_crash_dump(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(state, ctx, id).await?;
    let host = check_state(&inst)?;
    refuse_if_locked(state, ctx, &inst).await?;
    state
        .store()
        .action_start(inst.id, request_id, ACTION, &inst.project_id, ctx.user_id())
        .await?;
    let outcome = send_nmi(state, &inst, &host, request_id).await;
    let (ok, details) = match &outcome {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e.0.message.as_str())),
    };
    let store = state.store();
    store
        .action_event(
            &inst,
            ACTION,
            "compute_trigger_crash_dump",
            Some(&host),
            ok,
            details,
        )
        .await?;
    store.action_finish(inst.id, ACTION).await?;
    outcome.map(|()| StatusCode::ACCEPTED.into_response())
}

/// The server's host, if its state allows a crash dump (Nova: ACTIVE or
/// PAUSED, no task).
fn check_state(inst: &Instance) -> Result<String, ApiError> {
    let blocking = match inst.task_state {
        Some(t) => Some(format!("task_state {}", t.as_str())),
        None if !matches!(inst.vm_state, VmState::Active | VmState::Paused) => {
            Some(format!("vm_state {}", inst.vm_state.as_str()))
        }
        None => None,
    };
    match (blocking, &inst.host) {
        (None, Some(host)) => Ok(host.clone()),
        (blocking, _) => Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "Cannot '{ACTION}' instance {} while it is in {}.",
                inst.id,
                blocking.unwrap_or_else(|| "no host".to_owned())
            ),
        )),
    }
}

/// Asks the host to send the NMI and turns its answer into the user's.
async fn send_nmi(
    state: &AppState,
    inst: &Instance,
    host: &str,
    request_id: &str,
) -> Result<(), ApiError> {
    let msg = ComputeMsg::TriggerCrashDump {
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
    match cloud_rpc::decode_reply::<CrashDump>(&reply).map_err(Error::from)? {
        Reply::Ok(CrashDump::Injected) => Ok(()),
        Reply::Ok(CrashDump::Unsupported { message }) => Err(ApiError::bad_request(format!(
            "Cannot trigger a crash dump of instance {}: {message} (the hypervisor of its \
             host does not support it).",
            inst.id
        ))),
        Reply::Err(m) => Err(ApiError::new(
            FaultKind::Conflict,
            format!("Cannot trigger a crash dump of instance {}: {m}", inst.id),
        )),
        Reply::Unavailable(m) => Err(Error::unavailable(format!(
            "Cannot trigger a crash dump of instance {} now: {m}",
            inst.id
        ))
        .into()),
    }
}
