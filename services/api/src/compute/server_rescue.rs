//! The `rescue` and `unrescue` server actions, with Nova's states.
//!
//! Rescue boots a server from a rescue image (the server's own image by
//! default, or `rescue_image_ref`) with its own root disk attached as the
//! second disk, so a user can repair a server that no longer boots:
//! ACTIVE, STOPPED or ERROR (no task) -> `rescuing` -> RESCUE. Unrescue
//! boots the server from its own disk again: RESCUE -> `unrescuing` ->
//! ACTIVE. Both are refused on a locked server (non-admins) and complete
//! when the host reports.
//!
//! The rescue image is checked here (it must exist, be visible to the
//! caller and be active: a 400 otherwise) rather than failing later on the
//! host. The conductor builds the server's spec and casts the rescue to the
//! host; unrescue needs no spec and goes to the host directly. The answer
//! to a rescue carries `adminPass` as Nova's does (the one given, or a
//! generated one); it is never stored, and our hosts inject no passwords.

use crate::auth::{Action, Ctx};
use crate::compute::server_actions::power;
use crate::compute::server_lock::refuse_if_locked;
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::Json;
use axum::response::{IntoResponse, Response};
use cloud_model::instance::{Instance, TaskState, VmState};
use cloud_model::{ImageId, Timestamp};
use cloud_rpc::{ComputeMsg, ConductorMsg};
use cloud_store::Scope;
use rand::Rng;
use serde_json::{Value, json};

/// How long a rescue may take before the reconciler clears it (a clean
/// shutdown of the guest, a new disk and a boot).
const RESCUE_DEADLINE_SECS: i64 = 300;
/// The vm_states a server can be rescued from (Nova's).
const RESCUABLE: [VmState; 3] = [VmState::Active, VmState::Stopped, VmState::Error];

/// What a rescue request asks for.
#[derive(Debug, Default, PartialEq)]
struct RescueArgs {
    admin_pass: Option<String>,
    rescue_image_ref: Option<ImageId>,
}

/// Runs `rescue` on server `id`: 200 with `adminPass` once the rescue is
/// under way.
pub async fn rescue(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let wanted = parse_args(args)?;
    let inst = load(state, ctx, id).await?;
    let host = on_a_host(&inst)?;
    refuse_if_locked(state, ctx, &inst).await?;
    // The state first: a paused server is a 409 whatever the image.
    check_state(&inst)?;
    let image = rescue_image(state, ctx, &inst, wanted.rescue_image_ref).await?;
    begin(state, ctx, &inst, request_id).await?;
    let msg = ConductorMsg::RescueInstance {
        instance_id: inst.id,
        rescue_image_ref: image.to_string(),
    };
    if let Err(e) = state.cast_to_conductor(&msg, request_id).await {
        // The task's deadline clears it if no conductor ever hears of it.
        tracing::warn!(instance = %inst.id, %host, error = %e, "cannot reach the conductors now");
    }
    let admin_pass = wanted.admin_pass.unwrap_or_else(random_password);
    Ok(Json(json!({ "adminPass": admin_pass })).into_response())
}

/// Runs `unrescue` on server `id`: 202; only a rescued server can be
/// unrescued (a 409 names the state otherwise).
pub async fn unrescue(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(state, ctx, id).await?;
    power(
        state,
        ctx,
        &inst,
        request_id,
        "unrescue",
        &[VmState::Rescued],
        &[],
        TaskState::Unrescuing,
        ComputeMsg::Unrescue {
            instance_id: inst.id,
        },
    )
    .await
}

/// `{"rescue": null}` or `{"rescue": {"adminPass": ..., "rescue_image_ref": ...}}`
/// (Nova's schema: nothing else).
fn parse_args(args: &Value) -> Result<RescueArgs, ApiError> {
    let bad =
        |why: String| ApiError::bad_request(format!("Invalid input for field 'rescue': {why}"));
    let obj = match args {
        Value::Null => return Ok(RescueArgs::default()),
        Value::Object(o) => o,
        _ => return Err(bad("must be null or an object.".to_owned())),
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "adminPass" | "rescue_image_ref"))
    {
        return Err(bad(format!(
            "additional property '{k}' is not allowed (only adminPass and rescue_image_ref)."
        )));
    }
    let admin_pass = match obj.get("adminPass") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(bad(format!("adminPass {other} is not a string."))),
    };
    let rescue_image_ref = match obj.get("rescue_image_ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(ImageId::parse(s).ok_or_else(|| {
            bad(format!(
                "rescue_image_ref '{s}' is not an image id (a UUID)."
            ))
        })?),
        Some(other) => return Err(bad(format!("rescue_image_ref {other} is not a string."))),
    };
    Ok(RescueArgs {
        admin_pass,
        rescue_image_ref,
    })
}

/// The server's host: a server on none (a failed build) has no disk to
/// rescue.
fn on_a_host(inst: &Instance) -> Result<String, ApiError> {
    inst.host.clone().ok_or_else(|| {
        ApiError::new(
            FaultKind::Conflict,
            format!(
                "Cannot 'rescue' instance {} while it is in vm_state {}: it is on no host.",
                inst.id,
                inst.vm_state.as_str()
            ),
        )
    })
}

/// A 409 naming the state when the server cannot be rescued from it now
/// (the conditional update in [`begin`] settles races).
fn check_state(inst: &Instance) -> Result<(), ApiError> {
    let blocking = match inst.task_state {
        Some(t) => format!("task_state {}", t.as_str()),
        None if !RESCUABLE.contains(&inst.vm_state) => {
            format!("vm_state {}", inst.vm_state.as_str())
        }
        None => return Ok(()),
    };
    Err(ApiError::new(
        FaultKind::Conflict,
        format!(
            "Cannot 'rescue' instance {} while it is in {blocking}.",
            inst.id
        ),
    ))
}

/// The image to boot: the one asked for, which the caller must see, or
/// the server's own; either must be active.
async fn rescue_image(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    asked: Option<ImageId>,
) -> Result<ImageId, ApiError> {
    let (id, scope) = match asked {
        Some(id) => (id, ctx.read_scope()?),
        // The server's own image, whoever may list it now.
        None => (inst.image_id, Scope::All),
    };
    let image = state.store().image_get(id, &scope).await.map_err(|_| {
        ApiError::bad_request(match asked {
            Some(_) => format!("Rescue image {id} could not be found."),
            None => format!(
                "The image of instance {} ({id}) could not be found: give a rescue_image_ref.",
                inst.id
            ),
        })
    })?;
    if image.status != "active" {
        return Err(ApiError::bad_request(format!(
            "Rescue image {id} is not active (status {}).",
            image.status
        )));
    }
    Ok(id)
}

/// Moves the server into `rescuing` (a 409 names the state that blocks
/// it) and records the instance action.
async fn begin(state: &AppState, ctx: &Ctx, inst: &Instance, request_id: &str) -> ApiResult<()> {
    state
        .store()
        .instance_begin_task(
            inst.id,
            &ctx.read_scope()?,
            "rescue",
            &RESCUABLE,
            &[],
            TaskState::Rescuing,
            Timestamp::now().plus_seconds(RESCUE_DEADLINE_SECS),
        )
        .await?;
    state
        .store()
        .action_start(
            inst.id,
            request_id,
            "rescue",
            &inst.project_id,
            ctx.user_id(),
        )
        .await?;
    Ok(())
}

/// A password for the answer, as a server create draws one.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescue_takes_null_or_nova_s_two_fields_only() {
        assert_eq!(parse_args(&Value::Null).unwrap(), RescueArgs::default());
        assert_eq!(parse_args(&json!({})).unwrap(), RescueArgs::default());
        let id = ImageId::new();
        let got = parse_args(&json!({"adminPass": "s3cret", "rescue_image_ref": id.to_string()}))
            .unwrap();
        assert_eq!(got.admin_pass.as_deref(), Some("s3cret"));
        assert_eq!(got.rescue_image_ref, Some(id));
        for bad in [
            json!("x"),
            json!({"image": "x"}),
            json!({"rescue_image_ref": "not-a-uuid"}),
            json!({"rescue_image_ref": 5}),
            json!({"adminPass": 5}),
        ] {
            assert!(parse_args(&bad).is_err(), "{bad}");
        }
    }
}
