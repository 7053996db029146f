//! The `shelve`, `shelveOffload` and `unshelve` server actions, with
//! Nova's states and policies.
//!
//! `shelve` (from ACTIVE, SHUTOFF, PAUSED or SUSPENDED) creates the
//! snapshot image record (`<name>-shelved`, private, `image_type=snapshot`,
//! `instance_uuid`), remembers it as the server's shelve snapshot, moves the
//! server to task `shelving` and casts [`ComputeMsg::Shelve`] to its host;
//! the conductor makes it SHELVED and, with `shelved_offload_time` 0,
//! offloads it at once (SHELVED_OFFLOADED: on no host, its allocations
//! released). `shelveOffload` (SHELVED only; admin-only, as Nova's
//! default policy) asks the host to destroy the VM. `unshelve` powers a
//! SHELVED server on where it is, and has the conductor schedule and boot
//! a SHELVED_OFFLOADED one from its snapshot (the `unshelve` workflow).
//! Quotas do not change: a shelved server keeps counting, as in Nova.

use crate::auth::{Action, Ctx};
use crate::compute::server_lock::refuse_if_locked;
use crate::compute::server_snapshot::snapshot_image;
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_bus::compute_queue;
use cloud_model::image::Image;
use cloud_model::instance::{Instance, TaskState, VmState};
use cloud_model::{Error, Timestamp};
use cloud_rpc::{ComputeMsg, ConductorMsg};
use cloud_store::Scope;
use serde_json::Value;
use std::collections::BTreeMap;

/// How long a shelve may take (a snapshot upload, then a power off) before
/// the reconciler gives up on it.
const SHELVE_DEADLINE_SECS: i64 = 1800;
/// How long an offload (a destroy) may take before it is asked again.
const OFFLOAD_DEADLINE_SECS: i64 = 120;
/// How long an unshelve may take before the reconciler looks at it (the
/// conductor gives the spawn its own deadline).
const UNSHELVE_DEADLINE_SECS: i64 = 900;
/// How long the power on of a SHELVED server's VM may take.
const POWER_ON_DEADLINE_SECS: i64 = 300;

/// Nova's `check_instance_state` for `shelve`.
const SHELVE_FROM: [VmState; 4] = [
    VmState::Active,
    VmState::Stopped,
    VmState::Paused,
    VmState::Suspended,
];
/// For `unshelve`.
const UNSHELVE_FROM: [VmState; 2] = [VmState::Shelved, VmState::ShelvedOffloaded];

/// Runs `shelve` on server `id`.
pub async fn shelve(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(state, ctx, id).await?;
    let host = check_state(&inst, "shelve", &SHELVE_FROM)?;
    refuse_if_locked(state, ctx, &inst).await?;
    let image = shelve_image(state, ctx, &inst).await?;
    state.store().image_create(&image).await?;
    if let Err(e) = begin(
        state,
        ctx,
        &inst,
        "shelve",
        &SHELVE_FROM,
        TaskState::Shelving,
        SHELVE_DEADLINE_SECS,
    )
    .await
    {
        // Lost a race with another action: the image would never fill.
        let _ = state.store().image_delete(image.id).await;
        return Err(e);
    }
    state.store().shelve_record(inst.id, image.id).await?;
    record(state, ctx, &inst, request_id, "shelve").await?;
    let msg = ComputeMsg::Shelve {
        instance_id: inst.id,
        image_id: image.id.to_string(),
    };
    cast_to_host(state, &inst, &host, &msg, request_id).await;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Runs `shelveOffload` on server `id`: admins only, as Nova's default
/// `os_compute_api:os-shelve:shelve_offload` policy.
pub async fn shelve_offload(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    if !ctx.is_admin() {
        return Err(ApiError::new(
            FaultKind::Forbidden,
            "Policy doesn't allow os_compute_api:os-shelve:shelve_offload to be performed: \
             only an admin may offload a shelved server.",
        ));
    }
    let inst = load(state, ctx, id).await?;
    let host = check_state(&inst, "shelveOffload", &[VmState::Shelved])?;
    begin(
        state,
        ctx,
        &inst,
        "shelveOffload",
        &[VmState::Shelved],
        TaskState::ShelvingOffloading,
        OFFLOAD_DEADLINE_SECS,
    )
    .await?;
    record(state, ctx, &inst, request_id, "shelveOffload").await?;
    let msg = ComputeMsg::Destroy {
        instance_id: inst.id,
    };
    cast_to_host(state, &inst, &host, &msg, request_id).await;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Runs `unshelve` on server `id` (`{"unshelve": null}` at 2.1).
pub async fn unshelve(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    check_unshelve_body(args)?;
    let inst = load(state, ctx, id).await?;
    let blocking = match inst.task_state {
        Some(t) => Some(format!("task_state {}", t.as_str())),
        None if !UNSHELVE_FROM.contains(&inst.vm_state) => {
            Some(format!("vm_state {}", inst.vm_state.as_str()))
        }
        None => None,
    };
    if let Some(blocking) = blocking {
        return Err(conflict(&inst, "unshelve", &blocking));
    }
    refuse_if_locked(state, ctx, &inst).await?;
    if inst.vm_state == VmState::ShelvedOffloaded {
        check_snapshot(state, &inst).await?;
    }
    let deadline = match inst.vm_state {
        VmState::Shelved => POWER_ON_DEADLINE_SECS,
        _ => UNSHELVE_DEADLINE_SECS,
    };
    let inst = begin(
        state,
        ctx,
        &inst,
        "unshelve",
        &UNSHELVE_FROM,
        TaskState::Unshelving,
        deadline,
    )
    .await?;
    record(state, ctx, &inst, request_id, "unshelve").await?;
    match (inst.vm_state, inst.host.clone()) {
        (VmState::Shelved, Some(host)) => {
            let msg = ComputeMsg::PowerOn {
                instance_id: inst.id,
            };
            cast_to_host(state, &inst, &host, &msg, request_id).await;
        }
        _ => {
            state
                .store()
                .workflow_restart(inst.id, "unshelve", "schedule")
                .await?;
            let msg = ConductorMsg::UnshelveInstance {
                instance_id: inst.id,
            };
            if let Err(e) = state.cast_to_conductor(&msg, request_id).await {
                tracing::warn!(instance = %inst.id, error = %e, "cannot reach the conductors now; the unshelve will be resumed");
            }
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// At 2.1 the body is `null`; an availability zone (an object) came with
/// microversion 2.77, which we do not serve.
fn check_unshelve_body(args: &Value) -> ApiResult<()> {
    match args {
        Value::Null => Ok(()),
        Value::Object(o) if o.contains_key("availability_zone") => Err(ApiError::bad_request(
            "Invalid input for field 'unshelve': 'availability_zone' requires microversion \
             2.77 and this API serves 2.1; send {\"unshelve\": null}.",
        )),
        other => Err(ApiError::bad_request(format!(
            "Invalid input for field 'unshelve': {other} is not null (at microversion 2.1 the \
             body is {{\"unshelve\": null}})."
        ))),
    }
}

/// A SHELVED_OFFLOADED server boots from its shelve snapshot: it must
/// still be there (its owner may have deleted it).
async fn check_snapshot(state: &AppState, inst: &Instance) -> ApiResult<()> {
    let why = match state.store().shelve_get(inst.id).await? {
        None => "it has no shelve snapshot".to_owned(),
        Some(s) => match state.store().image_get(s.image_id, &Scope::All).await {
            Ok(image) if image.status == "active" => return Ok(()),
            Ok(image) => format!(
                "its shelve snapshot {} is {}, not active",
                image.id, image.status
            ),
            Err(Error::NotFound { .. }) => {
                format!("its shelve snapshot {} was deleted", s.image_id)
            }
            Err(e) => return Err(e.into()),
        },
    };
    Err(ApiError::new(
        FaultKind::Conflict,
        format!("Cannot 'unshelve' instance {}: {why}.", inst.id),
    ))
}

/// The server's host, if its state allows `action` (a 409 naming the
/// state otherwise). The store checks again when the task begins.
fn check_state(inst: &Instance, action: &str, from: &[VmState]) -> ApiResult<String> {
    let blocking = match (inst.task_state, &inst.host) {
        (Some(t), _) => format!("task_state {}", t.as_str()),
        (None, _) if !from.contains(&inst.vm_state) => {
            format!("vm_state {}", inst.vm_state.as_str())
        }
        (None, None) => format!("vm_state {} on no host", inst.vm_state.as_str()),
        (None, Some(host)) => return Ok(host.clone()),
    };
    Err(conflict(inst, action, &blocking))
}

fn conflict(inst: &Instance, action: &str, blocking: &str) -> ApiError {
    ApiError::new(
        FaultKind::Conflict,
        format!(
            "Cannot '{action}' instance {} while it is in {blocking}.",
            inst.id
        ),
    )
}

/// The shelve snapshot's record: a snapshot named `<name>-shelved`.
async fn shelve_image(state: &AppState, ctx: &Ctx, inst: &Instance) -> ApiResult<Image> {
    snapshot_image(
        state,
        ctx,
        inst,
        format!("{}-shelved", inst.name),
        BTreeMap::new(),
    )
    .await
}

/// Moves the server into `task` with a deadline (a 409 naming the state
/// that blocks it); returns the server as it is now.
async fn begin(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    action: &str,
    from: &[VmState],
    task: TaskState,
    deadline_secs: i64,
) -> ApiResult<Instance> {
    Ok(state
        .store()
        .instance_begin_task(
            inst.id,
            &ctx.read_scope()?,
            action,
            from,
            &[],
            task,
            Timestamp::now().plus_seconds(deadline_secs),
        )
        .await?)
}

/// Records the instance action.
async fn record(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    request_id: &str,
    action: &str,
) -> ApiResult<()> {
    state
        .store()
        .action_start(inst.id, request_id, action, &inst.project_id, ctx.user_id())
        .await?;
    Ok(())
}

/// Casts `msg` to the server's host; if the host cannot be reached now,
/// the task's deadline deals with it.
async fn cast_to_host(
    state: &AppState,
    inst: &Instance,
    host: &str,
    msg: &ComputeMsg,
    request_id: &str,
) {
    let sent = match cloud_rpc::encode(msg, request_id) {
        Ok(env) => state
            .bus()
            .cast(&compute_queue(host), env)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        tracing::warn!(instance = %inst.id, %host, error = %e, "cannot reach the host now");
    }
}
