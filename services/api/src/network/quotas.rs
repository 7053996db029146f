//! `/v2.0/quotas/{project_id}[/default|/details]`: a project's network
//! quotas, read-only.
//!
//! `openstack quota show` (and openstacksdk's `get_network_quotas`) read
//! these next to the compute quotas, and fail the whole command on a 404.
//! Security groups and rules are limited by the project's compute quota
//! set (`security_groups`, `security_group_rules`: one limit, enforced by
//! the network API), so they are reported from it; networks, subnets and
//! ports are not limited (`-1`). Routers and floating IPs have Neutron's
//! own limits (`router` 10, `floatingip` 50 by default; a project's
//! override is a `quota_limits` row of that name), enforced by the
//! router and floating IP APIs. Changing the compute-backed limits goes
//! through `/v2.1/os-quota-sets`.

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

/// Where the limit of a network resource comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Not limited.
    Unlimited,
    /// The compute quota resource of this name.
    Compute(&'static str),
    /// Its own limit (a project override of the same name), with this
    /// default.
    Own(i64),
}

/// Neutron's resource names, with where each one's limit comes from.
const RESOURCES: &[(&str, Source)] = &[
    ("network", Source::Unlimited),
    ("subnet", Source::Unlimited),
    ("port", Source::Unlimited),
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

/// A project's limit of `resource` (`router` or `floatingip`; -1: none).
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
