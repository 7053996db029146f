//! `/v3/projects`: project administration.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, JsonBody, QueryPairs};
use crate::identity::views;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{DomainId, ProjectId};
use serde::Deserialize;
use serde_json::{Value, json};

/// Body of `POST /v3/projects`.
#[derive(Debug, Deserialize)]
pub struct ProjectCreateRequest {
    project: ProjectFields,
}

#[derive(Debug, Deserialize)]
struct ProjectFields {
    name: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Checks a Keystone name: 1-64 characters, not blank.
pub fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field '{field}': must be 1 to 64 characters and not blank."
        )));
    }
    Ok(())
}

/// Lists projects (filters: `name`, `domain_id`). Non-admins see the
/// projects they have a role on.
#[utoipa::path(get, path = "/v3/projects", tag = "identity",
    responses((status = 200, description = "Projects")))]
pub async fn project_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let all = state.store().project_list().await?;
    let mine: Vec<ProjectId> = if ctx.is_admin() {
        Vec::new()
    } else {
        state
            .store()
            .role_assignment_list(Some(ctx.user_id()), None)
            .await?
            .into_iter()
            .map(|a| a.project_id)
            .collect()
    };
    let projects: Vec<Value> = all
        .iter()
        .filter(|p| ctx.is_admin() || mine.contains(&p.id))
        .filter(|p| q.get("name").is_none_or(|n| n == p.name))
        .filter(|p| q.get("domain_id").is_none_or(|d| d == p.domain_id.as_str()))
        .map(|p| views::project(p, &base))
        .collect();
    Ok(Json(json!({"projects": projects})))
}

/// Creates a project (admin).
#[utoipa::path(post, path = "/v3/projects", tag = "identity",
    responses((status = 201, description = "Created"), (status = 409, description = "Duplicate name")))]
pub async fn project_create(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    JsonBody(req): JsonBody<ProjectCreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::ProjectWrite)?;
    let f = req.project;
    let name = f.name.ok_or_else(|| {
        ApiError::bad_request("Invalid input for field 'project.name': required.")
    })?;
    check_name("project.name", &name)?;
    let domain = DomainId::from_string(f.domain_id.unwrap_or_else(|| "default".to_owned()));
    state.store().domain_get(&domain).await.map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid input for field 'project.domain_id': domain {domain} does not exist."
        ))
    })?;
    let p = state
        .store()
        .project_create(
            &domain,
            &name,
            f.description.as_deref().unwrap_or(""),
            f.enabled.unwrap_or(true),
        )
        .await?;
    state.store().security_group_ensure_default(&p.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"project": views::project(&p, &base)})),
    ))
}

/// Shows a project (admins, or members of it).
#[utoipa::path(get, path = "/v3/projects/{project_id}", tag = "identity",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "The project"), (status = 404, description = "Not found")))]
pub async fn project_show(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = ProjectId::from_string(id);
    if !ctx.is_admin() && ctx.token.project.as_ref().map(|p| &p.id) != Some(&id) {
        return Err(cloud_model::Error::not_found(cloud_model::ResourceKind::Project, &id).into());
    }
    let p = state.store().project_get(&id).await?;
    Ok(Json(json!({"project": views::project(&p, &base)})))
}

/// Body of `PATCH /v3/projects/{id}`.
#[derive(Debug, Deserialize)]
pub struct ProjectUpdateRequest {
    project: ProjectPatch,
}

#[derive(Debug, Deserialize)]
struct ProjectPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Renames, redescribes, enables or disables a project (admin).
#[utoipa::path(patch, path = "/v3/projects/{project_id}", tag = "identity",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "Updated"), (status = 404, description = "Not found")))]
pub async fn project_update(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ProjectUpdateRequest>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ProjectWrite)?;
    let id = ProjectId::from_string(id);
    let mut p = state.store().project_get(&id).await?;
    if let Some(name) = req.project.name {
        check_name("project.name", &name)?;
        p.name = name;
    }
    if let Some(d) = req.project.description {
        p.description = d;
    }
    if let Some(e) = req.project.enabled {
        p.enabled = e;
    }
    let p = state.store().project_update(&p).await?;
    Ok(Json(json!({"project": views::project(&p, &base)})))
}

/// Deletes a project (admin), with its default security group and quota
/// limits; refused (409, naming them) while it still owns resources, so
/// nothing is orphaned (docs/adr/0008-project-deletion.md).
#[utoipa::path(delete, path = "/v3/projects/{project_id}", tag = "identity",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found"),
        (status = 409, description = "The project still owns resources (the message names them)")))]
pub async fn project_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ProjectWrite)?;
    let id = ProjectId::from_string(id);
    if ctx.token.project.as_ref().map(|p| &p.id) == Some(&id) {
        return Err(ApiError::new(
            crate::error::FaultKind::Conflict,
            "You cannot delete the project your token is scoped to.",
        ));
    }
    state.store().project_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
