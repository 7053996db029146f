//! `/v2.1/os-keypairs`: SSH public keys, owned by a user (not a project).
//!
//! A user uploads a public key (what the OSC always does) or lets us
//! generate a keypair, in which case the private key is in the create
//! response and nowhere else. Names are unique per user; another user's
//! keypair is simply not found. Admins may act on another user's keypairs
//! with `?user_id=`.

use crate::auth::{Action, Ctx};
use crate::compute::params;
use crate::compute::ssh_keys;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::UserId;
use cloud_model::keypair::Keypair;
use serde_json::{Value, json};

/// The user whose keypairs a request is about: the caller, or for admins
/// the one named by `?user_id=` (which must exist).
async fn target_user(state: &AppState, ctx: &Ctx, q: &QueryPairs) -> ApiResult<UserId> {
    match q.get("user_id") {
        None => Ok(ctx.user_id().clone()),
        Some(u) if u == ctx.user_id().as_str() => Ok(ctx.user_id().clone()),
        Some(u) => {
            if !ctx.is_admin() {
                return Err(ApiError::new(
                    FaultKind::Forbidden,
                    "Policy does not allow acting on another user's keypairs: it needs the \
                     'admin' role.",
                ));
            }
            let user = UserId::from_string(u);
            state.store().user_get(&user).await?;
            Ok(user)
        }
    }
}

/// Checks a keypair name: 1-255 of letters, digits, spaces and `_.@-`,
/// not blank.
fn check_name(name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '@' | '-'));
    if len == 0 || len > 255 || !ok_chars || name.trim().is_empty() {
        return Err(params::invalid(
            "keypair.name",
            format!(
                "'{name}' is not a valid keypair name: use 1 to 255 letters, digits, spaces, \
                 '_', '.', '@' or '-', and not only spaces."
            ),
        ));
    }
    Ok(())
}

/// The full view (`GET /os-keypairs/{name}`).
fn keypair_detail(k: &Keypair) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
        "user_id": k.user_id.as_str(),
        "created_at": k.created_at.naive_micros(),
        "updated_at": null,
        "deleted": false,
        "deleted_at": null,
    })
}

/// Lists the user's keypairs (each wrapped in `{"keypair": ...}`, as Nova
/// does).
#[utoipa::path(get, path = "/v2.1/os-keypairs", tag = "compute",
    params(("user_id" = Option<String>, Query, description = "Another user's keypairs (admin)")),
    responses((status = 200, description = "Keypairs")))]
pub async fn keypair_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::KeypairRead)?;
    let user = target_user(&state, &ctx, &q).await?;
    let keypairs: Vec<Value> = state
        .store()
        .keypair_list(&user)
        .await?
        .iter()
        .map(|k| {
            json!({"keypair": {
                "name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint
            }})
        })
        .collect();
    Ok(Json(json!({"keypairs": keypairs})))
}

/// Imports a public key, or generates a keypair when none is given (the
/// private key is returned this once). 409 on a duplicate name, 403 over
/// the `key_pairs` quota.
#[utoipa::path(post, path = "/v2.1/os-keypairs", tag = "compute",
    params(("user_id" = Option<String>, Query, description = "Create for another user (admin)")),
    responses((status = 200, description = "Created"), (status = 400, description = "Bad name or key"),
              (status = 403, description = "Over quota"), (status = 409, description = "Duplicate name")))]
pub async fn keypair_create(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::KeypairWrite)?;
    let kp = params::wrapped(&body, "keypair")?;
    params::only_known(kp, &["name", "public_key"], "keypair")?;
    let name = kp
        .get("name")
        .ok_or_else(|| params::invalid("keypair.name", "'name' is a required property."))?;
    let name = params::string(name, "keypair.name")?;
    check_name(name)?;
    let (public_key, fingerprint, private_key) = match kp.get("public_key") {
        Some(v) => {
            let line = params::string(v, "keypair.public_key")?.trim();
            let key = ssh_keys::parse_public_key(line)
                .map_err(|e| ApiError::bad_request(format!("Keypair data is invalid: {e}.")))?;
            (line.to_owned(), key.fingerprint(), None)
        }
        None => {
            let generated = ssh_keys::generate()?;
            (
                generated.public_key,
                generated.fingerprint,
                Some(generated.private_key),
            )
        }
    };
    let user = target_user(&state, &ctx, &q).await?;
    // Keypairs are counted per user, so the user's own limit applies.
    let limits = state
        .store()
        .quota_user_limits(ctx.project_id()?, &user, &state.config().quotas)
        .await?;
    let limit = limits.get("key_pairs").copied().unwrap_or(-1);
    let stored = state
        .store()
        .keypair_create(&user, name, &public_key, &fingerprint, limit)
        .await?;
    let mut view = json!({
        "name": stored.name,
        "public_key": stored.public_key,
        "fingerprint": stored.fingerprint,
        "user_id": stored.user_id.as_str(),
    });
    if let Some(private_key) = private_key {
        view["private_key"] = json!(private_key);
    }
    Ok(Json(json!({ "keypair": view })))
}

/// Shows one of the user's keypairs.
#[utoipa::path(get, path = "/v2.1/os-keypairs/{keypair_name}", tag = "compute",
    params(("keypair_name" = String, Path, description = "Keypair name"),
           ("user_id" = Option<String>, Query, description = "Another user's keypair (admin)")),
    responses((status = 200, description = "The keypair"), (status = 404, description = "Not found")))]
pub async fn keypair_show(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::KeypairRead)?;
    let user = target_user(&state, &ctx, &q).await?;
    let k = state.store().keypair_get(&user, &name).await?;
    Ok(Json(json!({"keypair": keypair_detail(&k)})))
}

/// Deletes one of the user's keypairs (by name, as the OSC does without
/// looking it up first).
#[utoipa::path(delete, path = "/v2.1/os-keypairs/{keypair_name}", tag = "compute",
    params(("keypair_name" = String, Path, description = "Keypair name"),
           ("user_id" = Option<String>, Query, description = "Another user's keypair (admin)")),
    responses((status = 202, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn keypair_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::KeypairWrite)?;
    let user = target_user(&state, &ctx, &q).await?;
    state.store().keypair_delete(&user, &name).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nova() {
        for ok in ["k1", "my key", "a.b@c-d_e", &"k".repeat(255)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "   ", "key_/.", "ключ", &"k".repeat(256), "a\tb"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
