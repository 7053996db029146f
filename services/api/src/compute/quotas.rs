//! `/v2.1/os-quota-sets`: a project's compute quotas.
//!
//! Limits are the configured defaults (`[quotas]`) overridden per project
//! by admins; `-1` means unlimited. Admins may also give one user of a
//! project tighter limits with `?user_id=` (Nova's per-user quotas; the
//! `key_pairs` limit is enforced per user, the others per project). Anyone
//! may read the defaults, members their own project's quotas, admins any
//! project's.

use crate::auth::{Action, Ctx};
use crate::compute::params::{self, MAX_INT};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::quota::QUOTA_RESOURCES;
use cloud_model::{Error, ProjectId, UserId};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Refuses a non-admin's request about another project. (A 403, not a
/// 404: quotas exist for every project id, there is nothing to hide.)
pub fn check_project(ctx: &Ctx, project: &ProjectId) -> ApiResult<()> {
    if ctx.is_admin() || ctx.project_id()? == project {
        Ok(())
    } else {
        Err(ApiError::new(
            FaultKind::Forbidden,
            format!(
                "Policy does not allow reading the quotas of project {project}: only admins may \
                 see other projects' quotas."
            ),
        ))
    }
}

/// What a project (and, for keypairs, a user) currently uses, by quota
/// resource name. Resources nothing counts yet are absent.
pub async fn usage(
    state: &AppState,
    project: &ProjectId,
    user: &UserId,
) -> ApiResult<BTreeMap<String, i64>> {
    let mut used = state.store().compute_usage(project).await?;
    used.extend(state.store().quota_counts(project, user).await?);
    Ok(used)
}

/// The limits a request is about: the project's, or with `?user_id=` that
/// user's within it.
async fn limits_for(
    state: &AppState,
    project: &ProjectId,
    q: &QueryPairs,
) -> ApiResult<BTreeMap<String, i64>> {
    let defaults = &state.config().quotas;
    Ok(match q.get("user_id") {
        Some(u) => {
            state
                .store()
                .quota_user_limits(project, &UserId::from_string(u), defaults)
                .await?
        }
        None => state.store().quota_limits(project, defaults).await?,
    })
}

/// Every quota resource with its value in `limits`, plus `id` when given.
fn quota_set(limits: &BTreeMap<String, i64>, id: Option<&ProjectId>) -> Value {
    let mut set = Map::new();
    if let Some(id) = id {
        set.insert("id".to_owned(), json!(id.as_str()));
    }
    for r in QUOTA_RESOURCES {
        set.insert(
            (*r).to_owned(),
            json!(limits.get(*r).copied().unwrap_or(-1)),
        );
    }
    json!({ "quota_set": set })
}

/// Shows a project's quotas.
#[utoipa::path(get, path = "/v2.1/os-quota-sets/{project_id}", tag = "compute",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = Option<String>, Query, description = "One user's limits in the project")),
    responses((status = 200, description = "The quota set"), (status = 403, description = "Another project")))]
pub async fn quota_set_show(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaRead)?;
    let project = ProjectId::from_string(project);
    check_project(&ctx, &project)?;
    let limits = limits_for(&state, &project, &q).await?;
    Ok(Json(quota_set(&limits, Some(&project))))
}

/// Shows a project's quotas with their use (`{"limit", "in_use",
/// "reserved"}` per resource).
#[utoipa::path(get, path = "/v2.1/os-quota-sets/{project_id}/detail", tag = "compute",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = Option<String>, Query, description = "One user's limits in the project")),
    responses((status = 200, description = "The quota set with usage"), (status = 403, description = "Another project")))]
pub async fn quota_set_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaRead)?;
    let project = ProjectId::from_string(project);
    check_project(&ctx, &project)?;
    let limits = limits_for(&state, &project, &q).await?;
    let user = q
        .get("user_id")
        .map(UserId::from_string)
        .unwrap_or_else(|| ctx.user_id().clone());
    let used = usage(&state, &project, &user).await?;
    let mut set = Map::new();
    set.insert("id".to_owned(), json!(project.as_str()));
    for r in QUOTA_RESOURCES {
        set.insert(
            (*r).to_owned(),
            json!({
                "limit": limits.get(*r).copied().unwrap_or(-1),
                "in_use": used.get(*r).copied().unwrap_or(0),
                "reserved": 0,
            }),
        );
    }
    Ok(Json(json!({ "quota_set": set })))
}

/// Shows the default quotas (those of a project without overrides).
#[utoipa::path(get, path = "/v2.1/os-quota-sets/{project_id}/defaults", tag = "compute",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "The default quota set")))]
pub async fn quota_set_defaults(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaRead)?;
    let defaults = &state.config().quotas;
    let limits: BTreeMap<String, i64> = QUOTA_RESOURCES
        .iter()
        .map(|r| ((*r).to_owned(), defaults.get(r)))
        .collect();
    Ok(Json(quota_set(
        &limits,
        Some(&ProjectId::from_string(project)),
    )))
}

/// Resources whose use we track, so a limit below it can be refused.
const TRACKED: &[&str] = &["instances", "cores", "ram", "server_groups"];

/// Changes a project's quotas, or with `?user_id=` one user's (admin):
/// integers >= -1, known resources only; all values are applied or none.
/// Lowering a project limit below the current use needs `"force": true`;
/// a user's limit may not exceed the project's. Answers with the whole set.
#[utoipa::path(put, path = "/v2.1/os-quota-sets/{project_id}", tag = "compute",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = Option<String>, Query, description = "Set one user's limits")),
    responses((status = 200, description = "The updated quota set"), (status = 400, description = "Bad value or key"),
              (status = 403, description = "Not an admin")))]
pub async fn quota_set_update(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaWrite)?;
    let set = params::wrapped(&body, "quota_set")?;
    let mut allowed: Vec<&str> = QUOTA_RESOURCES.to_vec();
    allowed.push("force");
    params::only_known(set, &allowed, "quota_set")?;
    let force = match set.get("force") {
        None => false,
        Some(v) => params::boolean(v, "quota_set.force")?,
    };
    let mut changes = BTreeMap::new();
    for (k, v) in set.iter().filter(|(k, _)| *k != "force") {
        changes.insert(
            k.clone(),
            params::integer(v, &format!("quota_set.{k}"), -1, MAX_INT)?,
        );
    }
    let project = ProjectId::from_string(project);
    match state.store().project_get(&project).await {
        Ok(_) => {}
        Err(Error::NotFound { .. }) => {
            return Err(ApiError::bad_request(format!(
                "Project ID {project} is not a valid project."
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let user = match q.get("user_id") {
        None => None,
        Some(u) => {
            let user = UserId::from_string(u);
            match state.store().user_get(&user).await {
                Ok(_) => Some(user),
                Err(Error::NotFound { .. }) => {
                    return Err(ApiError::bad_request(format!(
                        "User ID {u} is not a valid user."
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if user.is_some() {
        let project_limits = state
            .store()
            .quota_limits(&project, &state.config().quotas)
            .await?;
        for (resource, limit) in &changes {
            let max = project_limits.get(resource).copied().unwrap_or(-1);
            if max >= 0 && (*limit < 0 || *limit > max) {
                return Err(params::invalid(
                    &format!("quota_set.{resource}"),
                    format!(
                        "Quota limit {limit} for {resource} must be in the range of 0 and \
                         {max}, the project's limit."
                    ),
                ));
            }
        }
    } else if !force {
        let used = state.store().compute_usage(&project).await?;
        for (resource, limit) in changes
            .iter()
            .filter(|(k, _)| TRACKED.contains(&k.as_str()))
        {
            let in_use = used.get(resource).copied().unwrap_or(0);
            if *limit >= 0 && *limit < in_use {
                return Err(params::invalid(
                    &format!("quota_set.{resource}"),
                    format!(
                        "Quota limit {limit} for {resource} must be greater than or equal to \
                         already used and reserved {in_use}."
                    ),
                ));
            }
        }
    }
    state
        .store()
        .quota_set_many(&project, user.as_ref(), &changes)
        .await?;
    let limits = limits_for(&state, &project, &q).await?;
    // Nova's update answer has no `id` (tempest's schema refuses it).
    Ok(Json(quota_set(&limits, None)))
}

/// Puts a project's quotas back to the defaults, or with `?user_id=` one
/// user's back to the project's (admin).
#[utoipa::path(delete, path = "/v2.1/os-quota-sets/{project_id}", tag = "compute",
    params(("project_id" = String, Path, description = "Project id"),
           ("user_id" = Option<String>, Query, description = "Reset one user's limits")),
    responses((status = 202, description = "Reset to defaults"), (status = 403, description = "Not an admin")))]
pub async fn quota_set_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
    Path(project): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::QuotaWrite)?;
    let project = ProjectId::from_string(project);
    match q.get("user_id") {
        Some(u) => {
            state
                .store()
                .quota_reset_user(&project, &UserId::from_string(u))
                .await?
        }
        None => state.store().quota_reset(&project).await?,
    }
    Ok(StatusCode::ACCEPTED)
}
