//! `/v2.0/subnets[/{id}]`: IPv4 subnets of a network.
//!
//! Only the network's owner (or an admin) may add subnets to it. The store
//! refuses a CIDR overlapping another subnet of the same network, the
//! deletion of a subnet whose addresses ports still hold (its DHCP ports
//! go with it), and a change of the gateway while a router's interface
//! holds it (409, Neutron's `GatewayIpInUse`). Subnets of external
//! networks are visible to every project, and writable by their owner.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::notify::{Changed, Notifier};
use crate::network::quotas::ensure_room;
use crate::network::subnet_checks::{self, HostRouteRequest, PoolRequest};
use crate::network::{
    body_id, check_len, created, ensure_owner, name_and_description, nullable, ok, path_id,
    target_project, views,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::Subnet;
use cloud_model::{NetworkId, ResourceKind, SubnetId};
use cloud_store::{NewSubnet, SubnetUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /v2.0/subnets` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCreateBody {
    subnet: SubnetCreate,
}

/// The attributes of a new subnet. The IPv6 and subnet pool attributes are
/// accepted only with their "unused" values, so clients that always send
/// them keep working.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetCreate {
    network_id: Option<String>,
    cidr: Option<String>,
    ip_version: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    gateway_ip: Option<Option<String>>,
    allocation_pools: Option<Vec<PoolRequest>>,
    dns_nameservers: Option<Vec<String>>,
    enable_dhcp: Option<bool>,
    name: Option<String>,
    description: Option<String>,
    host_routes: Option<Vec<HostRouteRequest>>,
    ipv6_ra_mode: Option<String>,
    ipv6_address_mode: Option<String>,
    subnetpool_id: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// `PUT /v2.0/subnets/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetUpdateBody {
    subnet: SubnetChanges,
}

/// The changeable attributes of a subnet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetChanges {
    name: Option<String>,
    description: Option<String>,
    dns_nameservers: Option<Vec<String>>,
    enable_dhcp: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    gateway_ip: Option<Option<String>>,
    host_routes: Option<Vec<HostRouteRequest>>,
}

/// Refuses attributes of features we do not have.
fn unsupported(req: &SubnetCreate) -> ApiResult<()> {
    let set = [
        ("ipv6_ra_mode", req.ipv6_ra_mode.is_some()),
        ("ipv6_address_mode", req.ipv6_address_mode.is_some()),
        ("subnetpool_id", req.subnetpool_id.is_some()),
    ];
    match set.iter().find(|(_, given)| *given) {
        Some((field, _)) => Err(ApiError::bad_request(format!(
            "Invalid input for {field}: this cloud does not support it; leave it unset."
        ))),
        None => Ok(()),
    }
}

/// Creates a subnet on a network the caller owns.
#[utoipa::path(post, path = "/v2.0/subnets", tag = "network",
    request_body(content = Object, description = "`{\"subnet\": {network_id, cidr, \
        ip_version: 4, gateway_ip, allocation_pools, dns_nameservers, enable_dhcp, \
        host_routes: [{destination, nexthop}], name, description}}`"),
    responses((status = 201, description = "The new subnet"),
        (status = 400, description = "Invalid attribute, or overlapping CIDR"),
        (status = 403, description = "Not the network's owner"),
        (status = 404, description = "No such network")))]
pub async fn subnet_create(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    JsonBody(body): JsonBody<SubnetCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::NetworkWrite)?;
    let req = body.subnet;
    unsupported(&req)?;
    let raw_net = req.network_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("Invalid input: network_id is required to create a subnet.")
    })?;
    let network_id = body_id("network_id", raw_net, NetworkId::parse)?;
    let network = state
        .store()
        .network_get(network_id, &ctx.read_scope()?)
        .await?;
    ensure_owner(&ctx, &network.project_id, &format!("network {network_id}"))?;
    // The subnet belongs to the network's project unless an admin names
    // another one: an admin adding a subnet to a project's network must not
    // hide it from that project.
    let project = if req.project_id.is_some() || req.tenant_id.is_some() {
        target_project(&ctx, req.project_id.as_deref(), req.tenant_id.as_deref())?
    } else {
        network.project_id.clone()
    };
    match req.ip_version.unwrap_or(4) {
        4 => {}
        6 => {
            return Err(ApiError::bad_request(
                "Invalid input for ip_version: IPv6 subnets are not supported.",
            ));
        }
        v => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for ip_version. Reason: {v} is not 4 or 6."
            )));
        }
    }
    let raw_cidr = req.cidr.as_deref().ok_or_else(|| {
        ApiError::bad_request("Invalid input: cidr is required to create a subnet.")
    })?;
    let cidr = subnet_checks::parse_cidr(raw_cidr)?;
    let gateway = subnet_checks::gateway(&cidr, req.gateway_ip.as_ref().map(|g| g.as_deref()))?;
    let allocation_pools = subnet_checks::pools(&cidr, gateway, req.allocation_pools.as_deref())?;
    let dns_nameservers =
        subnet_checks::dns_nameservers(req.dns_nameservers.as_deref().unwrap_or_default())?;
    let host_routes = subnet_checks::host_routes(req.host_routes.as_deref().unwrap_or_default())?;
    let (name, description) = name_and_description(req.name, req.description)?;
    ensure_room(&state, &project, "subnet").await?;
    let subnet = state
        .store()
        .subnet_create(&NewSubnet {
            network_id,
            project_id: project,
            name,
            description,
            cidr,
            gateway_ip: gateway,
            enable_dhcp: req.enable_dhcp.unwrap_or(true),
            dns_nameservers,
            allocation_pools,
            host_routes,
        })
        .await?;
    notify.changed(Changed::network(subnet.network_id)).await;
    Ok(created("subnet", views::subnet(&subnet)))
}

/// Lists the subnets the caller may see (its own and those of shared
/// networks), filtered by any attribute.
#[utoipa::path(get, path = "/v2.0/subnets", tag = "network",
    params(("name" = Option<String>, Query, description = "Exact name"),
        ("network_id" = Option<String>, Query, description = "Network"),
        ("cidr" = Option<String>, Query, description = "Exact CIDR")),
    responses((status = 200, description = "Subnets")))]
pub async fn subnet_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let filters = Filters::from_query(&q);
    let subnets = state
        .store()
        .subnet_list(
            &ctx.read_scope()?,
            &filters.store_map(&["name", "network_id", "cidr"]),
        )
        .await?;
    let views = filters.apply(subnets.iter().map(views::subnet).collect());
    Ok(Json(json!({ "subnets": views })))
}

/// Loads a subnet the caller may see.
async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Subnet> {
    let id = path_id(raw, ResourceKind::Subnet, SubnetId::parse)?;
    Ok(state.store().subnet_get(id, &ctx.read_scope()?).await?)
}

/// Shows a subnet.
#[utoipa::path(get, path = "/v2.0/subnets/{subnet_id}", tag = "network",
    params(("subnet_id" = String, Path, description = "Subnet id")),
    responses((status = 200, description = "The subnet"),
        (status = 404, description = "No such subnet visible to the caller")))]
pub async fn subnet_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(subnet_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let subnet = load(&state, &ctx, &subnet_id).await?;
    Ok(ok("subnet", views::subnet(&subnet)))
}

/// Changes a subnet's name, description, DNS servers, DHCP, gateway or
/// host routes.
#[utoipa::path(put, path = "/v2.0/subnets/{subnet_id}", tag = "network",
    params(("subnet_id" = String, Path, description = "Subnet id")),
    request_body(content = Object, description = "`{\"subnet\": {name, description, \
        dns_nameservers, enable_dhcp, gateway_ip, host_routes}}`"),
    responses((status = 200, description = "The updated subnet"),
        (status = 400, description = "Invalid attribute"),
        (status = 403, description = "Not the owner"),
        (status = 404, description = "No such subnet"),
        (status = 409, description = "The new gateway is a port's address")))]
pub async fn subnet_update(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(subnet_id): Path<String>,
    JsonBody(body): JsonBody<SubnetUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let subnet = load(&state, &ctx, &subnet_id).await?;
    ensure_owner(&ctx, &subnet.project_id, &format!("subnet {}", subnet.id))?;
    let req = body.subnet;
    if let Some(name) = &req.name {
        check_len("name", name, 255)?;
    }
    if let Some(description) = &req.description {
        check_len("description", description, 255)?;
    }
    let dns_nameservers = req
        .dns_nameservers
        .as_deref()
        .map(subnet_checks::dns_nameservers)
        .transpose()?;
    let host_routes = req
        .host_routes
        .as_deref()
        .map(subnet_checks::host_routes)
        .transpose()?;
    let gateway_ip = match &req.gateway_ip {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => {
            let gw = subnet_checks::parse_ipv4("gateway_ip", raw)?;
            subnet_checks::check_gateway(&subnet.cidr, gw)?;
            subnet_checks::check_gateway_outside_pools(gw, &subnet.allocation_pools)?;
            Some(Some(gw))
        }
    };
    let subnet = state
        .store()
        .subnet_update(
            subnet.id,
            &SubnetUpdate {
                name: req.name,
                description: req.description,
                enable_dhcp: req.enable_dhcp,
                dns_nameservers,
                gateway_ip,
                host_routes,
            },
        )
        .await?;
    notify.changed(Changed::network(subnet.network_id)).await;
    Ok(ok("subnet", views::subnet(&subnet)))
}

/// Deletes a subnet; refused (409) while ports hold its addresses.
#[utoipa::path(delete, path = "/v2.0/subnets/{subnet_id}", tag = "network",
    params(("subnet_id" = String, Path, description = "Subnet id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not the owner"),
        (status = 404, description = "No such subnet"),
        (status = 409, description = "Addresses of the subnet are still allocated")))]
pub async fn subnet_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(subnet_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::NetworkWrite)?;
    let subnet = load(&state, &ctx, &subnet_id).await?;
    ensure_owner(&ctx, &subnet.project_id, &format!("subnet {}", subnet.id))?;
    state.store().subnet_delete(subnet.id).await?;
    notify.changed(Changed::network(subnet.network_id)).await;
    Ok(StatusCode::NO_CONTENT)
}
