//! `GET /servers/{id}/os-interface` and `/os-interface/{port_id}`: the
//! server's network interfaces in Nova's `interfaceAttachments` shape.
//! novaclient's `interface-list` and the `openstack` CLI's server views of
//! ports read them; they are the server's ports, seen from the server.
//!
//! Attaching and detaching (`POST`, `DELETE`) are not served yet: they
//! need a hotplug on the host and are left unrouted (405).

use crate::auth::{Action, Ctx};
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use cloud_model::network::Port;
use cloud_model::{InstanceId, PortId, ResourceKind};
use cloud_store::{PortFilter, Scope, Store};
use serde_json::{Value, json};

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
