//! `/v3/users`: user administration.

use crate::auth::password::hash_password;
use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, JsonBody, QueryPairs};
use crate::identity::projects::check_name;
use crate::identity::views;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{DomainId, ProjectId, UserId};
use cloud_store::NewUser;
use serde::Deserialize;
use serde_json::{Value, json};

/// Body of `POST /v3/users`.
#[derive(Debug, Deserialize)]
pub struct UserCreateRequest {
    user: UserFields,
}

#[derive(Debug, Deserialize)]
struct UserFields {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    default_project_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Body of `PATCH /v3/users/{id}`.
#[derive(Debug, Deserialize)]
pub struct UserUpdateRequest {
    user: UserFields,
}

fn check_password(p: &str) -> Result<(), ApiError> {
    if p.is_empty() || p.len() > 4096 {
        return Err(ApiError::bad_request(
            "Invalid input for field 'user.password': must be 1 to 4096 bytes.",
        ));
    }
    Ok(())
}

/// A default project named in a request: it must exist (a 400 naming the
/// field, not a foreign-key error from the store).
async fn existing_project(state: &AppState, id: String) -> ApiResult<ProjectId> {
    let p = ProjectId::from_string(id);
    state.store().project_get(&p).await.map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid input for field 'user.default_project_id': project {p} does not exist."
        ))
    })?;
    Ok(p)
}

/// Lists users (admin; filters: `name`, `domain_id`).
#[utoipa::path(get, path = "/v3/users", tag = "identity",
    responses((status = 200, description = "Users")))]
pub async fn user_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::UserList)?;
    let users: Vec<Value> = state
        .store()
        .user_list()
        .await?
        .iter()
        .filter(|u| q.get("name").is_none_or(|n| n == u.name))
        .filter(|u| q.get("domain_id").is_none_or(|d| d == u.domain_id.as_str()))
        .map(|u| views::user(u, &base))
        .collect();
    Ok(Json(json!({"users": users})))
}

/// Creates a user (admin). The password is hashed with argon2id.
#[utoipa::path(post, path = "/v3/users", tag = "identity",
    responses((status = 201, description = "Created"), (status = 409, description = "Duplicate name")))]
pub async fn user_create(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    JsonBody(req): JsonBody<UserCreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::UserWrite)?;
    let f = req.user;
    let name = f
        .name
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'user.name': required."))?;
    check_name("user.name", &name)?;
    let password = f.password.ok_or_else(|| {
        ApiError::bad_request("Invalid input for field 'user.password': required.")
    })?;
    check_password(&password)?;
    let domain_id = DomainId::from_string(f.domain_id.unwrap_or_else(|| "default".to_owned()));
    let default_project_id = match f.default_project_id {
        Some(p) => Some(existing_project(&state, p).await?),
        None => None,
    };
    let user = state
        .store()
        .user_create(&NewUser {
            domain_id,
            name,
            password_hash: hash_password(password).await?,
            enabled: f.enabled.unwrap_or(true),
            default_project_id,
            email: f.email,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": views::user(&user, &base)})),
    ))
}

/// Shows a user (admin, or the user itself).
#[utoipa::path(get, path = "/v3/users/{user_id}", tag = "identity",
    params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user"), (status = 404, description = "Not found")))]
pub async fn user_show(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = UserId::from_string(id);
    if !ctx.is_admin() && *ctx.user_id() != id {
        return Err(cloud_model::Error::not_found(cloud_model::ResourceKind::User, &id).into());
    }
    let u = state.store().user_get(&id).await?;
    Ok(Json(json!({"user": views::user(&u, &base)})))
}

/// Updates a user (admin): name, e-mail, enabled, password (which revokes
/// the user's tokens), default project. All or nothing: every field is
/// checked (and the password hashed) before anything is written, and the
/// store writes them in one transaction, so a refused update changes none.
#[utoipa::path(patch, path = "/v3/users/{user_id}", tag = "identity",
    params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "Updated"), (status = 400, description = "A field is invalid: nothing changed"),
        (status = 404, description = "Not found"), (status = 409, description = "The name is taken: nothing changed")))]
pub async fn user_update(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UserUpdateRequest>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::UserWrite)?;
    let id = UserId::from_string(id);
    let mut u = state.store().user_get(&id).await?;
    let f = req.user;
    if let Some(name) = &f.name {
        check_name("user.name", name)?;
    }
    if let Some(p) = &f.password {
        check_password(p)?;
    }
    let default_project_id = match f.default_project_id {
        Some(p) => Some(existing_project(&state, p).await?),
        None => None,
    };
    let password_hash = match f.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    if let Some(name) = f.name {
        u.name = name;
    }
    if let Some(e) = f.email {
        u.email = Some(e);
    }
    if let Some(e) = f.enabled {
        u.enabled = e;
    }
    if default_project_id.is_some() {
        u.default_project_id = default_project_id;
    }
    let u = state
        .store()
        .user_update(&u, password_hash.as_deref())
        .await?;
    Ok(Json(json!({"user": views::user(&u, &base)})))
}

/// Deletes a user (admin).
#[utoipa::path(delete, path = "/v3/users/{user_id}", tag = "identity",
    params(("user_id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn user_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::UserWrite)?;
    let id = UserId::from_string(id);
    if *ctx.user_id() == id {
        return Err(ApiError::new(
            crate::error::FaultKind::Conflict,
            "You cannot delete yourself.",
        ));
    }
    state.store().user_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
