//! `/v2.0/quotas/{project_id}[/default|/details]`: a project's network
//! quotas, read-only.
//!
//! `openstack quota show` (and openstacksdk's `get_network_quotas`) read
//! these next to the compute quotas, and fail the whole command on a 404.
//! Security groups and rules are limited by the project's compute quota
//! set (`security_groups`, `security_group_rules`: one limit, enforced by
//! the network API), so they are reported from it; networks, subnets and
//! ports are not limited (`-1`). Changing limits goes through
//! `/v2.1/os-quota-sets`.

use crate::auth::{Action, Ctx};
use crate::compute::quotas::{check_project, usage};
use crate::error::ApiResult;
use crate::network::ok;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use cloud_model::ProjectId;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Neutron's resource names, with the compute quota resource limiting
/// each (`None`: unlimited).
const RESOURCES: &[(&str, Option<&str>)] = &[
    ("network", None),
    ("subnet", None),
    ("port", None),
    ("security_group", Some("security_groups")),
    ("security_group_rule", Some("security_group_rules")),
];

/// The limit of a resource limited by compute quota `source` (-1: none).
fn limit_of(source: Option<&str>, limits: &BTreeMap<String, i64>) -> i64 {
    source.and_then(|s| limits.get(s).copied()).unwrap_or(-1)
}

/// Each resource's limit, from `limits` (compute quota resource -> limit).
fn limits_view(limits: &BTreeMap<String, i64>) -> Value {
    let mut quota = Map::new();
    for (name, source) in RESOURCES {
        quota.insert((*name).to_owned(), json!(limit_of(*source, limits)));
    }
    Value::Object(quota)
}

/// Shows a project's network quotas.
#[utoipa::path(get, path = "/v2.0/quotas/{project_id}", tag = "network",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "`{\"quota\": {network, subnet, port, \
        security_group, security_group_rule}}`"),
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
        .filter_map(|(_, s)| *s)
        .map(|s| (s.to_owned(), defaults.get(s)))
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
    let networking = store.network_counts(&project).await?;
    let mut quota = Map::new();
    for (name, source) in RESOURCES {
        let used = match networking.get(*name) {
            Some(n) => *n,
            None => source.and_then(|s| counted.get(s).copied()).unwrap_or(0),
        };
        quota.insert(
            (*name).to_owned(),
            json!({"limit": limit_of(*source, &limits), "used": used, "reserved": 0}),
        );
    }
    Ok(ok("quota", Value::Object(quota)))
}
