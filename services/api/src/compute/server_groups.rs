//! `os-server-groups`: affinity and anti-affinity policies.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::instance::{GroupPolicy, ServerGroup};
use cloud_model::{Error, ResourceKind, ServerGroupId};
use cloud_store::Scope;
use serde::Deserialize;
use serde_json::{Value, json};

/// Body of `POST /os-server-groups`.
#[derive(Debug, Deserialize)]
pub struct CreateGroupRequest {
    server_group: CreateGroup,
}

#[derive(Debug, Deserialize)]
struct CreateGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    policy: Option<String>,
}

fn view(g: &ServerGroup) -> Value {
    json!({
        "id": g.id.to_string(),
        "name": g.name,
        "policies": [g.policy.as_str()],
        "members": g.members.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "metadata": {},
    })
}

fn group_id(raw: &str) -> Result<ServerGroupId, ApiError> {
    ServerGroupId::parse(raw).ok_or_else(|| Error::not_found(ResourceKind::ServerGroup, raw).into())
}

/// Lists server groups (`all_projects` for admins).
#[utoipa::path(get, path = "/v2.1/os-server-groups", tag = "compute",
    responses((status = 200, description = "Server groups")))]
pub async fn server_group_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerGroupRead)?;
    let scope = if q.bool("all_projects")?.unwrap_or(false) && ctx.is_admin() {
        Scope::All
    } else {
        ctx.own_scope()?
    };
    let groups = state.store().server_group_list(&scope).await?;
    Ok(Json(
        json!({"server_groups": groups.iter().map(view).collect::<Vec<_>>()}),
    ))
}

/// Creates a server group with one policy.
#[utoipa::path(post, path = "/v2.1/os-server-groups", tag = "compute",
    responses((status = 200, description = "The group"), (status = 400, description = "Bad name or policy")))]
pub async fn server_group_create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(req): JsonBody<CreateGroupRequest>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerGroupWrite)?;
    let g = req.server_group;
    let name = g
        .name
        .filter(|n| !n.trim().is_empty() && n.chars().count() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field 'server_group.name': required, 1 to 255 characters.",
            )
        })?;
    let policies = match (g.policies, g.policy) {
        (Some(p), _) => p,
        (None, Some(p)) => vec![p],
        (None, None) => {
            return Err(ApiError::bad_request(
                "Invalid input for field 'server_group.policies': required.",
            ));
        }
    };
    if policies.len() != 1 {
        return Err(ApiError::bad_request(
            "Invalid input for field 'server_group.policies': exactly one policy is required.",
        ));
    }
    let policy = GroupPolicy::parse(&policies[0]).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field 'server_group.policies': '{}' is not one of affinity, \
             anti-affinity, soft-affinity, soft-anti-affinity.",
            policies[0]
        ))
    })?;
    let project = ctx.project_id()?.clone();
    let limit = state
        .store()
        .quota_limits(&project, &state.config().quotas)
        .await?
        .get("server_groups")
        .copied()
        .unwrap_or(10);
    let group = state
        .store()
        .server_group_create(&project, ctx.user_id(), &name, policy, limit)
        .await?;
    Ok(Json(json!({"server_group": view(&group)})))
}

/// Shows a server group.
#[utoipa::path(get, path = "/v2.1/os-server-groups/{group_id}", tag = "compute",
    params(("group_id" = String, Path, description = "Server group id")),
    responses((status = 200, description = "The group"), (status = 404, description = "Not found")))]
pub async fn server_group_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerGroupRead)?;
    let g = state
        .store()
        .server_group_get(group_id(&id)?, &ctx.read_scope()?)
        .await?;
    Ok(Json(json!({"server_group": view(&g)})))
}

/// Deletes a server group (its members keep running).
#[utoipa::path(delete, path = "/v2.1/os-server-groups/{group_id}", tag = "compute",
    params(("group_id" = String, Path, description = "Server group id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn server_group_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerGroupWrite)?;
    state
        .store()
        .server_group_delete(group_id(&id)?, &ctx.read_scope()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
