//! `/v3/roles` and role assignments.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, JsonBody, QueryPairs};
use crate::identity::projects::check_name;
use crate::identity::views;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{ProjectId, RoleId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

/// Body of `POST /v3/roles`.
#[derive(Debug, Deserialize)]
pub struct RoleCreateRequest {
    role: RoleFields,
}

#[derive(Debug, Deserialize)]
struct RoleFields {
    #[serde(default)]
    name: Option<String>,
}

/// Lists roles (filter: `name`).
#[utoipa::path(get, path = "/v3/roles", tag = "identity",
    responses((status = 200, description = "Roles")))]
pub async fn role_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::RoleRead)?;
    let roles: Vec<Value> = state
        .store()
        .role_list()
        .await?
        .iter()
        .filter(|r| q.get("name").is_none_or(|n| n == r.name))
        .map(|r| views::role(r, &base))
        .collect();
    Ok(Json(json!({"roles": roles})))
}

/// Creates a role (admin).
#[utoipa::path(post, path = "/v3/roles", tag = "identity",
    responses((status = 201, description = "Created"), (status = 409, description = "Duplicate name")))]
pub async fn role_create(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    JsonBody(req): JsonBody<RoleCreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::RoleWrite)?;
    let name = req
        .role
        .name
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'role.name': required."))?;
    check_name("role.name", &name)?;
    let r = state.store().role_create(&name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"role": views::role(&r, &base)})),
    ))
}

/// Shows a role.
#[utoipa::path(get, path = "/v3/roles/{role_id}", tag = "identity",
    params(("role_id" = String, Path, description = "Role id")),
    responses((status = 200, description = "The role"), (status = 404, description = "Not found")))]
pub async fn role_show(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::RoleRead)?;
    let r = state.store().role_get(&RoleId::from_string(id)).await?;
    Ok(Json(json!({"role": views::role(&r, &base)})))
}

/// Deletes a role and its assignments (admin).
#[utoipa::path(delete, path = "/v3/roles/{role_id}", tag = "identity",
    params(("role_id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn role_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::RoleWrite)?;
    state.store().role_delete(&RoleId::from_string(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Roles a user holds on a project.
#[utoipa::path(get, path = "/v3/projects/{project_id}/users/{user_id}/roles", tag = "identity",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "Roles")))]
pub async fn project_user_roles(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path((project, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (project, user) = (ProjectId::from_string(project), UserId::from_string(user));
    if *ctx.user_id() != user {
        ctx.authorize(Action::RoleAssignmentRead)?;
    }
    let roles: Vec<Value> = state
        .store()
        .roles_of(&user, &project)
        .await?
        .iter()
        .map(|r| views::role(r, &base))
        .collect();
    Ok(Json(json!({"roles": roles})))
}

async fn check_assignment_refs(
    state: &AppState,
    project: &ProjectId,
    user: &UserId,
    role: &RoleId,
) -> ApiResult<()> {
    state.store().project_get(project).await?;
    state.store().user_get(user).await?;
    state.store().role_get(role).await?;
    Ok(())
}

/// Grants a role to a user on a project (admin).
#[utoipa::path(put, path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", tag = "identity",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = String, Path, description = "User id"),
           ("role_id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Granted"), (status = 404, description = "Unknown project, user or role")))]
pub async fn role_grant(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((project, user, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::RoleAssignmentWrite)?;
    let (project, user, role) = (
        ProjectId::from_string(project),
        UserId::from_string(user),
        RoleId::from_string(role),
    );
    check_assignment_refs(&state, &project, &user, &role).await?;
    state.store().role_assign(&project, &user, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks whether a user holds a role on a project.
#[utoipa::path(head, path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", tag = "identity",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = String, Path, description = "User id"),
           ("role_id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Granted"), (status = 404, description = "Not granted")))]
pub async fn role_grant_check(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((project, user, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::RoleAssignmentRead)?;
    let roles = state
        .store()
        .roles_of(&UserId::from_string(user), &ProjectId::from_string(project))
        .await?;
    if roles.iter().any(|r| r.id.as_str() == role) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(cloud_model::Error::not_found(cloud_model::ResourceKind::Role, role).into())
    }
}

/// Revokes a role from a user on a project (admin).
#[utoipa::path(delete, path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", tag = "identity",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = String, Path, description = "User id"),
           ("role_id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not granted")))]
pub async fn role_revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((project, user, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::RoleAssignmentWrite)?;
    state
        .store()
        .role_unassign(
            &ProjectId::from_string(project),
            &UserId::from_string(user),
            &RoleId::from_string(role),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists role assignments (admin; filters `user.id`, `scope.project.id`).
#[utoipa::path(get, path = "/v3/role_assignments", tag = "identity",
    params(("user.id" = Option<String>, Query, description = "One user's assignments"),
        ("scope.project.id" = Option<String>, Query, description = "On one project"),
        ("include_names" = Option<bool>, Query, description = "Add user, project and domain \
            names (the `openstack` CLI's `--names`, Ansible)")),
    responses((status = 200, description = "Role assignments")))]
pub async fn role_assignment_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::RoleAssignmentRead)?;
    let user = q.get("user.id").map(UserId::from_string);
    let project = q.get("scope.project.id").map(ProjectId::from_string);
    let names = match q
        .get("include_names")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false" | "0" | "no") => false,
        Some("" | "true" | "1" | "yes") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for include_names: '{other}' is not a boolean."
            )));
        }
    };
    let store = state.store();
    let mut list = Vec::new();
    for a in store
        .role_assignment_list(user.as_ref(), project.as_ref())
        .await?
    {
        let mut user = json!({"id": a.user_id.as_str()});
        let mut project = json!({"id": a.project_id.as_str()});
        if names {
            // Each assignment names existing rows (the store deletes
            // assignments with their user or project).
            let u = store.user_get(&a.user_id).await?;
            let ud = store.domain_get(&u.domain_id).await?;
            user["name"] = json!(u.name);
            user["domain"] = json!({"id": ud.id.as_str(), "name": ud.name});
            let p = store.project_get(&a.project_id).await?;
            let pd = store.domain_get(&p.domain_id).await?;
            project["name"] = json!(p.name);
            project["domain"] = json!({"id": pd.id.as_str(), "name": pd.name});
        }
        list.push(json!({
            "role": {"id": a.role.id.as_str(), "name": a.role.name},
            "user": user,
            "scope": {"project": project},
            "links": {"assignment": format!(
                "{base}/identity/v3/projects/{}/users/{}/roles/{}",
                a.project_id, a.user_id, a.role.id
            )},
        }));
    }
    Ok(Json(json!({"role_assignments": list})))
}
