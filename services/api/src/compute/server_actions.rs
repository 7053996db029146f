//! `POST /servers/{id}/action`: start, stop, reboot, the console log, and
//! adding or removing a security group; lock/unlock (`server_lock`) and
//! pause/unpause/suspend/resume (`server_pause`) and trigger_crash_dump
//! (`server_crash_dump`) live in their own modules.
//!
//! Power actions move the server into a task state with a conditional
//! update (a conflicting state is a 409 that names it), record an instance
//! action, and cast the work to the server's host; the conductor applies
//! the host's report.

use crate::auth::{Action, Ctx};
use crate::compute::server_crash_dump::trigger_crash_dump;
use crate::compute::server_lock::{self, refuse_if_locked};
use crate::compute::server_pause::{Freeze, freeze};
use crate::compute::server_security_groups::change_security_group;
use crate::compute::servers::load;
use crate::compute::{
    server_console, server_rebuild, server_rescue, server_shelve, server_snapshot,
};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{BaseUrl, JsonBody};
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_bus::compute_queue;
use cloud_driver::RebootKind;
use cloud_model::instance::{Instance, TaskState, VmState};
use cloud_model::{Error, Timestamp};
use cloud_rpc::{ComputeMsg, ConsoleOutput};
use cloud_store::GroupChange;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a power action may take before the reconciler clears it.
const ACTION_DEADLINE_SECS: i64 = 300;
/// Most console bytes fetched from a host.
const CONSOLE_MAX_BYTES: usize = 1024 * 1024;

/// Runs a server action.
#[utoipa::path(post, path = "/v2.1/servers/{server_id}/action", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 202, description = "Accepted (power actions)"),
              (status = 200, description = "Console output"),
              (status = 409, description = "The server's state does not allow the action")))]
pub async fn server_action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let obj = body.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
        ApiError::bad_request("The action body must be an object with exactly one action key.")
    })?;
    let (action, args) = obj.iter().next().expect("one key");
    match action.as_str() {
        "os-stop" => {
            ctx.authorize(Action::ServerWrite)?;
            let inst = load(&state, &ctx, &id).await?;
            power(
                &state,
                &ctx,
                &inst,
                &request_id,
                "stop",
                &[VmState::Active],
                &[],
                TaskState::PoweringOff,
                ComputeMsg::PowerOff {
                    instance_id: inst.id,
                },
            )
            .await
        }
        "os-start" => {
            ctx.authorize(Action::ServerWrite)?;
            let inst = load(&state, &ctx, &id).await?;
            power(
                &state,
                &ctx,
                &inst,
                &request_id,
                "start",
                &[VmState::Stopped],
                &[],
                TaskState::PoweringOn,
                ComputeMsg::PowerOn {
                    instance_id: inst.id,
                },
            )
            .await
        }
        "reboot" => {
            ctx.authorize(Action::ServerWrite)?;
            let kind = args.get("type").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input for field 'reboot.type': required, SOFT or HARD.",
                )
            })?;
            let inst = load(&state, &ctx, &id).await?;
            match kind.to_ascii_uppercase().as_str() {
                "SOFT" => {
                    power(
                        &state,
                        &ctx,
                        &inst,
                        &request_id,
                        "reboot",
                        &[VmState::Active],
                        &[],
                        TaskState::Rebooting,
                        ComputeMsg::Reboot {
                            instance_id: inst.id,
                            kind: RebootKind::Soft,
                        },
                    )
                    .await
                }
                "HARD" => {
                    power(
                        &state,
                        &ctx,
                        &inst,
                        &request_id,
                        "reboot",
                        // Nova's ALLOW_HARD_REBOOT: a hard reboot is the way
                        // out of any settled state, a frozen or saved one too.
                        &[
                            VmState::Active,
                            VmState::Stopped,
                            VmState::Paused,
                            VmState::Suspended,
                            VmState::Error,
                        ],
                        &[
                            TaskState::Rebooting,
                            TaskState::PoweringOff,
                            TaskState::PoweringOn,
                        ],
                        TaskState::RebootingHard,
                        ComputeMsg::Reboot {
                            instance_id: inst.id,
                            kind: RebootKind::Hard,
                        },
                    )
                    .await
                }
                other => Err(ApiError::bad_request(format!(
                    "Invalid input for field 'reboot.type': '{other}' is not SOFT or HARD."
                ))),
            }
        }
        "os-getConsoleOutput" => {
            ctx.authorize(Action::ServerRead)?;
            let length = parse_length(args)?;
            let inst = load(&state, &ctx, &id).await?;
            let output = console(&state, &inst, &request_id).await?;
            Ok(Json(json!({"output": tail_lines(&output, length)})).into_response())
        }
        "addSecurityGroup" => {
            change_security_group(&state, &ctx, &id, action, args, GroupChange::Add).await
        }
        "removeSecurityGroup" => {
            change_security_group(&state, &ctx, &id, action, args, GroupChange::Remove).await
        }
        "lock" => server_lock::lock(&state, &ctx, &id, &request_id, args).await,
        "unlock" => server_lock::unlock(&state, &ctx, &id, &request_id).await,
        "pause" => freeze(&state, &ctx, &id, &request_id, Freeze::Pause).await,
        "unpause" => freeze(&state, &ctx, &id, &request_id, Freeze::Unpause).await,
        "suspend" => freeze(&state, &ctx, &id, &request_id, Freeze::Suspend).await,
        "resume" => freeze(&state, &ctx, &id, &request_id, Freeze::Resume).await,
        "trigger_crash_dump" => trigger_crash_dump(&state, &ctx, &id, &request_id).await,
        "rebuild" => server_rebuild::rebuild(&state, &ctx, &id, &request_id, args, &base).await,
        "createImage" => {
            server_snapshot::create_image(&state, &ctx, &id, &request_id, args, &base).await
        }
        "rescue" => server_rescue::rescue(&state, &ctx, &id, &request_id, args).await,
        "unrescue" => server_rescue::unrescue(&state, &ctx, &id, &request_id).await,
        "shelve" => server_shelve::shelve(&state, &ctx, &id, &request_id).await,
        "shelveOffload" => server_shelve::shelve_offload(&state, &ctx, &id, &request_id).await,
        "unshelve" => server_shelve::unshelve(&state, &ctx, &id, &request_id, args).await,
        "os-getSerialConsole" => {
            server_console::get_serial_console(&state, &ctx, &base, &id, &request_id, args).await
        }
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getRDPConsole" => {
            Err(server_console::graphical_console(action))
        }
        other => Err(ApiError::bad_request(format!(
            "Unsupported server action '{other}': supported are os-start, os-stop, reboot, \
             pause, unpause, suspend, resume, lock, unlock, trigger_crash_dump, \
             shelve, shelveOffload, unshelve, createImage, os-getConsoleOutput, \
             addSecurityGroup and removeSecurityGroup."
        ))),
    }
}

/// Starts a power-like action: refused on a locked server (non-admins),
/// then the task state, the instance action, and the cast to the host.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn power(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    request_id: &str,
    action: &str,
    from: &[VmState],
    allow_tasks: &[TaskState],
    task: TaskState,
    msg: ComputeMsg,
) -> ApiResult<Response> {
    let Some(host) = inst.host.clone() else {
        return Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "Cannot '{action}' instance {} while it is in vm_state {}: it is on no host.",
                inst.id,
                inst.vm_state.as_str()
            ),
        ));
    };
    refuse_if_locked(state, ctx, inst).await?;
    state
        .store()
        .instance_begin_task(
            inst.id,
            &ctx.read_scope()?,
            action,
            from,
            allow_tasks,
            task,
            Timestamp::now().plus_seconds(ACTION_DEADLINE_SECS),
        )
        .await?;
    state
        .store()
        .action_start(inst.id, request_id, action, &inst.project_id, ctx.user_id())
        .await?;
    let env = cloud_rpc::encode(&msg, request_id).map_err(Error::from)?;
    if let Err(e) = state.bus().cast(&compute_queue(&host), env).await {
        // The task's deadline clears it if the host never hears of it.
        tracing::warn!(instance = %inst.id, %host, error = %e, "cannot reach the host now");
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn parse_length(args: &Value) -> Result<Option<usize>, ApiError> {
    let raw = match args.get("length") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match raw {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field 'os-getConsoleOutput.length': {raw} is not an integer."
        ))
    })?;
    if n < -1 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'os-getConsoleOutput.length': {n} is less than -1."
        )));
    }
    Ok(if n == -1 { None } else { Some(n as usize) })
}

/// The last `n` elements of `text.split('\n')`, joined again: exactly
/// Nova's semantics, which tempest checks.
pub fn tail_lines(text: &str, n: Option<usize>) -> String {
    match n {
        None => text.to_owned(),
        Some(n) => {
            let parts: Vec<&str> = text.split('\n').collect();
            let start = parts.len().saturating_sub(n);
            parts[start..].join("\n")
        }
    }
}

async fn console(state: &AppState, inst: &Instance, request_id: &str) -> Result<String, ApiError> {
    let Some(host) = &inst.host else {
        return Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "The console of instance {} is not available: it is in vm_state {} on no host.",
                inst.id,
                inst.vm_state.as_str()
            ),
        ));
    };
    let msg = ComputeMsg::ConsoleOutput {
        instance_id: inst.id,
        max_bytes: CONSOLE_MAX_BYTES,
    };
    let env = cloud_rpc::encode(&msg, request_id).map_err(Error::from)?;
    let reply = state
        .bus()
        .call(&compute_queue(host), env, Duration::from_secs(30))
        .await
        .map_err(|e| {
            ApiError::new(
                FaultKind::Unavailable,
                format!("The host of instance {} did not answer: {e}", inst.id),
            )
        })?;
    match cloud_rpc::decode_reply::<ConsoleOutput>(&reply).map_err(Error::from)? {
        cloud_rpc::Reply::Ok(c) => Ok(c.output),
        cloud_rpc::Reply::Err(m) => Err(ApiError::new(
            FaultKind::Conflict,
            format!("The console of instance {} is not available: {m}", inst.id),
        )),
        cloud_rpc::Reply::Unavailable(m) => Err(Error::unavailable(format!(
            "The console of instance {} cannot be read now: {m}",
            inst.id
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::tail_lines;

    #[test]
    fn console_length_is_nova_s() {
        let log = "a\nb\nc\nd\n";
        assert_eq!(tail_lines(log, Some(3)), "c\nd\n");
        assert_eq!(tail_lines(log, Some(3)).split('\n').count(), 3);
        assert_eq!(tail_lines(log, None), log);
        assert_eq!(tail_lines(log, Some(100)), log);
        assert_eq!(tail_lines(log, Some(0)), "");
    }
}
