//! `/v2.0/extensions[/{alias}]`: the Neutron API extensions we implement.
//!
//! openstacksdk, the `openstack` CLI and Ansible's openstack.cloud modules
//! probe this list before using optional attributes (`port create` asks for
//! `tag-ports-during-bulk-creation`, the SDK's cloud layer for `qos`,
//! `network_availability_zone`...). Only extensions whose attributes and
//! behaviour really exist here are listed, so a client never sends
//! something we would then reject or ignore.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::network::ok;
use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

/// `(alias, name, description)` of each extension we implement.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "security-group",
        "security-group",
        "The security groups extension.",
    ),
    (
        "quotas",
        "Quota management support",
        "Expose functions for quotas management per project.",
    ),
    (
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project.",
    ),
    (
        "port-security",
        "Port Security",
        "Provides port security (port_security_enabled on networks and ports).",
    ),
    (
        "allowed-address-pairs",
        "Allowed Address Pairs",
        "Provides allowed address pairs.",
    ),
    (
        "net-mtu",
        "Network MTU",
        "Provides MTU attribute for a network resource.",
    ),
    (
        "net-mtu-writable",
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
    ),
    (
        "provider",
        "Provider Network",
        "Expose mapping of virtual networks to physical networks.",
    ),
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute (router:external) to network resource.",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes.",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources.",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "Adds revision_number to all Neutron resources.",
    ),
    (
        "router",
        "Neutron L3 Router",
        "Router abstraction for layer 3 forwarding between layer 2 Neutron networks and access \
         to external networks.",
    ),
    (
        "extraroute",
        "Neutron Extra Route",
        "Extra routes configuration for L3 router.",
    ),
    (
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the \
         external gateway.",
    ),
    (
        "project-id",
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
];

fn view((alias, name, description): &(&str, &str, &str)) -> Value {
    json!({
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2026-01-01T00:00:00-00:00",
        "links": [],
    })
}

/// Lists the implemented extensions.
#[utoipa::path(get, path = "/v2.0/extensions", tag = "network",
    responses((status = 200, description = "`{\"extensions\": [{alias, name, description, \
        updated, links}]}`")))]
pub async fn extension_list(ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    Ok(Json(
        json!({"extensions": EXTENSIONS.iter().map(view).collect::<Vec<_>>()}),
    ))
}

/// Shows one extension by alias; an unknown alias is a 404 (clients use
/// that to learn a feature is missing).
#[utoipa::path(get, path = "/v2.0/extensions/{alias}", tag = "network",
    params(("alias" = String, Path, description = "Extension alias")),
    responses((status = 200, description = "The extension"),
        (status = 404, description = "Not implemented here")))]
pub async fn extension_show(ctx: Ctx, Path(alias): Path<String>) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    EXTENSIONS
        .iter()
        .find(|e| e.0 == alias)
        .map(|e| ok("extension", view(e)))
        .ok_or_else(|| {
            ApiError::new(
                FaultKind::NotFound(None),
                format!("Extension with alias {alias} does not exist"),
            )
        })
}
