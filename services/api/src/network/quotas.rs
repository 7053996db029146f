//! `/v2.0/quotas/{project_id}[/default|/details]`: a project's network
//! quotas, as Neutron's quotas extension.
//!
//! `openstack quota show` (and openstacksdk's `get_network_quotas`) read
//! these next to the compute quotas, and fail the whole command on a 404;
//! `openstack quota set --networks N` writes them (admin). Networks,
//! subnets, ports, routers and floating IPs have Neutron's own limits
//! (100, 100, 500, 10 and 50 by default; a project's override is a
//! `quota_limits` row of that name), enforced when they are created
//! through this API with Neutron's 409 `OverQuota`. Security groups and
//! rules are limited by the project's compute quota set
//! (`security_groups`, `security_group_rules`: one limit, enforced by the
//! network API), so they are reported, and set, through it.

use crate::auth::{Action, Ctx};
use crate::compute::params::{self, MAX_INT};
use crate::compute::quotas::{check_project, usage};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::JsonBody;
use crate::network::ok;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{Error, ProjectId};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Where the limit of a network resource comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Not limited (a name no resource has).
    Unlimited,
    /// The compute quota resource of this name.
    Compute(&'static str),
    /// Its own limit (a project override of the same name), with this
    /// default.
    Own(i64),
}

/// Neutron's resource names, with where each one's limit comes from.
const RESOURCES: &[(&str, Source)] = &[
    ("network", Source::Own(100)),
    ("subnet", Source::Own(100)),
    ("port", Source::Own(500)),
    ("router", Source::Own(10)),
    ("floatingip", Source::Own(50)),
    ("security_group", Source::Compute("security_groups")),
    (
        "security_group_rule",
        Source::Compute("security_group_rules"),
    ),
];

/// The limit of `name` fed from `source` (-1: none), given the project's
/// limits by compute resource name plus its overrides.
fn limit_of(name: &str, source: Source, limits: &BTreeMap<String, i64>) -> i64 {
    match source {
        Source::Unlimited => -1,
        Source::Compute(s) => limits.get(s).copied().unwrap_or(-1),
        Source::Own(default) => limits.get(name).copied().unwrap_or(default),
    }
}

/// A project's limit of `resource` (`network`, `subnet`, `port`, `router`
/// or `floatingip`; -1: none).
pub async fn network_limit(
    state: &AppState,
    project: &ProjectId,
    resource: &str,
) -> ApiResult<i64> {
    let limits = state
        .store()
        .quota_limits(project, &state.config().quotas)
        .await?;
    let source = RESOURCES
        .iter()
        .find(|(n, _)| *n == resource)
        .map_or(Source::Unlimited, |(_, s)| *s);
    Ok(limit_of(resource, source, &limits))
}

/// Refuses to create one more `resource` (`network`, `subnet` or `port`)
/// in `project` when it already has as many as its limit allows:
/// Neutron's 409 `OverQuota`. (Routers and floating IPs are counted in
/// the store's insert instead.)
pub async fn ensure_room(state: &AppState, project: &ProjectId, resource: &str) -> ApiResult<()> {
    let limit = network_limit(state, project, resource).await?;
    if limit < 0 {
        return Ok(());
    }
    let used = state
        .store()
        .network_counts(project)
        .await?
        .get(resource)
        .copied()
        .unwrap_or(0);
    if used >= limit {
        return Err(ApiError::new(
            FaultKind::OverQuota,
            format!("Quota exceeded for resources: ['{resource}'] (limit {limit})."),
        ));
    }
    Ok(())
}

/// Each resource's limit, from `limits` (compute quota resource -> limit).
fn limits_view(limits: &BTreeMap<String, i64>) -> Value {
    let mut quota = Map::new();
    for (name, source) in RESOURCES {
        quota.insert((*name).to_owned(), json!(limit_of(name, *source, limits)));
    }
    Value::Object(quota)
}

/// Shows a project's network quotas.
#[utoipa::path(get, path = "/v2.0/quotas/{project_id}", tag = "network",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "`{\"quota\": {network, subnet, port, router, \
        floatingip, security_group, security_group_rule}}`"),
        (status = 403, description = "Another project (non-admin)")))]
pub async fn network_quota_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaRead)?;
    let project = ProjectId::from_string(project);
    check_project(&ctx, &project)?;
    let limits = state
        .store()
        .quota_limits(&project, &state.config().quotas)
        .await?;
    Ok(ok("quota", limits_view(&limits)))
}

/// Shows the default network quotas (a project without overrides).
#[utoipa::path(get, path = "/v2.0/quotas/{project_id}/default", tag = "network",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "The default limits")))]
pub async fn network_quota_default(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(_project): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaRead)?;
    let defaults = &state.config().quotas;
    let limits: BTreeMap<String, i64> = RESOURCES
        .iter()
        .filter_map(|(_, s)| match s {
            Source::Compute(s) => Some(((*s).to_owned(), defaults.get(s))),
            _ => None,
        })
        .collect();
    Ok(ok("quota", limits_view(&limits)))
}

/// Shows a project's network quotas with their use: `{"limit", "used",
/// "reserved"}` per resource.
#[utoipa::path(get, path = "/v2.0/quotas/{project_id}/details", tag = "network",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "Limits and use"),
        (status = 403, description = "Another project (non-admin)")))]
pub async fn network_quota_details(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaRead)?;
    let project = ProjectId::from_string(project);
    check_project(&ctx, &project)?;
    let store = state.store();
    let limits = store.quota_limits(&project, &state.config().quotas).await?;
    let counted = usage(&state, &project, ctx.user_id()).await?;
    let mut networking = store.network_counts(&project).await?;
    networking.extend(store.l3_counts(&project).await?);
    let mut quota = Map::new();
    for (name, source) in RESOURCES {
        let used = match (networking.get(*name), source) {
            (Some(n), _) => *n,
            (None, Source::Compute(s)) => counted.get(*s).copied().unwrap_or(0),
            (None, _) => 0,
        };
        quota.insert(
            (*name).to_owned(),
            json!({"limit": limit_of(name, *source, &limits), "used": used, "reserved": 0}),
        );
    }
    Ok(ok("quota", Value::Object(quota)))
}

/// Body of `PUT /v2.0/quotas/{project_id}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdateBody {
    quota: Map<String, Value>,
}

/// The `quota_limits` row a network resource's limit is kept in.
fn stored_as(name: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(n, source)| match source {
            Source::Own(_) => Some(*n),
            Source::Compute(c) => Some(*c),
            Source::Unlimited => None,
        })
}

/// Sets a project's network quotas (admin): any of `network`, `subnet`,
/// `port`, `router`, `floatingip`, `security_group`, `security_group_rule`
/// (the last two are the compute quota set's), each -1 (unlimited) or
/// more. All of them or, on any invalid value, none.
#[utoipa::path(put, path = "/v2.0/quotas/{project_id}", tag = "network",
    params(("project_id" = String, Path, description = "Project id")),
    request_body(content = Object, description = "`{\"quota\": {\"network\": 10, ...}}`"),
    responses((status = 200, description = "The project's limits"),
        (status = 400, description = "Unknown resource, or a limit below -1"),
        (status = 403, description = "Not an admin")))]
pub async fn network_quota_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<QuotaUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::QuotaWrite)?;
    let mut limits = BTreeMap::new();
    for (name, value) in &body.quota {
        let row = stored_as(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Unrecognized attribute(s) '{name}': the network quotas are network, subnet, \
                 port, router, floatingip, security_group and security_group_rule."
            ))
        })?;
        let limit = params::integer(value, &format!("quota.{name}"), -1, MAX_INT)?;
        limits.insert(row.to_owned(), limit);
    }
    let project = existing_project(&state, project).await?;
    let store = state.store();
    store.quota_set_many(&project, None, &limits).await?;
    let limits = store.quota_limits(&project, &state.config().quotas).await?;
    Ok(ok("quota", limits_view(&limits)))
}

/// Puts a project's network quotas back to the defaults (admin), as
/// Neutron's `DELETE /v2.0/quotas/{project_id}`.
#[utoipa::path(delete, path = "/v2.0/quotas/{project_id}", tag = "network",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 204, description = "Back to the defaults"),
        (status = 403, description = "Not an admin")))]
pub async fn network_quota_reset(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::QuotaWrite)?;
    let project = existing_project(&state, project).await?;
    let rows: Vec<&str> = RESOURCES.iter().filter_map(|(n, _)| stored_as(n)).collect();
    state.store().quota_unset(&project, &rows).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project a quota update names, which must exist (a 400 otherwise, as
/// the compute quota API answers).
async fn existing_project(state: &AppState, id: String) -> ApiResult<ProjectId> {
    let project = ProjectId::from_string(id);
    match state.store().project_get(&project).await {
        Ok(_) => Ok(project),
        Err(Error::NotFound { .. }) => Err(ApiError::bad_request(format!(
            "Project ID {project} is not a valid project."
        ))),
        Err(e) => Err(e.into()),
    }
}
