//! Network (Neutron v2.0 subset), mounted at `/network`.
//!
//! Networks, subnets with IPAM, ports, security groups, routers and
//! floating IPs, in Neutron's JSON shapes and error format. Records live in the store, which also
//! guarantees the invariants that concurrency could break (an address is
//! handed out once, subnets of a network never overlap, one default
//! security group per project); handlers validate input, apply the policy
//! and render.
//!
//! Visibility: a caller sees its project's resources plus shared networks
//! (and their subnets); admins see every project's. Another project's
//! private resource is a 404. A shared network is visible but not writable
//! by other projects (403). Admins may create resources for another
//! project by naming it in `project_id` / `tenant_id`.

pub mod extensions;
pub mod filters;
pub mod floating_ip_checks;
pub mod floating_ips;
pub mod network_checks;
pub mod networks;
pub mod notify;
pub mod port_checks;
pub mod ports;
pub mod quotas;
pub mod router_checks;
pub mod routers;
pub mod rule_checks;
pub mod security_group_rules;
pub mod security_groups;
pub mod subnet_checks;
pub mod subnets;
pub mod versions;
pub mod views;

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::Json;
use axum::http::StatusCode;
use cloud_model::{Error, ProjectId, ResourceKind};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of the network service, relative to its prefix.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(versions::network_versions))
        .routes(routes!(versions::network_v2))
        .routes(routes!(extensions::extension_list))
        .routes(routes!(extensions::extension_show))
        .routes(routes!(
            quotas::network_quota_show,
            quotas::network_quota_update,
            quotas::network_quota_reset
        ))
        .routes(routes!(quotas::network_quota_default))
        .routes(routes!(quotas::network_quota_details))
        .routes(routes!(networks::network_list, networks::network_create))
        .routes(routes!(
            networks::network_show,
            networks::network_update,
            networks::network_delete
        ))
        .routes(routes!(subnets::subnet_list, subnets::subnet_create))
        .routes(routes!(
            subnets::subnet_show,
            subnets::subnet_update,
            subnets::subnet_delete
        ))
        .routes(routes!(ports::port_list, ports::port_create))
        .routes(routes!(
            ports::port_show,
            ports::port_update,
            ports::port_delete
        ))
        .routes(routes!(
            security_groups::security_group_list,
            security_groups::security_group_create
        ))
        .routes(routes!(
            security_groups::security_group_show,
            security_groups::security_group_update,
            security_groups::security_group_delete
        ))
        .routes(routes!(
            security_group_rules::security_group_rule_list,
            security_group_rules::security_group_rule_create
        ))
        .routes(routes!(
            security_group_rules::security_group_rule_show,
            security_group_rules::security_group_rule_delete
        ))
        .routes(routes!(routers::router_list, routers::router_create))
        .routes(routes!(
            routers::router_show,
            routers::router_update,
            routers::router_delete
        ))
        .routes(routes!(routers::router_add_interface))
        .routes(routes!(routers::router_remove_interface))
        .routes(routes!(
            floating_ips::floating_ip_list,
            floating_ips::floating_ip_create
        ))
        .routes(routes!(
            floating_ips::floating_ip_show,
            floating_ips::floating_ip_update,
            floating_ips::floating_ip_delete
        ))
}

/// Parses a resource id from the path. Names and garbage are 404s of the
/// resource's kind, which is what lets OSC fall back to `?name=`.
pub fn path_id<T>(raw: &str, kind: ResourceKind, parse: fn(&str) -> Option<T>) -> ApiResult<T> {
    parse(raw).ok_or_else(|| Error::not_found(kind, raw).into())
}

/// Parses a resource id given in a request body; a malformed one is a 400
/// naming the field.
pub fn body_id<T>(field: &str, raw: &str, parse: fn(&str) -> Option<T>) -> ApiResult<T> {
    parse(raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for {field}. Reason: '{raw}' is not a valid UUID."
        ))
    })
}

/// The project a new resource belongs to: the caller's, or (admins only)
/// the one named by `project_id` / `tenant_id` in the body.
pub fn target_project(
    ctx: &Ctx,
    project_id: Option<&str>,
    tenant_id: Option<&str>,
) -> ApiResult<ProjectId> {
    let own = ctx.project_id()?;
    let requested = match (project_id, tenant_id) {
        (Some(p), Some(t)) if p != t => {
            return Err(ApiError::bad_request(format!(
                "Invalid input: project_id '{p}' and tenant_id '{t}' differ; give one of them."
            )));
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => return Ok(own.clone()),
    };
    if requested == own.as_str() {
        return Ok(own.clone());
    }
    if requested.is_empty() || requested.chars().count() > 255 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for project_id: '{requested}' is not a project id."
        )));
    }
    if !ctx.is_admin() {
        return Err(ApiError::new(
            FaultKind::Forbidden,
            "Specifying a project_id or tenant_id other than the authenticated project requires \
             the admin role.",
        ));
    }
    Ok(ProjectId::from_string(requested))
}

/// Refuses changes to a resource the caller can see but does not own (a
/// network another project shared, or a subnet on it): 403, as Neutron.
pub fn ensure_owner(ctx: &Ctx, owner: &ProjectId, what: &str) -> ApiResult<()> {
    if ctx.is_admin() || ctx.project_id()? == owner {
        return Ok(());
    }
    Err(ApiError::new(
        FaultKind::Forbidden,
        format!("You are not allowed to modify {what}: it belongs to another project."),
    ))
}

/// Checks a free-text attribute's length (Neutron's limit: 255 for names,
/// 255 for descriptions).
pub fn check_len(field: &str, value: &str, max: usize) -> ApiResult<()> {
    let n = value.chars().count();
    if n > max {
        return Err(ApiError::bad_request(format!(
            "Invalid input for {field}. Reason: '{}...' exceeds maximum length of {max} ({n}).",
            value.chars().take(20).collect::<String>()
        )));
    }
    Ok(())
}

/// A new resource's name and description (empty when not given), each
/// at most 255 characters.
pub fn name_and_description(
    name: Option<String>,
    description: Option<String>,
) -> ApiResult<(String, String)> {
    let name = name.unwrap_or_default();
    let description = description.unwrap_or_default();
    check_len("name", &name, 255)?;
    check_len("description", &description, 255)?;
    Ok((name, description))
}

/// Deserializes a field that distinguishes "absent" (`None`, through
/// `#[serde(default)]`) from `null` (`Some(None)`), as `gateway_ip` needs.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A `201 Created` with `{key: value}`.
pub fn created(key: &str, value: Value) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({ key: value })))
}

/// A `200 OK` with `{key: value}`.
pub fn ok(key: &str, value: Value) -> Json<Value> {
    Json(json!({ key: value }))
}
