//! Input checks of the router API: the external gateway (an external
//! network, addresses on it), extra routes, interface requests, and the
//! 404s Neutron words for routers and their interfaces.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::network::subnet_checks::parse_ipv4;
use crate::network::{body_id, ensure_owner};
use crate::state::AppState;
use cloud_model::network::{HostRoute, Ipv4Cidr, Network, Router, RouterInterface};
use cloud_model::{Error, NetworkId, PortId, ResourceKind, SubnetId};
use cloud_store::{AddressRequest, GatewayRequest, InterfaceRequest, Scope};
use serde::Deserialize;

/// Neutron's default `max_routes`.
pub const MAX_ROUTES: usize = 30;

/// `external_gateway_info` as a request gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayInfo {
    network_id: Option<String>,
    enable_snat: Option<bool>,
    external_fixed_ips: Option<Vec<ExternalFixedIp>>,
}

/// One entry of `external_fixed_ips`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalFixedIp {
    subnet_id: Option<String>,
    ip_address: Option<String>,
}

/// One entry of `routes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    destination: Option<String>,
    nexthop: Option<String>,
}

/// The body of `add_router_interface` / `remove_router_interface`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceBody {
    subnet_id: Option<String>,
    port_id: Option<String>,
}

/// Words the store's 404 of an L3 resource (which has no
/// `ResourceKind`): `"Router X could not be found."`.
pub fn l3_error(e: Error, what: &str) -> ApiError {
    match e {
        Error::NotFound {
            kind: ResourceKind::Resource,
            id,
        } => ApiError::new(
            FaultKind::NotFound(None),
            format!("{what} {id} could not be found."),
        ),
        other => other.into(),
    }
}

/// A network a router's gateway or a floating IP may use: any external
/// network (they are usable by every project), and nothing else (400, or
/// 404 when the caller may not even see it).
pub async fn external_network(
    state: &AppState,
    ctx: &Ctx,
    raw: &str,
    field: &str,
    resource: &str,
) -> ApiResult<Network> {
    let id = body_id(field, raw, NetworkId::parse)?;
    let net = state.store().network_get(id, &Scope::All).await?;
    if net.external {
        return Ok(net);
    }
    // Not external: say so only to those who may see the network.
    state.store().network_get(id, &ctx.read_scope()?).await?;
    Err(ApiError::bad_request(format!(
        "Bad {resource} request: Network {id} is not a valid external network."
    )))
}

/// The gateway a request asks for: `None` for `null` or `{}` (no
/// gateway). Explicit addresses are for the external network's owner
/// (admins), as with ports; SNAT is on unless disabled.
pub async fn gateway(
    state: &AppState,
    ctx: &Ctx,
    info: Option<&GatewayInfo>,
) -> ApiResult<Option<GatewayRequest>> {
    let Some(info) = info else {
        return Ok(None);
    };
    let Some(raw) = info.network_id.as_deref() else {
        if info.enable_snat.is_some() || info.external_fixed_ips.is_some() {
            return Err(ApiError::bad_request(
                "Invalid input for external_gateway_info: network_id is required.",
            ));
        }
        return Ok(None);
    };
    let field = "external_gateway_info.network_id";
    let net = external_network(state, ctx, raw, field, "router").await?;
    let mut addresses = Vec::new();
    for (i, f) in info.external_fixed_ips.iter().flatten().enumerate() {
        let field = format!("external_gateway_info.external_fixed_ips[{i}]");
        let subnet_id = f
            .subnet_id
            .as_deref()
            .map(|s| body_id(&format!("{field}.subnet_id"), s, SubnetId::parse))
            .transpose()?;
        let ip_address = f
            .ip_address
            .as_deref()
            .map(|a| parse_ipv4(&format!("{field}.ip_address"), a))
            .transpose()?;
        if ip_address.is_some() {
            ensure_owner(
                ctx,
                &net.project_id,
                &format!("the addresses of ports on network {}", net.id),
            )?;
        }
        addresses.push(AddressRequest {
            subnet_id,
            ip_address,
        });
    }
    Ok(Some(GatewayRequest {
        network_id: net.id,
        enable_snat: info.enable_snat.unwrap_or(true),
        addresses,
    }))
}

/// Parses extra routes: IPv4 destinations and next hops, no duplicates,
/// at most [`MAX_ROUTES`]. Whether each next hop is on one of the
/// router's subnets the store checks.
pub fn routes(raw: &[RouteRequest]) -> ApiResult<Vec<HostRoute>> {
    if raw.len() > MAX_ROUTES {
        return Err(ApiError::bad_request(format!(
            "Unable to complete operation: the number of routes ({}) exceeds the maximum \
             {MAX_ROUTES}.",
            raw.len()
        )));
    }
    let mut out: Vec<HostRoute> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let field = format!("routes[{i}]");
        let (Some(dest), Some(hop)) = (r.destination.as_deref(), r.nexthop.as_deref()) else {
            return Err(ApiError::bad_request(format!(
                "Invalid input for {field}. Reason: a route needs a destination and a nexthop."
            )));
        };
        let destination = Ipv4Cidr::parse(dest).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid input for {field}.destination. Reason: {e} (an IPv4 CIDR is needed)."
            ))
        })?;
        let route = HostRoute {
            destination,
            nexthop: parse_ipv4(&format!("{field}.nexthop"), hop)?,
        };
        if out.contains(&route) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for routes. Reason: duplicate route {destination} via {}.",
                route.nexthop
            )));
        }
        out.push(route);
    }
    Ok(out)
}

/// The interface a body names. Adding takes exactly one of `subnet_id`
/// and `port_id`; removing accepts both (by port, which must be on the
/// subnet).
pub fn interface_request(
    body: &InterfaceBody,
    adding: bool,
) -> ApiResult<(InterfaceRequest, Option<SubnetId>)> {
    let subnet = body
        .subnet_id
        .as_deref()
        .map(|s| body_id("subnet_id", s, SubnetId::parse))
        .transpose()?;
    let port = body
        .port_id
        .as_deref()
        .map(|p| body_id("port_id", p, PortId::parse))
        .transpose()?;
    match (port, subnet) {
        (Some(_), Some(_)) if adding => Err(ApiError::bad_request(
            "Bad router request: Cannot specify both subnet-id and port-id.",
        )),
        (Some(p), s) => Ok((InterfaceRequest::Port(p), s)),
        (None, Some(s)) => Ok((InterfaceRequest::Subnet(s), None)),
        (None, None) => Err(ApiError::bad_request(
            "Bad router request: Either subnet_id or port_id must be specified.",
        )),
    }
}

/// What an added interface will be on: the subnet (the router's project
/// must own it, admins excepted: taking a network's gateway is its
/// owner's call) or the port (one the caller sees). Returns its network.
pub async fn interface_target(
    state: &AppState,
    ctx: &Ctx,
    router: &Router,
    req: InterfaceRequest,
) -> ApiResult<NetworkId> {
    let scope = ctx.read_scope()?;
    match req {
        InterfaceRequest::Subnet(id) => {
            let subnet = state.store().subnet_get(id, &scope).await?;
            if subnet.project_id != router.project_id {
                ensure_owner(ctx, &subnet.project_id, &format!("subnet {id}"))?;
            }
            Ok(subnet.network_id)
        }
        InterfaceRequest::Port(id) => Ok(state.store().port_get(id, &scope).await?.network_id),
    }
}

/// The router's interface a removal names, or Neutron's 404.
pub async fn attached(
    state: &AppState,
    router: &Router,
    req: InterfaceRequest,
    on_subnet: Option<SubnetId>,
) -> ApiResult<RouterInterface> {
    let interfaces = state.store().router_interfaces(router.id).await?;
    let found = interfaces.into_iter().find(|i| match req {
        InterfaceRequest::Subnet(s) => i.subnet_id == s,
        InterfaceRequest::Port(p) => i.port_id == p && on_subnet.is_none_or(|s| s == i.subnet_id),
    });
    found.ok_or_else(|| {
        let message = match req {
            InterfaceRequest::Subnet(s) => {
                format!("Router {} has no interface on subnet {s}", router.id)
            }
            InterfaceRequest::Port(p) => {
                format!(
                    "Router {} does not have an interface with id {p}",
                    router.id
                )
            }
        };
        ApiError::new(FaultKind::NotFound(None), message)
    })
}
