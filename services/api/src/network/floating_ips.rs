//! `/v2.0/floatingips[/{id}]`: addresses of external networks that reach
//! a port's fixed IP through a router.
//!
//! Any project may take floating IPs from any external network (an
//! explicit address is for the network's owner, admins); associating one
//! needs a router with a gateway on that network and an interface on the
//! fixed IP's subnet (Neutron's 404 otherwise), and a fixed IP has at
//! most one (409). Every association change is announced to the
//! conductors naming the floating network and the router's host, which
//! re-pulls its state and (un)installs the NAT. Deleting a server or a
//! port disassociates its floating IPs; they stay the project's.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::floating_ip_checks;
use crate::network::notify::{Changed, Notifier};
use crate::network::quotas::network_limit;
use crate::network::router_checks::{external_network, l3_error};
use crate::network::{check_len, created, nullable, ok, target_project, views};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::{FloatingIp, FloatingIpId};
use cloud_model::{Error, PortId, ResourceKind};
use cloud_store::{FloatingIpUpdate, NewFloatingIp, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /v2.0/floatingips` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIpCreateBody {
    floatingip: FloatingIpCreate,
}

/// The attributes of a new floating IP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FloatingIpCreate {
    floating_network_id: Option<String>,
    floating_ip_address: Option<String>,
    subnet_id: Option<String>,
    port_id: Option<String>,
    fixed_ip_address: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// `PUT /v2.0/floatingips/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIpUpdateBody {
    floatingip: FloatingIpChanges,
}

/// The changeable attributes: the association and the description.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FloatingIpChanges {
    #[serde(default, deserialize_with = "nullable")]
    port_id: Option<Option<String>>,
    fixed_ip_address: Option<String>,
    description: Option<String>,
}

/// Loads a floating IP the caller may see.
async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<FloatingIp> {
    let not_found = |e| l3_error(e, "Floating IP");
    let id = FloatingIpId::parse(raw)
        .ok_or_else(|| not_found(Error::not_found(ResourceKind::Resource, raw)))?;
    state
        .store()
        .floating_ip_get(id, &ctx.read_scope()?)
        .await
        .map_err(not_found)
}

/// What an association change concerns: the floating network and the
/// hosts of the routers before and after.
async fn fip_change(state: &AppState, before: Option<&FloatingIp>, after: &FloatingIp) -> Changed {
    let mut changed = Changed::network(after.floating_network_id);
    for router in [before.and_then(|b| b.router_id), after.router_id]
        .into_iter()
        .flatten()
    {
        if let Ok(r) = state.store().router_get(router, &Scope::All).await {
            changed = changed.with_host(r.host.as_deref());
        }
    }
    changed
}

/// Creates a floating IP on an external network, with the address asked
/// for or the lowest free one, associated at once if `port_id` is given.
#[utoipa::path(post, path = "/v2.0/floatingips", tag = "network",
    request_body(content = Object, description = "`{\"floatingip\": {floating_network_id, \
        floating_ip_address, subnet_id, port_id, fixed_ip_address, description, project_id}}`"),
    responses((status = 201, description = "The new floating IP"),
        (status = 400, description = "Invalid attribute, or the network is not external"),
        (status = 403, description = "Explicit address (the network's owner only)"),
        (status = 404, description = "No such network or port, or the port's subnet has no \
            router to the network"),
        (status = 409, description = "Address taken, none left, the fixed IP has a floating \
            IP, or over quota")))]
pub async fn floating_ip_create(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    JsonBody(body): JsonBody<FloatingIpCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::NetworkWrite)?;
    let req = body.floatingip;
    let project = target_project(&ctx, req.project_id.as_deref(), req.tenant_id.as_deref())?;
    let raw_net = req
        .floating_network_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("Invalid input: floating_network_id is required."))?;
    let network =
        external_network(&state, &ctx, raw_net, "floating_network_id", "floatingip").await?;
    let description = req.description.unwrap_or_default();
    check_len("description", &description, 255)?;
    let address = floating_ip_checks::address(
        &ctx,
        &network,
        req.subnet_id.as_deref(),
        req.floating_ip_address.as_deref(),
    )?;
    let association = match req.port_id.as_deref() {
        Some(port) => Some(
            floating_ip_checks::association(
                &state,
                &ctx,
                &project,
                &network,
                port,
                req.fixed_ip_address.as_deref(),
            )
            .await?,
        ),
        None => None,
    };
    let limit = network_limit(&state, &project, "floatingip").await?;
    let new = NewFloatingIp {
        project_id: project,
        floating_network_id: network.id,
        address,
        description,
        association,
    };
    let fip = state.store().floating_ip_create(&new, limit).await?;
    if fip.port_id.is_some() {
        notify.changed(fip_change(&state, None, &fip).await).await;
    }
    Ok(created("floatingip", views::floating_ip(&fip)))
}

/// Lists the caller's floating IPs (admins: all), filtered by any
/// attribute.
#[utoipa::path(get, path = "/v2.0/floatingips", tag = "network",
    params(("floating_ip_address" = Option<String>, Query, description = "The address"),
        ("port_id" = Option<String>, Query, description = "Associated port"),
        ("router_id" = Option<String>, Query, description = "Router giving the path"),
        ("status" = Option<String>, Query, description = "ACTIVE or DOWN"),
        ("floating_network_id" = Option<String>, Query, description = "External network")),
    responses((status = 200, description = "Floating IPs")))]
pub async fn floating_ip_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let filters = Filters::from_query(&q);
    let port = filters.single("port_id").and_then(PortId::parse);
    let fips = state
        .store()
        .floating_ip_list(&ctx.read_scope()?, port)
        .await?;
    let views = filters.apply(fips.iter().map(views::floating_ip).collect());
    Ok(Json(json!({ "floatingips": views })))
}

/// Shows a floating IP.
#[utoipa::path(get, path = "/v2.0/floatingips/{floatingip_id}", tag = "network",
    params(("floatingip_id" = String, Path, description = "Floating IP id")),
    responses((status = 200, description = "The floating IP"),
        (status = 404, description = "No such floating IP visible to the caller")))]
pub async fn floating_ip_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(fip_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let fip = load(&state, &ctx, &fip_id).await?;
    Ok(ok("floatingip", views::floating_ip(&fip)))
}

/// Associates (`port_id`, with `fixed_ip_address` when the port has
/// several), moves, or (`port_id: null`) disassociates a floating IP, or
/// changes its description.
#[utoipa::path(put, path = "/v2.0/floatingips/{floatingip_id}", tag = "network",
    params(("floatingip_id" = String, Path, description = "Floating IP id")),
    request_body(content = Object, description = "`{\"floatingip\": {port_id, \
        fixed_ip_address, description}}`"),
    responses((status = 200, description = "The updated floating IP"),
        (status = 400, description = "Invalid attribute, a fixed IP the port lacks, or a \
            router or network port"),
        (status = 404, description = "No such floating IP or port, or the port's subnet has \
            no router to the floating network"),
        (status = 409, description = "The fixed IP already has a floating IP")))]
pub async fn floating_ip_update(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(fip_id): Path<String>,
    JsonBody(body): JsonBody<FloatingIpUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let before = load(&state, &ctx, &fip_id).await?;
    let req = body.floatingip;
    if let Some(d) = &req.description {
        check_len("description", d, 255)?;
    }
    let association = match &req.port_id {
        None if req.fixed_ip_address.is_some() => {
            return Err(ApiError::bad_request(
                "Invalid input: fixed_ip_address cannot be given without port_id.",
            ));
        }
        None => None,
        Some(None) => Some(None),
        Some(Some(port)) => {
            let network = state
                .store()
                .network_get(before.floating_network_id, &Scope::All)
                .await?;
            Some(Some(
                floating_ip_checks::association(
                    &state,
                    &ctx,
                    &before.project_id,
                    &network,
                    port,
                    req.fixed_ip_address.as_deref(),
                )
                .await?,
            ))
        }
    };
    let moved = association.is_some();
    let up = FloatingIpUpdate {
        association,
        description: req.description,
    };
    let fip = state
        .store()
        .floating_ip_update(before.id, &up)
        .await
        .map_err(|e| l3_error(e, "Floating IP"))?;
    if moved {
        notify
            .changed(fip_change(&state, Some(&before), &fip).await)
            .await;
    }
    Ok(ok("floatingip", views::floating_ip(&fip)))
}

/// Deletes a floating IP (its address is free again).
#[utoipa::path(delete, path = "/v2.0/floatingips/{floatingip_id}", tag = "network",
    params(("floatingip_id" = String, Path, description = "Floating IP id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such floating IP")))]
pub async fn floating_ip_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(fip_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::NetworkWrite)?;
    let fip = load(&state, &ctx, &fip_id).await?;
    let changed = fip_change(&state, None, &fip).await;
    state
        .store()
        .floating_ip_delete(fip.id)
        .await
        .map_err(|e| l3_error(e, "Floating IP"))?;
    if fip.port_id.is_some() {
        notify.changed(changed).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
