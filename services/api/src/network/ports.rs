//! `/v2.0/ports[/{id}]`: virtual NICs with a MAC, fixed IPs, security
//! groups, port security and allowed address pairs.
//!
//! Addresses come from the store's IPAM, which hands each address out at
//! most once however many requests race: an explicit address already held
//! is a 409 (`IpAddressAlreadyAllocated`), an exhausted subnet a 409 that
//! says so (`IpAddressGenerationFailure`). A port without explicit
//! security groups gets its project's default group, created on first use
//! — unless its port security is off (by default the network's setting):
//! then it has no groups, and no address pairs. Every change a host
//! enforces is announced to the conductors once committed.
//!
//! As in Neutron, the ports of routers and floating IPs belong to their
//! APIs (deleting one here, or giving it another device, is a 409); a
//! port names as its device only a server its project sees, and only
//! the network's owner plugs ports into an external network or gives a
//! port a `network:*` owner (403).

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::network::filters::Filters;
use crate::network::notify::{Changed, Notifier};
use crate::network::port_checks::{
    self, AddressPairRequest, FixedIpRequest, PortSecurity, ensure_network_owner,
};
use crate::network::quotas::ensure_room;
use crate::network::{
    body_id, check_len, created, name_and_description, ok, path_id, target_project, views,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::network::Port;
use cloud_model::{Error, NetworkId, PortId, ProjectId, ResourceKind, SecurityGroupId};
use cloud_store::{NewPort, PortFilter, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

/// Draws of a MAC for a port whose address pairs need it before it exists.
const MAC_ATTEMPTS: usize = 8;

/// `POST /v2.0/ports` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCreateBody {
    port: PortCreate,
}

/// The attributes of a new port. Extra DHCP options are accepted only
/// empty (what clients send when they mean "none").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortCreate {
    network_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    fixed_ips: Option<Vec<FixedIpRequest>>,
    mac_address: Option<String>,
    device_id: Option<String>,
    device_owner: Option<String>,
    security_groups: Option<Vec<String>>,
    port_security_enabled: Option<bool>,
    allowed_address_pairs: Option<Vec<AddressPairRequest>>,
    extra_dhcp_opts: Option<Vec<Value>>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// `PUT /v2.0/ports/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortUpdateBody {
    port: PortChanges,
}

/// The changeable attributes of a port.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortChanges {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    security_groups: Option<Vec<String>>,
    device_id: Option<String>,
    device_owner: Option<String>,
    port_security_enabled: Option<bool>,
    allowed_address_pairs: Option<Vec<AddressPairRequest>>,
}

/// Refuses attributes of features we do not have.
fn unsupported(req: &PortCreate) -> ApiResult<()> {
    if req.extra_dhcp_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for extra_dhcp_opts: this cloud does not support it.",
        ));
    }
    Ok(())
}

/// The security groups of a port of `project`: the named ones (each must
/// be the project's), or the project's default group.
async fn security_groups(
    state: &AppState,
    project: &ProjectId,
    requested: Option<&[String]>,
) -> ApiResult<Vec<SecurityGroupId>> {
    let store = state.store();
    let Some(requested) = requested else {
        return Ok(vec![store.security_group_ensure_default(project).await?.id]);
    };
    let scope = Scope::Project(project.clone());
    let mut ids = Vec::with_capacity(requested.len());
    for (i, raw) in requested.iter().enumerate() {
        let id = body_id(
            &format!("security_groups[{i}]"),
            raw,
            SecurityGroupId::parse,
        )?;
        store.security_group_get(id, &scope).await?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Creates the port. Address pairs without a MAC take the port's, so when
/// some lack one and the request names no MAC, the MAC is drawn here (and
/// drawn again if another port has it).
async fn create(
    state: &AppState,
    mut new: NewPort,
    pairs: &[AddressPairRequest],
) -> ApiResult<Port> {
    let draw = new.mac_address.is_none() && port_checks::pairs_need_port_mac(pairs);
    for _ in 0..MAC_ATTEMPTS {
        if draw {
            new.mac_address = Some(port_checks::random_mac());
        }
        let mac = new.mac_address.clone().unwrap_or_default();
        new.allowed_address_pairs = port_checks::address_pairs(pairs, &mac)?;
        match state.store().port_create(&new).await {
            Err(Error::Conflict { message }) if draw && message.contains(&mac) => continue,
            r => return Ok(r?),
        }
    }
    Err(Error::internal("could not draw a unique MAC address for the port").into())
}

/// Creates a port and allocates its addresses.
#[utoipa::path(post, path = "/v2.0/ports", tag = "network",
    request_body(content = Object, description = "`{\"port\": {network_id, name, description, \
        admin_state_up, fixed_ips: [{subnet_id, ip_address}], mac_address, device_id, \
        device_owner, security_groups, port_security_enabled, \
        allowed_address_pairs: [{ip_address, mac_address}], project_id}}`"),
    responses((status = 201, description = "The new port"),
        (status = 400, description = "Invalid attribute, or security groups with port \
            security off"),
        (status = 403, description = "Explicit address, MAC, port security or address pairs \
            on another project's network"),
        (status = 404, description = "No such network, subnet or security group"),
        (status = 409, description = "Address or MAC in use, no address left, or address \
            pairs with port security off")))]
pub async fn port_create(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    JsonBody(body): JsonBody<PortCreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.authorize(Action::NetworkWrite)?;
    let req = body.port;
    unsupported(&req)?;
    let project = target_project(&ctx, req.project_id.as_deref(), req.tenant_id.as_deref())?;
    let raw_net = req.network_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("Invalid input: network_id is required to create a port.")
    })?;
    let network_id = body_id("network_id", raw_net, NetworkId::parse)?;
    let network = state
        .store()
        .network_get(network_id, &ctx.read_scope()?)
        .await?;
    port_checks::ensure_may_plug(&ctx, &network)?;
    let (name, description) = name_and_description(req.name, req.description)?;
    let device_owner = req.device_owner.unwrap_or_default();
    check_len("device_owner", &device_owner, 255)?;
    port_checks::ensure_may_own(&ctx, &network, &device_owner)?;
    let device_id = port_checks::device_id(req.device_id.as_deref())?;
    port_checks::ensure_device_visible(&state, &ctx, device_id).await?;
    let mac_address = req
        .mac_address
        .as_deref()
        .map(port_checks::mac_address)
        .transpose()?;
    let fixed_ips = match &req.fixed_ips {
        None => Vec::new(),
        Some(list) => port_checks::fixed_ips(&state, &network, list).await?,
    };
    let pairs = req.allowed_address_pairs.unwrap_or_default();
    let explicit_ip = req
        .fixed_ips
        .iter()
        .flatten()
        .any(|f| f.ip_address.is_some());
    let restricted = explicit_ip
        || mac_address.is_some()
        || req.port_security_enabled.is_some()
        || !pairs.is_empty();
    ensure_network_owner(&ctx, &network, restricted)?;
    let port_security_enabled = req
        .port_security_enabled
        .unwrap_or(network.port_security_enabled);
    port_checks::check_port_security(&PortSecurity {
        enabled: port_security_enabled,
        requested_groups: req.security_groups.as_deref(),
        kept_groups: &[],
        has_address_pairs: !pairs.is_empty(),
    })?;
    let security_groups = match port_security_enabled {
        true => security_groups(&state, &project, req.security_groups.as_deref()).await?,
        false => Vec::new(),
    };
    ensure_room(&state, &project, "port").await?;
    let new = NewPort {
        network_id,
        project_id: project,
        name,
        description,
        fixed_ips,
        mac_address,
        device_id,
        device_owner,
        admin_state_up: req.admin_state_up.unwrap_or(true),
        security_groups,
        port_security_enabled,
        allowed_address_pairs: Vec::new(),
    };
    let port = create(&state, new, &pairs).await?;
    // The port's addresses join its groups, which other groups' rules may
    // name as their remote.
    notify
        .changed(Changed::groups(port.security_group_ids.iter().copied()))
        .await;
    Ok(created("port", views::port(&port)))
}

/// Lists the caller's ports (admins: all), filtered by any attribute,
/// including `fixed_ips=ip_address=X` and `fixed_ips=subnet_id=Y`.
#[utoipa::path(get, path = "/v2.0/ports", tag = "network",
    params(("network_id" = Option<String>, Query, description = "Network"),
        ("device_id" = Option<String>, Query, description = "Server using the port"),
        ("device_owner" = Option<String>, Query, description = "Owner string"),
        ("name" = Option<String>, Query, description = "Exact name"),
        ("mac_address" = Option<String>, Query, description = "MAC"),
        ("fixed_ips" = Option<String>, Query, description = "`ip_address=X` or `subnet_id=Y`")),
    responses((status = 200, description = "Ports")))]
pub async fn port_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let filters = Filters::from_query(&q);
    let non_empty = |k: &str| {
        filters
            .single(k)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let network_id = match filters.single("network_id") {
        Some(raw) => match NetworkId::parse(raw) {
            Some(id) => Some(id),
            // No network has that id: nothing matches.
            None => return Ok(Json(json!({ "ports": [] }))),
        },
        None => None,
    };
    let ports = state
        .store()
        .port_list(&PortFilter {
            scope: ctx.read_scope()?,
            network_id,
            device_id: non_empty("device_id"),
            device_owner: non_empty("device_owner"),
            name: filters.single("name").map(str::to_owned),
            mac_address: non_empty("mac_address"),
            binding_host: None,
        })
        .await?;
    let views = filters.apply(ports.iter().map(views::port).collect());
    Ok(Json(json!({ "ports": views })))
}

/// Loads a port the caller may see.
async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Port> {
    let id = path_id(raw, ResourceKind::Port, PortId::parse)?;
    Ok(state.store().port_get(id, &ctx.read_scope()?).await?)
}

/// Shows a port.
#[utoipa::path(get, path = "/v2.0/ports/{port_id}", tag = "network",
    params(("port_id" = String, Path, description = "Port id")),
    responses((status = 200, description = "The port"),
        (status = 404, description = "No such port visible to the caller")))]
pub async fn port_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(port_id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkRead)?;
    let port = load(&state, &ctx, &port_id).await?;
    Ok(ok("port", views::port(&port)))
}

/// Changes a port's name, description, state, security groups, device,
/// port security or allowed address pairs.
#[utoipa::path(put, path = "/v2.0/ports/{port_id}", tag = "network",
    params(("port_id" = String, Path, description = "Port id")),
    request_body(content = Object, description = "`{\"port\": {name, description, \
        admin_state_up, security_groups, device_id, device_owner, port_security_enabled, \
        allowed_address_pairs}}`"),
    responses((status = 200, description = "The updated port"),
        (status = 400, description = "Invalid attribute, or security groups with port \
            security off"),
        (status = 403, description = "Port security or address pairs on another project's \
            network"),
        (status = 404, description = "No such port or security group"),
        (status = 409, description = "Port security off while the port keeps security \
            groups or address pairs")))]
pub async fn port_update(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(port_id): Path<String>,
    JsonBody(body): JsonBody<PortUpdateBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::NetworkWrite)?;
    let mut port = load(&state, &ctx, &port_id).await?;
    let before = port.clone();
    let req = body.port;
    if let Some(name) = req.name {
        check_len("name", &name, 255)?;
        port.name = name;
    }
    if let Some(description) = req.description {
        check_len("description", &description, 255)?;
        port.description = description;
    }
    if let Some(up) = req.admin_state_up {
        port.admin_state_up = up;
    }
    set_device(
        &state,
        &ctx,
        &mut port,
        req.device_owner,
        req.device_id.as_deref(),
    )
    .await?;
    if req.port_security_enabled.is_some() || req.allowed_address_pairs.is_some() {
        let network = state
            .store()
            .network_get(port.network_id, &Scope::All)
            .await?;
        ensure_network_owner(&ctx, &network, true)?;
    }
    if let Some(enabled) = req.port_security_enabled {
        port.port_security_enabled = enabled;
    }
    if let Some(pairs) = &req.allowed_address_pairs {
        port.allowed_address_pairs = port_checks::address_pairs(pairs, &port.mac_address)?;
    }
    port_checks::check_port_security(&PortSecurity {
        enabled: port.port_security_enabled,
        requested_groups: req.security_groups.as_deref(),
        kept_groups: &port.security_group_ids,
        has_address_pairs: !port.allowed_address_pairs.is_empty(),
    })?;
    if let Some(groups) = &req.security_groups {
        port.security_group_ids = security_groups(&state, &port.project_id, Some(groups)).await?;
    }
    let port = state.store().port_update(&port).await?;
    notify
        .changed(
            port_change(&before)
                .with_groups(port.security_group_ids.iter().copied())
                .with_host(port.binding_host.as_deref()),
        )
        .await;
    Ok(ok("port", views::port(&port)))
}

/// Applies a change of the port's device owner and device id: not on a
/// router's or floating IP's port (409); a `network:*` owner only from
/// the network's owner, and a device only a server the caller sees (403).
async fn set_device(
    state: &AppState,
    ctx: &Ctx,
    port: &mut Port,
    owner: Option<String>,
    device: Option<&str>,
) -> ApiResult<()> {
    let device = device
        .map(|d| port_checks::device_id(Some(d)))
        .transpose()?;
    let owner = owner.filter(|o| *o != port.device_owner);
    let device = device.filter(|d| *d != port.device_id);
    port_checks::ensure_device_kept(port, owner.is_some(), device.is_some())?;
    if let Some(owner) = owner {
        check_len("device_owner", &owner, 255)?;
        if owner.starts_with("network:") {
            let network = state
                .store()
                .network_get(port.network_id, &Scope::All)
                .await?;
            port_checks::ensure_may_own(ctx, &network, &owner)?;
        }
        port.device_owner = owner;
    }
    if let Some(device) = device {
        port_checks::ensure_device_visible(state, ctx, device).await?;
        port.device_id = device;
    }
    Ok(())
}

/// What a change to `port` concerns: its network, its groups (their
/// members changed) and the host it is bound to.
fn port_change(port: &Port) -> Changed {
    Changed::network(port.network_id)
        .with_groups(port.security_group_ids.iter().copied())
        .with_host(port.binding_host.as_deref())
}

/// Deletes a port and frees its addresses.
#[utoipa::path(delete, path = "/v2.0/ports/{port_id}", tag = "network",
    params(("port_id" = String, Path, description = "Port id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such port")))]
pub async fn port_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Path(port_id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::NetworkWrite)?;
    let port = load(&state, &ctx, &port_id).await?;
    port_checks::ensure_deletable(&port)?;
    state.store().port_delete(port.id).await?;
    notify.changed(port_change(&port)).await;
    Ok(StatusCode::NO_CONTENT)
}
