//! `GET /servers/{id}/os-interface` and `/os-interface/{port_id}`: the
//! server's network interfaces in Nova's `interfaceAttachments` shape.
//! novaclient's `interface-list` and the `openstack` CLI's server views of
//! ports read them; they are the server's ports, seen from the server.
//!
//! `POST` attaches a port (the user's, by `port_id`) or a new port on a
//! network (`net_id`, optionally with `fixed_ips`) to an ACTIVE, PAUSED or
//! STOPPED server, and `DELETE` detaches one: a call to the server's host,
//! which hotplugs the NIC into the running guest (a stopped one gets it at
//! its next start), so the answer comes once the guest has it, as in Nova.
//! The port is bound first (so the host's data plane carries it before the
//! guest sees it) and unbound again, or deleted when it was created here,
//! if the host fails: no partial attachment is left. Detach deletes the
//! ports created for the server and unbinds the user's
//! (see `port_attachments` in the store).

use crate::auth::{Action, Ctx};
use crate::compute::server_lock::refuse_if_locked;
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::JsonBody;
use crate::network::notify::{Changed, Notifier};
use crate::network::port_checks::{self, FixedIpRequest, ensure_network_owner};
use crate::network::quotas::ensure_room;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use cloud_bus::compute_queue;
use cloud_driver::NicSpec;
use cloud_driver::metadata::nic_from_records;
use cloud_model::instance::{Instance, RequestedNetwork, VmState};
use cloud_model::network::Port;
use cloud_model::{Error, InstanceId, NetworkId, PortId, ResourceKind};
use cloud_rpc::{ComputeMsg, Reply};
use cloud_store::{NewPort, PortFilter, PortOrigin, Scope, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The instance actions' names (Nova's).
const ATTACH: &str = "attach_interface";
const DETACH: &str = "detach_interface";
/// How long the host may take: its data plane may have to set the
/// network up first, and a hotplug waits for the guest.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The ports attached to server `id` (the caller may see the server, so
/// its ports are shown whoever owns them, as in Nova).
async fn server_ports(store: &Store, id: InstanceId) -> ApiResult<Vec<Port>> {
    Ok(store
        .port_list(&PortFilter {
            device_id: Some(id.to_string()),
            ..PortFilter::all(Scope::All)
        })
        .await?)
}

/// One interface as Nova renders it (before microversion 2.70's `tag`).
fn interface_view(p: &Port) -> Value {
    let fixed_ips: Vec<Value> = p
        .fixed_ips
        .iter()
        .map(|f| json!({"subnet_id": f.subnet_id.to_string(), "ip_address": f.ip_address.to_string()}))
        .collect();
    json!({
        "port_state": p.status,
        "fixed_ips": fixed_ips,
        "port_id": p.id.to_string(),
        "net_id": p.network_id.to_string(),
        "mac_addr": p.mac_address,
    })
}

/// `GET /servers/{id}/os-interface`: every interface of the server.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/os-interface", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "`{\"interfaceAttachments\": [{port_state, \
        fixed_ips: [{subnet_id, ip_address}], port_id, net_id, mac_addr}]}`"),
        (status = 404, description = "No such server")))]
pub async fn server_interface_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let ports = server_ports(state.store(), inst.id).await?;
    let views: Vec<Value> = ports.iter().map(interface_view).collect();
    Ok(Json(json!({ "interfaceAttachments": views })))
}

/// `GET /servers/{id}/os-interface/{port_id}`: one interface; a port that
/// is not the server's is a 404, as in Nova.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/os-interface/{port_id}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"),
           ("port_id" = String, Path, description = "Port id")),
    responses((status = 200, description = "`{\"interfaceAttachment\": {...}}`"),
        (status = 404, description = "No such server, or the port is not attached to it")))]
pub async fn server_interface_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, port_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let wanted = PortId::parse(&port_id);
    let port = server_ports(state.store(), inst.id)
        .await?
        .into_iter()
        .find(|p| Some(p.id) == wanted)
        .ok_or_else(|| {
            ApiError::new(
                FaultKind::NotFound(Some(ResourceKind::Port)),
                format!("Instance {} is not attached to port {port_id}.", inst.id),
            )
        })?;
    Ok(Json(
        json!({ "interfaceAttachment": interface_view(&port) }),
    ))
}

/// `POST /servers/{id}/os-interface` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    #[serde(rename = "interfaceAttachment")]
    attachment: AttachRequest,
}

/// What to attach: a port, or a new port on a network.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachRequest {
    port_id: Option<String>,
    net_id: Option<String>,
    fixed_ips: Option<Vec<FixedIpAddress>>,
}

/// Nova's `fixed_ips` entry: an address only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedIpAddress {
    ip_address: String,
}

/// A port made ready for the server, and how to undo that.
struct Bound {
    /// The port as bound.
    port: Port,
    /// The port before (None: it was created for the server).
    before: Option<Port>,
}

/// `POST /servers/{id}/os-interface`: attaches a port or a new port on a
/// network, answered once the server's host has plugged it in.
#[utoipa::path(post, path = "/v2.1/servers/{server_id}/os-interface", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    request_body(content = Object, description = "`{\"interfaceAttachment\": {port_id}}` or \
        `{\"interfaceAttachment\": {net_id, fixed_ips: [{ip_address}]}}`"),
    responses((status = 200, description = "`{\"interfaceAttachment\": {...}}` as listed"),
        (status = 400, description = "Both or neither of port_id and net_id, bad address"),
        (status = 404, description = "No such server, port or network"),
        (status = 409, description = "Server state or lock, port in use, address taken, \
            or the host could not plug it in")))]
pub async fn server_interface_attach(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AttachBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerWrite)?;
    let req = body.attachment;
    let target = attach_target(&req)?;
    let inst = load(&state, &ctx, &id).await?;
    let host = check_state(&inst, ATTACH)?;
    refuse_if_locked(&state, &ctx, &inst).await?;
    let store = state.store();
    store
        .action_start(
            inst.id,
            &request_id,
            ATTACH,
            &inst.project_id,
            ctx.user_id(),
        )
        .await?;
    let outcome = attach(
        &state,
        &ctx,
        &notify,
        &inst,
        &host,
        target,
        &req,
        &request_id,
    )
    .await;
    let (ok, details) = match &outcome {
        Ok(_) => (true, None),
        Err(e) => (false, Some(e.0.message.clone())),
    };
    store
        .action_event(
            &inst,
            ATTACH,
            "compute_attach_interface",
            Some(&host),
            ok,
            details.as_deref(),
        )
        .await?;
    store.action_finish(inst.id, ATTACH).await?;
    let port = outcome?;
    Ok(Json(
        json!({ "interfaceAttachment": interface_view(&port) }),
    ))
}

/// What an attach names: exactly one of a port and a network.
enum Target {
    Port(PortId),
    Network(NetworkId),
}

/// Reads `port_id` / `net_id` (exclusive, one needed; 400 otherwise).
fn attach_target(req: &AttachRequest) -> ApiResult<Target> {
    match (req.port_id.as_deref(), req.net_id.as_deref()) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "Invalid input for interfaceAttachment: port_id and net_id are mutually exclusive.",
        )),
        (None, None) => Err(ApiError::bad_request(
            "Invalid input for interfaceAttachment: give a port_id or a net_id.",
        )),
        (Some(_), None) if req.fixed_ips.is_some() => Err(ApiError::bad_request(
            "Invalid input for interfaceAttachment: fixed_ips go with net_id, not port_id.",
        )),
        (Some(raw), None) => PortId::parse(raw).map(Target::Port).ok_or_else(|| {
            ApiError::new(
                FaultKind::NotFound(Some(ResourceKind::Port)),
                format!("Port {raw} could not be found."),
            )
        }),
        (None, Some(raw)) => NetworkId::parse(raw).map(Target::Network).ok_or_else(|| {
            ApiError::new(
                FaultKind::NotFound(Some(ResourceKind::Network)),
                format!("Network {raw} could not be found."),
            )
        }),
    }
}

/// The server's host, if its state allows an interface change (Nova:
/// ACTIVE, PAUSED or STOPPED with no task), else a 409 naming the state.
fn check_state(inst: &Instance, action: &str) -> Result<String, ApiError> {
    let blocking = match inst.task_state {
        Some(t) => Some(format!("task_state {}", t.as_str())),
        None if !matches!(
            inst.vm_state,
            VmState::Active | VmState::Paused | VmState::Stopped
        ) =>
        {
            Some(format!("vm_state {}", inst.vm_state.as_str()))
        }
        None => None,
    };
    match (blocking, &inst.host) {
        (None, Some(host)) => Ok(host.clone()),
        (blocking, _) => Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "Cannot '{action}' instance {} while it is in {}.",
                inst.id,
                blocking.unwrap_or_else(|| "no host".to_owned())
            ),
        )),
    }
}

/// Binds (or creates) the port, has the host plug it in, and undoes the
/// binding when the host could not.
#[allow(clippy::too_many_arguments)]
async fn attach(
    state: &AppState,
    ctx: &Ctx,
    notify: &Notifier,
    inst: &Instance,
    host: &str,
    target: Target,
    req: &AttachRequest,
    request_id: &str,
) -> ApiResult<Port> {
    let bound = match target {
        Target::Port(port_id) => bind_user_port(state, ctx, inst, host, port_id).await?,
        Target::Network(net_id) => create_port(state, ctx, inst, host, net_id, req).await?,
    };
    notify.changed(port_changed(&bound.port)).await;
    let msg = ComputeMsg::AttachInterface {
        instance_id: inst.id,
        nic: nic_of(state.store(), &bound.port).await?,
    };
    match call_host(state, inst, host, &msg, request_id).await {
        Ok(()) => {
            let mut port = bound.port;
            port.status = "ACTIVE".to_owned();
            Ok(state.store().port_update(&port).await?)
        }
        Err(e) => {
            undo_binding(state, notify, &bound).await;
            Err(e)
        }
    }
}

/// Binds the user's port `port_id` to the server (404 when the caller
/// may not see it, 409 when a device uses it).
async fn bind_user_port(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    host: &str,
    port_id: PortId,
) -> ApiResult<Bound> {
    let store = state.store();
    let before = store.port_get(port_id, &ctx.read_scope()?).await?;
    if before.device_id.is_some() {
        return Err(ApiError::new(
            FaultKind::Conflict,
            format!("Port {port_id} is still in use."),
        ));
    }
    store
        .port_attachment_record(inst.id, port_id, PortOrigin::User)
        .await?;
    let mut port = before.clone();
    port.device_id = Some(inst.id);
    port.device_owner = device_owner(inst);
    port.binding_host = Some(host.to_owned());
    let port = store.port_update(&port).await?;
    Ok(Bound {
        port,
        before: Some(before),
    })
}

/// Creates a port of the server's project on network `net_id`, bound to
/// the server (quota, address and network checks as a port create).
async fn create_port(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    host: &str,
    net_id: NetworkId,
    req: &AttachRequest,
) -> ApiResult<Bound> {
    let store = state.store();
    let network = store.network_get(net_id, &ctx.read_scope()?).await?;
    port_checks::ensure_may_plug(ctx, &network)?;
    let fixed_ips = match &req.fixed_ips {
        None => Vec::new(),
        Some(list) => {
            let list: Vec<FixedIpRequest> = list
                .iter()
                .map(|f| FixedIpRequest {
                    subnet_id: None,
                    ip_address: Some(f.ip_address.clone()),
                })
                .collect();
            ensure_network_owner(ctx, &network, !list.is_empty())?;
            port_checks::fixed_ips(state, &network, &list).await?
        }
    };
    ensure_room(state, &inst.project_id, "port").await?;
    let security_groups = match network.port_security_enabled {
        true => vec![
            store
                .security_group_ensure_default(&inst.project_id)
                .await?
                .id,
        ],
        false => Vec::new(),
    };
    let port = store
        .port_create(&NewPort {
            network_id: net_id,
            project_id: inst.project_id.clone(),
            name: String::new(),
            description: String::new(),
            fixed_ips,
            mac_address: None,
            device_id: Some(inst.id),
            device_owner: device_owner(inst),
            admin_state_up: true,
            security_groups,
            port_security_enabled: network.port_security_enabled,
            allowed_address_pairs: Vec::new(),
        })
        .await?;
    store
        .port_attachment_record(inst.id, port.id, PortOrigin::Created)
        .await?;
    let mut bound = port.clone();
    bound.binding_host = Some(host.to_owned());
    let port = store.port_update(&bound).await?;
    Ok(Bound { port, before: None })
}

/// Nova's device owner of a server's ports.
fn device_owner(inst: &Instance) -> String {
    format!("compute:{}", inst.availability_zone)
}

/// Puts the port back as it was before a failed attach: the user's port
/// unbound, a created one deleted. Failures are logged (the port then
/// shows bound to the server and a detach removes it).
async fn undo_binding(state: &AppState, notify: &Notifier, bound: &Bound) {
    let store = state.store();
    let undone = match &bound.before {
        Some(before) => {
            let mut port = store
                .port_get(bound.port.id, &Scope::All)
                .await
                .unwrap_or_else(|_| bound.port.clone());
            port.device_id = before.device_id;
            port.device_owner = before.device_owner.clone();
            port.binding_host = before.binding_host.clone();
            port.status = before.status.clone();
            store.port_update(&port).await.map(|_| ())
        }
        None => match store.port_delete(bound.port.id).await {
            Err(Error::NotFound { .. }) => Ok(()),
            r => r,
        },
    };
    if let Err(e) = undone {
        tracing::error!(port = %bound.port.id, error = %e, "cannot undo a failed attach");
    }
    notify.changed(port_changed(&bound.port)).await;
}

/// What a port's binding change touches on the data planes.
fn port_changed(port: &Port) -> Changed {
    Changed::network(port.network_id)
        .with_groups(port.security_group_ids.iter().copied())
        .with_host(port.binding_host.as_deref())
}

/// The NIC of `port` as the host builds it.
async fn nic_of(store: &Store, port: &Port) -> ApiResult<NicSpec> {
    let network = store.network_get(port.network_id, &Scope::All).await?;
    let subnet = match port.fixed_ips.first() {
        Some(f) => Some(store.subnet_get(f.subnet_id, &Scope::All).await?),
        None => None,
    };
    Ok(nic_from_records(port, &network, subnet.as_ref()))
}

/// Asks the server's host to plug or unplug a NIC and turns its answer
/// into the user's: 409 with the host's reason, 503 when it is silent.
async fn call_host(
    state: &AppState,
    inst: &Instance,
    host: &str,
    msg: &ComputeMsg,
    request_id: &str,
) -> ApiResult<()> {
    let env = cloud_rpc::encode(msg, request_id).map_err(Error::from)?;
    let reply = state
        .bus()
        .call(&compute_queue(host), env, CALL_TIMEOUT)
        .await
        .map_err(|e| {
            ApiError::new(
                FaultKind::Unavailable,
                format!("The host of instance {} did not answer: {e}", inst.id),
            )
        })?;
    match cloud_rpc::decode_reply::<()>(&reply).map_err(Error::from)? {
        Reply::Ok(()) => Ok(()),
        Reply::Err(m) => Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "The host of instance {} could not change its interfaces: {m}",
                inst.id
            ),
        )),
        Reply::Unavailable(m) => Err(Error::unavailable(format!(
            "The host of instance {} cannot change its interfaces now: {m}",
            inst.id
        ))
        .into()),
    }
}

/// `DELETE /servers/{id}/os-interface/{port_id}`: unplugs the port from
/// the server, then deletes it when it was created for the server, or
/// unbinds it (the user's) — 202, as in Nova.
#[utoipa::path(delete, path = "/v2.1/servers/{server_id}/os-interface/{port_id}",
    tag = "compute",
    params(("server_id" = String, Path, description = "Server id"),
           ("port_id" = String, Path, description = "Port id")),
    responses((status = 202, description = "Detached"),
        (status = 404, description = "No such server, or the port is not attached to it"),
        (status = 409, description = "Server state or lock, or the host could not unplug it")))]
pub async fn server_interface_detach(
    State(state): State<AppState>,
    ctx: Ctx,
    notify: Notifier,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path((id, port_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(&state, &ctx, &id).await?;
    let host = check_state(&inst, DETACH)?;
    refuse_if_locked(&state, &ctx, &inst).await?;
    let port = attached_port(state.store(), &inst, &port_id).await?;
    let store = state.store();
    store
        .action_start(
            inst.id,
            &request_id,
            DETACH,
            &inst.project_id,
            ctx.user_id(),
        )
        .await?;
    let outcome = detach(&state, &notify, &inst, &host, &port, &request_id).await;
    let (ok, details) = match &outcome {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e.0.message.clone())),
    };
    store
        .action_event(
            &inst,
            DETACH,
            "compute_detach_interface",
            Some(&host),
            ok,
            details.as_deref(),
        )
        .await?;
    store.action_finish(inst.id, DETACH).await?;
    outcome.map(|()| StatusCode::ACCEPTED)
}

/// The server's port `raw` (404 when it has none such).
async fn attached_port(store: &Store, inst: &Instance, raw: &str) -> ApiResult<Port> {
    let wanted = PortId::parse(raw);
    server_ports(store, inst.id)
        .await?
        .into_iter()
        .find(|p| Some(p.id) == wanted)
        .ok_or_else(|| {
            ApiError::new(
                FaultKind::NotFound(Some(ResourceKind::Port)),
                format!("Port {raw} is not attached to instance {}.", inst.id),
            )
        })
}

/// Has the host unplug the port, then releases it.
async fn detach(
    state: &AppState,
    notify: &Notifier,
    inst: &Instance,
    host: &str,
    port: &Port,
    request_id: &str,
) -> ApiResult<()> {
    let msg = ComputeMsg::DetachInterface {
        instance_id: inst.id,
        nic: nic_of(state.store(), port).await?,
    };
    call_host(state, inst, host, &msg, request_id).await?;
    release_port(state.store(), inst, port).await?;
    notify.changed(port_changed(port)).await;
    Ok(())
}

/// Deletes a detached port made for the server; unbinds the user's.
async fn release_port(store: &Store, inst: &Instance, port: &Port) -> ApiResult<()> {
    store.floating_ips_disassociate_ports(&[port.id]).await?;
    let given_at_build = inst
        .requested_networks
        .iter()
        .any(|r| matches!(r, RequestedNetwork::Port { port_id } if *port_id == port.id));
    let users = given_at_build
        || store.port_attachment_origin(inst.id, port.id).await? == Some(PortOrigin::User);
    if !users {
        return match store.port_delete(port.id).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let mut p = store.port_get(port.id, &Scope::All).await?;
    p.device_id = None;
    p.device_owner = String::new();
    p.binding_host = None;
    p.status = "DOWN".to_owned();
    store.port_update(&p).await?;
    Ok(())
}
