//! The `lock` and `unlock` server actions, and the check every other
//! action makes.
//!
//! As in Nova, a locked server refuses actions from non-admins with a 409
//! naming the lock (and its reason); admins act regardless. A lock taken
//! by the server's own project can be lifted by anyone of that project; one
//! an admin took on another project's server only by an admin (a 403
//! otherwise, as Nova's `unlock_override` policy).
//!
//! The lock is not shown in the server body: Nova adds `locked` only from
//! microversion 2.9 and `locked_reason` from 2.73, and we serve 2.1, whose
//! body clients validate strictly (tempest's 2.1 schema refuses unknown
//! server keys). What a user sees of it is the 409 that names it, and the
//! `lock` / `unlock` entries of the server's instance actions.

use crate::auth::{Action, Ctx};
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_model::Timestamp;
use cloud_model::instance::{Instance, InstanceLock, LockedBy};
use serde_json::Value;

/// Longest `locked_reason` (Nova's limit).
const MAX_REASON: usize = 255;

/// `{"lock": null}` or `{"lock": {"locked_reason": "..."}}`.
pub async fn lock(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let reason = locked_reason(args)?;
    let inst = load(state, ctx, id).await?;
    let locked_by = if ctx.project_id().ok() == Some(&inst.project_id) {
        LockedBy::Owner
    } else {
        LockedBy::Admin
    };
    let lock = InstanceLock {
        locked_by,
        user_id: ctx.user_id().clone(),
        reason,
        created_at: Timestamp::now(),
    };
    state.store().instance_lock(inst.id, &lock).await?;
    record(state, ctx, &inst, request_id, "lock").await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `{"unlock": null}`.
pub async fn unlock(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(state, ctx, id).await?;
    if let Some(lock) = state.store().instance_lock_get(inst.id).await?
        && lock.locked_by == LockedBy::Admin
        && !ctx.is_admin()
    {
        return Err(ApiError::new(
            FaultKind::Forbidden,
            format!(
                "Instance {} was locked by an admin: only an admin may unlock it.",
                inst.id
            ),
        ));
    }
    state.store().instance_unlock(inst.id).await?;
    record(state, ctx, &inst, request_id, "unlock").await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Refuses an action on a locked server unless the caller is an admin:
/// every action that changes a server calls it before changing anything.
pub async fn refuse_if_locked(state: &AppState, ctx: &Ctx, inst: &Instance) -> ApiResult<()> {
    if ctx.is_admin() {
        return Ok(());
    }
    match state.store().instance_lock_get(inst.id).await? {
        None => Ok(()),
        Some(lock) => Err(ApiError::new(
            FaultKind::Conflict,
            match lock.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(reason) => format!("Instance {} is locked: {reason}", inst.id),
                None => format!("Instance {} is locked", inst.id),
            },
        )),
    }
}

fn locked_reason(args: &Value) -> ApiResult<Option<String>> {
    let bad = |why: &str| ApiError::bad_request(format!("Invalid input for field 'lock': {why}"));
    let obj = match args {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        _ => return Err(bad("must be null or an object.")),
    };
    if let Some(k) = obj.keys().find(|k| *k != "locked_reason") {
        return Err(bad(&format!(
            "additional property '{k}' is not allowed (only locked_reason)."
        )));
    }
    match obj.get("locked_reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_REASON => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(bad(&format!(
            "locked_reason is longer than {MAX_REASON} characters."
        ))),
        Some(_) => Err(bad("locked_reason must be a string.")),
    }
}

/// Records the action, finished at once (there is no work on the host).
async fn record(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    request_id: &str,
    action: &str,
) -> ApiResult<()> {
    let store = state.store();
    store
        .action_start(inst.id, request_id, action, &inst.project_id, ctx.user_id())
        .await?;
    store.action_finish(inst.id, action).await?;
    Ok(())
}
