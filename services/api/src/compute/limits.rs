//! `GET /v2.1/limits`: a project's absolute limits and what it uses, with
//! Nova's names (`maxTotalCores`, `totalCoresUsed`, ...).
//!
//! Every key of the 2.1 schema is always present and an integer (tempest
//! requires all of them); `rate` is empty since rate limits are not
//! expressed per project.

use crate::auth::{Action, Ctx};
use crate::compute::quotas::{check_project, usage};
use crate::error::ApiResult;
use crate::extract::QueryPairs;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use cloud_model::ProjectId;
use serde_json::{Map, Value, json};

/// `max*` keys and the quota resource each one shows.
const MAXIMA: &[(&str, &str)] = &[
    ("maxServerMeta", "metadata_items"),
    ("maxPersonality", "injected_files"),
    ("maxPersonalitySize", "injected_file_content_bytes"),
    ("maxImageMeta", "metadata_items"),
    ("maxTotalKeypairs", "key_pairs"),
    ("maxSecurityGroupRules", "security_group_rules"),
    ("maxSecurityGroups", "security_groups"),
    ("maxServerGroups", "server_groups"),
    ("maxServerGroupMembers", "server_group_members"),
    ("maxTotalCores", "cores"),
    ("maxTotalFloatingIps", "floating_ips"),
    ("maxTotalInstances", "instances"),
    ("maxTotalRAMSize", "ram"),
];

/// `total*Used` keys and the resource whose use each one shows.
const USED: &[(&str, &str)] = &[
    ("totalCoresUsed", "cores"),
    ("totalRAMUsed", "ram"),
    ("totalInstancesUsed", "instances"),
    ("totalFloatingIpsUsed", "floating_ips"),
    ("totalSecurityGroupsUsed", "security_groups"),
    ("totalServerGroupsUsed", "server_groups"),
];

/// Shows the caller's project limits and usage; admins may name another
/// project with `?tenant_id=`.
#[utoipa::path(get, path = "/v2.1/limits", tag = "compute",
    params(("tenant_id" = Option<String>, Query, description = "Another project (admin)")),
    responses((status = 200, description = "Limits and usage"), (status = 403, description = "Another project")))]
pub async fn limits_show(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::LimitsRead)?;
    let project = match q.get("tenant_id") {
        Some(t) => ProjectId::from_string(t),
        None => ctx.project_id()?.clone(),
    };
    check_project(&ctx, &project)?;
    let limits = state
        .store()
        .quota_limits(&project, &state.config().quotas)
        .await?;
    let used = usage(&state, &project, ctx.user_id()).await?;
    let mut absolute = Map::new();
    for (key, resource) in MAXIMA {
        absolute.insert(
            (*key).to_owned(),
            json!(limits.get(*resource).copied().unwrap_or(-1)),
        );
    }
    for (key, resource) in USED {
        absolute.insert(
            (*key).to_owned(),
            json!(used.get(*resource).copied().unwrap_or(0)),
        );
    }
    Ok(Json(json!({"limits": {"rate": [], "absolute": absolute}})))
}
