//! `/v2.0/security-groups[/{id}]`: security groups.
//!
//! Every project has a `default` group, created on its first listing or
//! first port; it cannot be renamed or deleted, and no other group may take
//! its name. A group some port uses cannot be deleted.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::notify::{Changed, Notifier};
use crate::network::{
    check_len, created, name_and_description, ok, path_id, target_project, views,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::SecurityGroup;
use cloud_model::{ProjectId, ResourceKind, SecurityGroupId};
use cloud_store::Scope;
use serde::Deserialize;
use serde_json::{Value, json};

/// The name of every project's default group.
pub const DEFAULT_NAME: &str = "default";

/// `POST /v2.0/security-groups` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupCreateBody {
    security_group: SecurityGroupCreate,
}

/// The attributes of a new group.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityGroupCreate {
    name: Option<String>,
    description: Option<String>,
    stateful: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// `PUT /v2.0/security-groups/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupUpdateBody {
    security_group: SecurityGroupChanges,
}

/// The changeable attributes of a group.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityGroupChanges {
    name: Option<String>,
    description: Option<String>,
    stateful: Option<bool>,
}

fn check_stateful(stateful: Option<bool>) -> ApiResult<()> {
    if stateful == Some(false) {
        return Err(ApiError::bad_request(
            "Invalid input for stateful: stateless security groups are not supported.",
        ));
    }
    Ok(())
}

/// The project's effective limit of `resource` (-1: none).
pub async fn limit(state: &AppState, project: &ProjectId, resource: &str) -> ApiResult<i64> {
    let limits = state
        .store()
        .quota_limits(project, &state.config().quotas)
        .await?;
    Ok(limits.get(resource).copied().unwrap_or(-1))
}

/// Creates a group with Neutron's default egress rules.
#[utoipa::path(post, path = "/v2.0/security-groups", tag = "network",
    request_body(content = Object, description = "`{\"security_group\": {name, description, \
        project_id}}`"),
    responses((status = 201, description = "The new group"),
        (status = 400, description = "Invalid attribute"),
        (status = 409, description = "Name 'default' is reserved, or over quota")))]
pub async fn security_group_create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody<SecurityGroupCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::SecurityGroupWrite)?;
    let req = body.security_group;
    let project = target_project(&ctx, req.project_id.as_deref(), req.tenant_id.as_deref())?;
    let (name, description) = name_and_description(req.name, req.description)?;
    check_stateful(req.stateful)?;
    if name == DEFAULT_NAME {
        return Err(ApiError::new(
            FaultKind::Conflict,
            "Default security group already exists: the name 'default' is reserved for it.",
        ));
    }
    let store = state.store();
    // The default group counts against the quota, as in Neutron; make sure
    // it exists before counting.
    store.security_group_ensure_default(&project).await?;
    let limit = limit(&state, &project, "security_groups").await?;
    let sg = store
        .security_group_create(&project, &name, &description, limit)
        .await?;
    Ok(created("security_group", views::security_group(&sg)))
}

/// Lists the caller's groups (admins: all), creating the caller's default
/// group on first use.
#[utoipa::path(get, path = "/v2.0/security-groups", tag = "network",
    params(("name" = Option<String>, Query, description = "Exact name"),
        ("id" = Option<String>, Query, description = "Group id (repeatable)"),
        ("project_id" = Option<String>, Query, description = "Owner")),
    responses((status = 200, description = "Security groups")))]
pub async fn security_group_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::SecurityGroupRead)?;
    let store = state.store();
    store
        .security_group_ensure_default(ctx.project_id()?)
        .await?;
    let filters = Filters::from_query(&q);
    let groups = store
        .security_group_list(&ctx.read_scope()?, filters.single("name"))
        .await?;
    let views = filters.apply(groups.iter().map(views::security_group).collect());
    Ok(Json(json!({ "security_groups": views })))
}

/// Loads a group the caller may see.
pub async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<SecurityGroup> {
    let id = path_id(raw, ResourceKind::SecurityGroup, SecurityGroupId::parse)?;
    Ok(state
        .store()
        .security_group_get(id, &ctx.read_scope()?)
        .await?)
}

/// Shows a group with its rules.
#[utoipa::path(get, path = "/v2.0/security-groups/{security_group_id}", tag = "network",
    params(("security_group_id" = String, Path, description = "Group id")),
    responses((status = 200, description = "The group"),
        (status = 404, description = "No such group visible to the caller")))]
pub async fn security_group_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(security_group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::SecurityGroupRead)?;
    let sg = load(&state, &ctx, &security_group_id).await?;
    Ok(ok("security_group", views::security_group(&sg)))
}

/// Renames or redescribes a group (the default group keeps its name).
#[utoipa::path(put, path = "/v2.0/security-groups/{security_group_id}", tag = "network",
    params(("security_group_id" = String, Path, description = "Group id")),
    request_body(content = Object, description = "`{\"security_group\": {name, description}}`"),
    responses((status = 200, description = "The updated group"),
        (status = 400, description = "Invalid attribute"),
        (status = 404, description = "No such group"),
        (status = 409, description = "Renaming the default group, or to 'default'")))]
pub async fn security_group_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(security_group_id): Path<String>,
    JsonBody(body): JsonBody<SecurityGroupUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::SecurityGroupWrite)?;
    let sg = load(&state, &ctx, &security_group_id).await?;
    let req = body.security_group;
    check_stateful(req.stateful)?;
    let name = req.name.unwrap_or_else(|| sg.name.clone());
    let description = req.description.unwrap_or_else(|| sg.description.clone());
    check_len("name", &name, 255)?;
    check_len("description", &description, 255)?;
    if sg.is_default && name != sg.name {
        return Err(ApiError::new(
            FaultKind::Conflict,
            "Updating the name of the default security group is not allowed.",
        ));
    }
    if !sg.is_default && name == DEFAULT_NAME {
        return Err(ApiError::new(
            FaultKind::Conflict,
            "Default security group already exists: the name 'default' is reserved for it.",
        ));
    }
    let sg = state
        .store()
        .security_group_update(sg.id, &name, &description)
        .await?;
    Ok(ok("security_group", views::security_group(&sg)))
}

/// The groups of the group's project with rules naming `sg` as their
/// remote group: deleting `sg` deletes those rules.
async fn groups_naming(state: &AppState, sg: &SecurityGroup) -> ApiResult<Vec<SecurityGroupId>> {
    let rules = state
        .store()
        .security_group_rule_list(&Scope::Project(sg.project_id.clone()), None)
        .await?;
    Ok(rules
        .iter()
        .filter(|r| r.remote_group_id == Some(sg.id))
        .map(|r| r.security_group_id)
        .collect())
}

/// Deletes a group; the default group and groups in use are refused (409).
/// The rules of other groups naming it go with it, and the hosts enforcing
/// those groups are told.
#[utoipa::path(delete, path = "/v2.0/security-groups/{security_group_id}", tag = "network",
    params(("security_group_id" = String, Path, description = "Group id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such group"),
        (status = 409, description = "The default group, or in use by ports")))]
pub async fn security_group_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(security_group_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::SecurityGroupWrite)?;
    let sg = load(&state, &ctx, &security_group_id).await?;
    let naming = groups_naming(&state, &sg).await?;
    state.store().security_group_delete(sg.id).await?;
    notify
        .changed(Changed::groups([sg.id]).with_groups(naming))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
