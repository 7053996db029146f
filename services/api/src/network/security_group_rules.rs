//! `/v2.0/security-group-rules[/{id}]`: rules of security groups.
//!
//! A rule belongs to its group's project. Its attributes are checked in
//! [`rule_checks`](crate::network::rule_checks); a rule identical to an
//! existing one of the group is a 409, as in Neutron. Creating or deleting
//! a rule tells the hosts enforcing the group.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::notify::{Changed, Notifier};
use crate::network::rule_checks::{self, ProtocolRequest};
use crate::network::security_groups::limit;
use crate::network::{body_id, check_len, created, ok, path_id, views};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::SecurityGroupRule;
use cloud_model::{ResourceKind, SecurityGroupId, SecurityGroupRuleId};
use cloud_store::{NewRule, Scope};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// `POST /v2.0/security-group-rules` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCreateBody {
    security_group_rule: RuleCreate,
}

/// The attributes of a new rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleCreate {
    security_group_id: Option<String>,
    direction: Option<String>,
    ethertype: Option<String>,
    protocol: Option<ProtocolRequest>,
    port_range_min: Option<i64>,
    port_range_max: Option<i64>,
    remote_ip_prefix: Option<String>,
    remote_group_id: Option<String>,
    remote_address_group_id: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// Adds a rule to a group of the caller's.
#[utoipa::path(post, path = "/v2.0/security-group-rules", tag = "network",
    request_body(content = Object, description = "`{\"security_group_rule\": \
        {security_group_id, direction, ethertype, protocol, port_range_min, port_range_max, \
        remote_ip_prefix, remote_group_id, description}}`"),
    responses((status = 201, description = "The new rule"),
        (status = 400, description = "Invalid attribute"),
        (status = 404, description = "No such (remote) security group"),
        (status = 409, description = "Duplicate rule, or over quota")))]
pub async fn security_group_rule_create(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    JsonBody(body): JsonBody<RuleCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::SecurityGroupWrite)?;
    let req = body.security_group_rule;
    let raw_group = req.security_group_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("Invalid input: security_group_id is required to create a rule.")
    })?;
    let group_id = body_id("security_group_id", raw_group, SecurityGroupId::parse)?;
    let group = state
        .store()
        .security_group_get(group_id, &ctx.read_scope()?)
        .await?;
    if let Some(p) = req.project_id.as_deref().or(req.tenant_id.as_deref())
        && p != group.project_id.as_str()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid input for project_id: a rule belongs to its group's project ({}), not '{p}'.",
            group.project_id
        )));
    }
    if req.remote_address_group_id.is_some() {
        return Err(ApiError::bad_request(
            "Invalid input for remote_address_group_id: address groups are not supported.",
        ));
    }
    if req.remote_ip_prefix.is_some() && req.remote_group_id.is_some() {
        return Err(ApiError::bad_request(
            "Invalid input: only one of remote_ip_prefix and remote_group_id may be given.",
        ));
    }
    let checked = rule_checks::check(
        req.direction.as_deref(),
        req.ethertype.as_deref(),
        req.protocol.as_ref(),
        req.port_range_min,
        req.port_range_max,
        req.remote_ip_prefix.as_deref(),
    )?;
    let remote_group_id = match req.remote_group_id.as_deref() {
        None => None,
        Some(raw) => {
            let id = body_id("remote_group_id", raw, SecurityGroupId::parse)?;
            state
                .store()
                .security_group_get(id, &Scope::Project(group.project_id.clone()))
                .await?;
            Some(id)
        }
    };
    let description = req.description.unwrap_or_default();
    check_len("description", &description, 255)?;
    let limit = limit(&state, &group.project_id, "security_group_rules").await?;
    let rule = state
        .store()
        .security_group_rule_create(
            &group.project_id,
            &NewRule {
                security_group_id: group.id,
                direction: checked.direction,
                ethertype: checked.ethertype,
                protocol: checked.protocol,
                port_range_min: checked.port_range_min,
                port_range_max: checked.port_range_max,
                remote_ip_prefix: checked.remote_ip_prefix,
                remote_group_id,
                description,
            },
            limit,
        )
        .await?;
    notify.changed(Changed::groups([group.id])).await;
    Ok(created(
        "security_group_rule",
        views::rule(&rule, group.is_default),
    ))
}

/// The ids of the default groups among those the caller sees.
async fn default_groups(state: &AppState, ctx: &Ctx) -> ApiResult<BTreeSet<SecurityGroupId>> {
    Ok(state
        .store()
        .security_group_list(&ctx.read_scope()?, None)
        .await?
        .iter()
        .filter(|g| g.is_default)
        .map(|g| g.id)
        .collect())
}

/// Lists the rules of the caller's groups (admins: all), filtered by any
/// attribute.
#[utoipa::path(get, path = "/v2.0/security-group-rules", tag = "network",
    params(("security_group_id" = Option<String>, Query, description = "Group"),
        ("direction" = Option<String>, Query, description = "ingress or egress"),
        ("ethertype" = Option<String>, Query, description = "IPv4 or IPv6"),
        ("protocol" = Option<String>, Query, description = "Protocol")),
    responses((status = 200, description = "Rules")))]
pub async fn security_group_rule_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::SecurityGroupRead)?;
    state
        .store()
        .security_group_ensure_default(ctx.project_id()?)
        .await?;
    let filters = Filters::from_query(&q);
    let group = match filters.single("security_group_id") {
        Some(raw) => match SecurityGroupId::parse(raw) {
            Some(id) => Some(id),
            None => return Ok(Json(json!({ "security_group_rules": [] }))),
        },
        None => None,
    };
    let defaults = default_groups(&state, &ctx).await?;
    let rules = state
        .store()
        .security_group_rule_list(&ctx.read_scope()?, group)
        .await?;
    let views = filters.apply(
        rules
            .iter()
            .map(|r| views::rule(r, defaults.contains(&r.security_group_id)))
            .collect(),
    );
    Ok(Json(json!({ "security_group_rules": views })))
}

/// Loads a rule the caller may see.
async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<SecurityGroupRule> {
    let id = path_id(
        raw,
        ResourceKind::SecurityGroupRule,
        SecurityGroupRuleId::parse,
    )?;
    Ok(state
        .store()
        .security_group_rule_get(id, &ctx.read_scope()?)
        .await?)
}

/// Shows a rule.
#[utoipa::path(get, path = "/v2.0/security-group-rules/{rule_id}", tag = "network",
    params(("rule_id" = String, Path, description = "Rule id")),
    responses((status = 200, description = "The rule"),
        (status = 404, description = "No such rule visible to the caller")))]
pub async fn security_group_rule_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(rule_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::SecurityGroupRead)?;
    let rule = load(&state, &ctx, &rule_id).await?;
    let in_default = state
        .store()
        .security_group_get(rule.security_group_id, &Scope::All)
        .await?
        .is_default;
    Ok(ok("security_group_rule", views::rule(&rule, in_default)))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/v2.0/security-group-rules/{rule_id}", tag = "network",
    params(("rule_id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such rule")))]
pub async fn security_group_rule_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(rule_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::SecurityGroupWrite)?;
    let rule = load(&state, &ctx, &rule_id).await?;
    state.store().security_group_rule_delete(rule.id).await?;
    notify
        .changed(Changed::groups([rule.security_group_id]))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
