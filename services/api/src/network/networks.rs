//! `/v2.0/networks[/{id}]`: create, list, show, update and delete networks.
//!
//! Deleting a network deletes its subnets (tempest checks that), and is
//! refused while ports remain on it. Sharing a network, marking it
//! external and choosing its segment (the provider attributes) are for
//! admins; only admins see the segment, as with Neutron's default policy.
//! Every project sees the external networks (to take floating IPs from
//! them and put routers' gateways on them), but only their owner changes
//! them (403).
//! A network's MTU defaults to, and may not exceed, what its segment
//! carries.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::network_checks::{self, ProviderRequest};
use crate::network::notify::{Changed, Notifier};
use crate::network::quotas::ensure_room;
use crate::network::{
    check_len, created, ensure_owner, name_and_description, ok, path_id, target_project, views,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::Network;
use cloud_model::{NetworkId, ResourceKind, Timestamp};
use cloud_store::{PortFilter, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /v2.0/networks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreateBody {
    network: NetworkCreate,
}

/// The attributes of a new network.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkCreate {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    mtu: Option<i64>,
    #[serde(rename = "router:external")]
    router_external: Option<bool>,
    port_security_enabled: Option<bool>,
    #[serde(rename = "provider:network_type")]
    provider_network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    provider_physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    provider_segmentation_id: Option<Value>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// `PUT /v2.0/networks/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdateBody {
    network: NetworkUpdate,
}

/// The changeable attributes of a network (the provider attributes are
/// accepted only to be refused with a message that says why).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkUpdate {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    mtu: Option<i64>,
    #[serde(rename = "router:external")]
    router_external: Option<bool>,
    port_security_enabled: Option<bool>,
    #[serde(rename = "provider:network_type")]
    provider_network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    provider_physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    provider_segmentation_id: Option<Value>,
}

/// The provider attributes of a request body.
fn provider<'a>(
    network_type: &'a Option<String>,
    physical_network: &'a Option<String>,
    segmentation_id: &'a Option<Value>,
) -> ProviderRequest<'a> {
    ProviderRequest {
        network_type: network_type.as_deref(),
        physical_network: physical_network.as_deref(),
        segmentation_id: segmentation_id.as_ref(),
    }
}

/// The 403 for setting an admin-only attribute.
fn admin_only(ctx: &Ctx, attribute: &str) -> ApiResult<()> {
    ctx.authorize(Action::NetworkShare).map_err(|_| {
        ApiError::new(
            FaultKind::Forbidden,
            format!("Only an admin may set '{attribute}' on a network."),
        )
    })
}

/// Creates a network on the segment the provider attributes name (admins),
/// or on a VXLAN segment with the lowest free VNI of the configured range.
#[utoipa::path(post, path = "/v2.0/networks", tag = "network",
    request_body(content = Object, description = "`{\"network\": {name, description, \
        admin_state_up, shared, mtu, router:external, port_security_enabled, \
        provider:network_type, provider:physical_network, provider:segmentation_id, \
        project_id}}`"),
    responses((status = 201, description = "The new network"),
        (status = 400, description = "Invalid attribute (segment, MTU above the segment's)"),
        (status = 403, description = "Not allowed (shared, external and provider attributes \
            need admin)"),
        (status = 409, description = "The segment is taken, or no VNI is free")))]
pub async fn network_create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody<NetworkCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::NetworkWrite)?;
    let req = body.network;
    let project = target_project(&ctx, req.project_id.as_deref(), req.tenant_id.as_deref())?;
    let (name, description) = name_and_description(req.name, req.description)?;
    let shared = req.shared.unwrap_or(false);
    if shared {
        admin_only(&ctx, "shared")?;
    }
    let external = req.router_external.unwrap_or(false);
    if external {
        admin_only(&ctx, "router:external")?;
    }
    let provider = provider(
        &req.provider_network_type,
        &req.provider_physical_network,
        &req.provider_segmentation_id,
    );
    if let Some(attr) = provider.first_given() {
        admin_only(&ctx, attr)?;
    }
    let network_config = &state.config().network;
    let segment = network_checks::segment(&provider, &network_config.physical_networks)?;
    let mtu = network_checks::mtu(req.mtu, segment.network_type)?;
    ensure_room(&state, &project, "network").await?;
    let now = Timestamp::now();
    let net = Network {
        id: NetworkId::new(),
        project_id: project,
        name,
        description,
        admin_state_up: req.admin_state_up.unwrap_or(true),
        shared,
        external,
        mtu,
        segment,
        port_security_enabled: req.port_security_enabled.unwrap_or(true),
        subnet_ids: Vec::new(),
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    let net = state
        .store()
        .network_create(&net, network_config.vni_range)
        .await?;
    Ok(created("network", views::network(&net, ctx.is_admin())))
}

/// Lists the networks the caller may see (its own and shared ones; admins
/// see all), filtered by any attribute it sees.
#[utoipa::path(get, path = "/v2.0/networks", tag = "network",
    params(("name" = Option<String>, Query, description = "Exact name"),
        ("id" = Option<String>, Query, description = "Network id (repeatable)"),
        ("shared" = Option<bool>, Query, description = "Shared networks only / not"),
        ("admin_state_up" = Option<bool>, Query, description = "By administrative state"),
        ("project_id" = Option<String>, Query, description = "Owner (also tenant_id)"),
        ("router:external" = Option<bool>, Query, description = "External networks only / not"),
        ("provider:network_type" = Option<String>, Query, description = "Segment type \
            (admins)")),
    responses((status = 200, description = "Networks")))]
pub async fn network_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let filters = Filters::from_query(&q);
    let nets = state
        .store()
        .network_list(
            &ctx.read_scope()?,
            &filters.store_map(&[
                "name",
                "shared",
                "admin_state_up",
                "project_id",
                "tenant_id",
                "router:external",
            ]),
        )
        .await?;
    let admin = ctx.is_admin();
    let views = filters.apply(nets.iter().map(|n| views::network(n, admin)).collect());
    Ok(Json(json!({ "networks": views })))
}

/// Loads a network the caller may see.
async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Network> {
    let id = path_id(raw, ResourceKind::Network, NetworkId::parse)?;
    Ok(state.store().network_get(id, &ctx.read_scope()?).await?)
}

/// Shows a network. Names are 404s (clients then list with `?name=`).
#[utoipa::path(get, path = "/v2.0/networks/{network_id}", tag = "network",
    params(("network_id" = String, Path, description = "Network id")),
    responses((status = 200, description = "The network"),
        (status = 404, description = "No such network visible to the caller")))]
pub async fn network_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(network_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let net = load(&state, &ctx, &network_id).await?;
    Ok(ok("network", views::network(&net, ctx.is_admin())))
}

/// Changes a network's name, description, state, MTU, default port
/// security or (admins) sharing. The segment cannot change.
#[utoipa::path(put, path = "/v2.0/networks/{network_id}", tag = "network",
    params(("network_id" = String, Path, description = "Network id")),
    request_body(content = Object, description = "`{\"network\": {name, description, \
        admin_state_up, shared, mtu, router:external, port_security_enabled}}`"),
    responses((status = 200, description = "The updated network"),
        (status = 400, description = "Invalid attribute, MTU above the segment's, or a \
            provider attribute"),
        (status = 403, description = "Not the owner, or admin-only attribute"),
        (status = 404, description = "No such network"),
        (status = 409, description = "Other projects still use the network")))]
pub async fn network_update(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(network_id): Path<String>,
    JsonBody(body): JsonBody<NetworkUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let mut net = load(&state, &ctx, &network_id).await?;
    ensure_owner(&ctx, &net.project_id, &format!("network {}", net.id))?;
    let req = body.network;
    let provider = provider(
        &req.provider_network_type,
        &req.provider_physical_network,
        &req.provider_segmentation_id,
    );
    if let Some(attr) = provider.first_given() {
        admin_only(&ctx, attr)?;
        return Err(ApiError::bad_request(format!(
            "Invalid input for operation: Plugin does not support updating provider attributes \
             ({attr}): a network keeps its segment."
        )));
    }
    if let Some(name) = req.name {
        check_len("name", &name, 255)?;
        net.name = name;
    }
    if let Some(description) = req.description {
        check_len("description", &description, 255)?;
        net.description = description;
    }
    if let Some(up) = req.admin_state_up {
        net.admin_state_up = up;
    }
    if let Some(mtu) = req.mtu {
        network_checks::check_mtu(mtu, net.segment.network_type)?;
        net.mtu = mtu;
    }
    if let Some(enabled) = req.port_security_enabled {
        net.port_security_enabled = enabled;
    }
    if let Some(external) = req.router_external.filter(|e| *e != net.external) {
        admin_only(&ctx, "router:external")?;
        net.external = external;
    }
    if let Some(shared) = req.shared.filter(|s| *s != net.shared) {
        admin_only(&ctx, "shared")?;
        if !shared {
            ensure_unused_by_others(&state, &net).await?;
        }
        net.shared = shared;
    }
    let net = state.store().network_update(&net).await?;
    notify.changed(Changed::network(net.id)).await;
    Ok(ok("network", views::network(&net, ctx.is_admin())))
}

/// A network stops being shared only when no other project has ports on
/// it (Neutron's `InvalidSharedSetting`).
async fn ensure_unused_by_others(state: &AppState, net: &Network) -> ApiResult<()> {
    let ports = state
        .store()
        .port_list(&PortFilter {
            scope: Scope::All,
            network_id: Some(net.id),
            device_id: None,
            device_owner: None,
            name: None,
            mac_address: None,
            binding_host: None,
        })
        .await?;
    if let Some(p) = ports.iter().find(|p| p.project_id != net.project_id) {
        return Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "Unable to reconfigure sharing settings for network {}. Multiple tenants are \
                 using it: project {} has port {} on it.",
                net.id, p.project_id, p.id
            ),
        ));
    }
    Ok(())
}

/// Deletes a network and its subnets; refused (409) while ports remain.
#[utoipa::path(delete, path = "/v2.0/networks/{network_id}", tag = "network",
    params(("network_id" = String, Path, description = "Network id")),
    responses((status = 204, description = "Deleted, with its subnets"),
        (status = 403, description = "Not the owner"),
        (status = 404, description = "No such network"),
        (status = 409, description = "Ports remain on the network")))]
pub async fn network_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(network_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::NetworkWrite)?;
    let net = load(&state, &ctx, &network_id).await?;
    ensure_owner(&ctx, &net.project_id, &format!("network {}", net.id))?;
    state.store().network_delete(net.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
