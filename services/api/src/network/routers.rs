//! `/v2.0/routers[/{id}[/add_router_interface|/remove_router_interface]]`:
//! Neutron's routers with their external gateway (`ext-gw-mode`: SNAT on
//! or off), extra routes (`extraroute`) and interfaces.
//!
//! A router's interfaces and gateway are ports bound to the network node
//! the router runs on (see `cloud_store`'s routers module for how it is
//! chosen); every change that node carries is announced to the conductors
//! naming the networks concerned and the router's host, so the host
//! re-pulls its state and (un)plumbs the router. Members manage their own
//! routers; admins any. External networks are usable by every project.

use crate::auth::{Action, Ctx};
use crate::error::ApiResult;
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::notify::{Changed, Notifier};
use crate::network::quotas::network_limit;
use crate::network::router_checks::{self, GatewayInfo, InterfaceBody, RouteRequest, l3_error};
use crate::network::{
    check_len, created, name_and_description, nullable, ok, target_project, views,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::{Router, RouterId, RouterInterface};
use cloud_model::{Error, ResourceKind, Timestamp};
use cloud_store::{NewRouter, RouterUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /v2.0/routers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterCreateBody {
    router: RouterCreate,
}

/// The attributes of a new router.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterCreate {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    external_gateway_info: Option<GatewayInfo>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// `PUT /v2.0/routers/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterUpdateBody {
    router: RouterChanges,
}

/// The changeable attributes of a router.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterChanges {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    external_gateway_info: Option<Option<GatewayInfo>>,
    #[serde(default, deserialize_with = "nullable")]
    routes: Option<Option<Vec<RouteRequest>>>,
}

/// When a network node must have reported to count as up.
pub fn seen_after(state: &AppState) -> Timestamp {
    Timestamp::now().plus_seconds(-state.config().service_down_secs)
}

/// Loads a router the caller may see.
async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Router> {
    let id = RouterId::parse(raw)
        .ok_or_else(|| l3_error(Error::not_found(ResourceKind::Resource, raw), "Router"))?;
    state
        .store()
        .router_get(id, &ctx.read_scope()?)
        .await
        .map_err(|e| l3_error(e, "Router"))
}

/// What a change of `router`'s gateway or state concerns: its gateway's
/// network and its host.
fn router_change(router: &Router) -> Changed {
    Changed::default()
        .with_networks(router.gateway.as_ref().map(|g| g.network_id))
        .with_host(router.host.as_deref())
}

/// Tells the conductors that `router` gained or lost `iface` (its network,
/// on the router's host); the reply with the interface.
async fn interface_changed(
    notify: &Notifier,
    router: &Router,
    iface: &RouterInterface,
) -> Json<Value> {
    notify
        .changed(Changed::network(iface.network_id).with_host(router.host.as_deref()))
        .await;
    Json(views::router_interface(router, iface))
}

/// Creates a router, with a gateway if `external_gateway_info` names an
/// external network.
#[utoipa::path(post, path = "/v2.0/routers", tag = "network",
    request_body(content = Object, description = "`{\"router\": {name, description, \
        admin_state_up, external_gateway_info: {network_id, enable_snat, \
        external_fixed_ips: [{subnet_id, ip_address}]}, project_id}}`"),
    responses((status = 201, description = "The new router"),
        (status = 400, description = "Invalid attribute, or the gateway network is not \
            external"),
        (status = 403, description = "Explicit gateway address (admins only)"),
        (status = 404, description = "No such network"),
        (status = 409, description = "Over quota, address taken, or no network node")))]
pub async fn router_create(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    JsonBody(body): JsonBody<RouterCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::NetworkWrite)?;
    let req = body.router;
    let project = target_project(&ctx, req.project_id.as_deref(), req.tenant_id.as_deref())?;
    let (name, description) = name_and_description(req.name, req.description)?;
    let gateway = router_checks::gateway(&state, &ctx, req.external_gateway_info.as_ref()).await?;
    let limit = network_limit(&state, &project, "router").await?;
    let new = NewRouter {
        project_id: project,
        name,
        description,
        admin_state_up: req.admin_state_up.unwrap_or(true),
        gateway,
    };
    let router = state
        .store()
        .router_create(&new, limit, seen_after(&state))
        .await?;
    if router.gateway.is_some() {
        notify.changed(router_change(&router)).await;
    }
    Ok(created("router", views::router(&router)))
}

/// Lists the caller's routers (admins: all), filtered by any attribute.
#[utoipa::path(get, path = "/v2.0/routers", tag = "network",
    params(("name" = Option<String>, Query, description = "Exact name"),
        ("project_id" = Option<String>, Query, description = "Owner")),
    responses((status = 200, description = "Routers")))]
pub async fn router_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let filters = Filters::from_query(&q);
    let routers = state.store().router_list(&ctx.read_scope()?).await?;
    let views = filters.apply(routers.iter().map(views::router).collect());
    Ok(Json(json!({ "routers": views })))
}

/// Shows a router.
#[utoipa::path(get, path = "/v2.0/routers/{router_id}", tag = "network",
    params(("router_id" = String, Path, description = "Router id")),
    responses((status = 200, description = "The router"),
        (status = 404, description = "No such router visible to the caller")))]
pub async fn router_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(router_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let router = load(&state, &ctx, &router_id).await?;
    Ok(ok("router", views::router(&router)))
}

/// Changes a router's name, description, state, gateway (`null` or `{}`
/// removes it) or extra routes (each next hop on one of its subnets).
#[utoipa::path(put, path = "/v2.0/routers/{router_id}", tag = "network",
    params(("router_id" = String, Path, description = "Router id")),
    request_body(content = Object, description = "`{\"router\": {name, description, \
        admin_state_up, external_gateway_info, routes: [{destination, nexthop}]}}`"),
    responses((status = 200, description = "The updated router"),
        (status = 400, description = "Invalid attribute, a non-external gateway network, or a \
            route whose next hop is not on the router's subnets"),
        (status = 404, description = "No such router or network"),
        (status = 409, description = "Floating IPs need the gateway, or no network node")))]
pub async fn router_update(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(router_id): Path<String>,
    JsonBody(body): JsonBody<RouterUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let before = load(&state, &ctx, &router_id).await?;
    let req = body.router;
    for (field, value) in [("name", &req.name), ("description", &req.description)] {
        if let Some(v) = value {
            check_len(field, v, 255)?;
        }
    }
    let routes = match &req.routes {
        Some(r) => Some(router_checks::routes(r.as_deref().unwrap_or_default())?),
        None => None,
    };
    let gateway = match &req.external_gateway_info {
        Some(info) => Some(router_checks::gateway(&state, &ctx, info.as_ref()).await?),
        None => None,
    };
    let up = RouterUpdate {
        gateway,
        name: req.name,
        description: req.description,
        admin_state_up: req.admin_state_up,
        routes,
    };
    let router = state
        .store()
        .router_update(before.id, &up, seen_after(&state))
        .await
        .map_err(|e| l3_error(e, "Router"))?;
    // The host (re)plumbs a new gateway, state or routes; the gateway
    // networks' other hosts learn of its port.
    let mut changed = Changed::default();
    if up.gateway.is_some() {
        changed = router_change(&before).with_networks(router_change(&router).networks);
    }
    if up.gateway.is_some()
        || up.routes.is_some()
        || up
            .admin_state_up
            .is_some_and(|a| a != before.admin_state_up)
    {
        changed = changed.with_host(router.host.as_deref());
    }
    notify.changed(changed).await;
    Ok(ok("router", views::router(&router)))
}

/// Deletes a router and its gateway; refused (409) while it has
/// interfaces.
#[utoipa::path(delete, path = "/v2.0/routers/{router_id}", tag = "network",
    params(("router_id" = String, Path, description = "Router id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such router"),
        (status = 409, description = "The router still has ports")))]
pub async fn router_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(router_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::NetworkWrite)?;
    let router = load(&state, &ctx, &router_id).await?;
    let router = state
        .store()
        .router_delete(router.id)
        .await
        .map_err(|e| l3_error(e, "Router"))?;
    notify.changed(router_change(&router)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds an interface on a subnet (the router takes its gateway address)
/// or with an unbound port of one fixed IP.
#[utoipa::path(put, path = "/v2.0/routers/{router_id}/add_router_interface", tag = "network",
    params(("router_id" = String, Path, description = "Router id")),
    request_body(content = Object, description = "`{subnet_id}` or `{port_id}`"),
    responses((status = 200, description = "`{id, subnet_id, subnet_ids, port_id, network_id, \
            project_id}`"),
        (status = 400, description = "Neither or both given, a subnet without gateway, a \
            subnet the router has or one overlapping its subnets"),
        (status = 404, description = "No such router, subnet or port"),
        (status = 409, description = "The gateway address or the port is in use, or no \
            network node")))]
pub async fn router_add_interface(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(router_id): Path<String>,
    JsonBody(body): JsonBody<InterfaceBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let router = load(&state, &ctx, &router_id).await?;
    let (req, _) = router_checks::interface_request(&body, true)?;
    router_checks::interface_target(&state, &ctx, &router, req).await?;
    let iface = state
        .store()
        .router_add_interface(router.id, req, seen_after(&state))
        .await
        .map_err(|e| l3_error(e, "Router"))?;
    let router = state
        .store()
        .router_get(router.id, &cloud_store::Scope::All)
        .await
        .map_err(|e| l3_error(e, "Router"))?;
    Ok(interface_changed(&notify, &router, &iface).await)
}

/// Removes the interface on a subnet or with a port, and deletes its
/// port.
#[utoipa::path(put, path = "/v2.0/routers/{router_id}/remove_router_interface", tag = "network",
    params(("router_id" = String, Path, description = "Router id")),
    request_body(content = Object, description = "`{subnet_id}` and/or `{port_id}`"),
    responses((status = 200, description = "The removed interface"),
        (status = 404, description = "No such router, or no such interface"),
        (status = 409, description = "Floating IPs or routes need the interface")))]
pub async fn router_remove_interface(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(router_id): Path<String>,
    JsonBody(body): JsonBody<InterfaceBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let router = load(&state, &ctx, &router_id).await?;
    let (req, on_subnet) = router_checks::interface_request(&body, false)?;
    router_checks::attached(&state, &router, req, on_subnet).await?;
    let iface = state
        .store()
        .router_remove_interface(router.id, req)
        .await
        .map_err(|e| l3_error(e, "Router interface"))?;
    Ok(interface_changed(&notify, &router, &iface).await)
}
