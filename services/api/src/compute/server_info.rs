//! Read-only views of a server: its addresses, its security groups and its
//! instance actions.

use crate::auth::{Action, Ctx};
use crate::compute::server_views;
use crate::compute::servers::load;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use cloud_model::instance::InstanceAction;
use cloud_model::network::SecurityGroup;
use cloud_model::{Error, ResourceKind};
use cloud_store::Scope;
use serde_json::{Value, json};

/// `GET /servers/{id}/ips`.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/ips", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "Addresses by network")))]
pub async fn server_ips(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let nics = state.store().server_nics(&[inst.id]).await?;
    let nics = nics.get(&inst.id).map(Vec::as_slice).unwrap_or(&[]);
    Ok(Json(
        json!({"addresses": server_views::addresses(nics, false)}),
    ))
}

/// `GET /servers/{id}/ips/{network name}`.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/ips/{network}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"),
           ("network" = String, Path, description = "Network name")),
    responses((status = 200, description = "Addresses on that network"), (status = 404, description = "Not on that network")))]
pub async fn server_ips_network(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, network)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let nics = state.store().server_nics(&[inst.id]).await?;
    let nics = nics.get(&inst.id).map(Vec::as_slice).unwrap_or(&[]);
    let all = server_views::addresses(nics, false);
    let on = all
        .get(&network)
        .cloned()
        .ok_or_else(|| Error::not_found(ResourceKind::Network, &network))?;
    Ok(Json(json!({ network: on })))
}

/// A security group in Nova's `os-security-groups` shape: ingress rules
/// only, with Nova's rule field names.
fn nova_security_group(sg: &SecurityGroup) -> Value {
    let rules: Vec<Value> = sg
        .rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .map(|r| {
            json!({
                "id": r.id.to_string(),
                "parent_group_id": sg.id.to_string(),
                "ip_protocol": r.protocol,
                "from_port": r.port_range_min,
                "to_port": r.port_range_max,
                "ip_range": r.remote_ip_prefix.as_ref().map_or(json!({}), |c| json!({"cidr": c})),
                "group": json!({}),
            })
        })
        .collect();
    json!({
        "id": sg.id.to_string(),
        "name": sg.name,
        "description": sg.description,
        "tenant_id": sg.project_id.as_str(),
        "rules": rules,
    })
}

/// `GET /servers/{id}/os-security-groups`: the server's security groups
/// with their ids. openstacksdk's `fetch_server_security_groups` (used by
/// Ansible's `openstack.cloud.server` on every run to compare the groups)
/// needs the ids, which the server view does not carry.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/os-security-groups", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "`{\"security_groups\": [{id, name, description, \
        tenant_id, rules}]}`"), (status = 404, description = "No such server")))]
pub async fn server_security_groups(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let scope = Scope::Project(inst.project_id.clone());
    let mut groups = Vec::new();
    for name in &inst.security_groups {
        // A group deleted since the boot is no longer shown, as in Nova.
        for sg in state
            .store()
            .security_group_list(&scope, Some(name))
            .await?
        {
            groups.push(nova_security_group(&sg));
        }
    }
    Ok(Json(json!({ "security_groups": groups })))
}

fn action_view(a: &InstanceAction) -> Value {
    json!({
        "action": a.action,
        "instance_uuid": a.instance_id.to_string(),
        "message": a.message,
        "project_id": a.project_id.as_str(),
        "request_id": a.request_id,
        "start_time": a.start_time.naive_micros(),
        "user_id": a.user_id.as_str(),
    })
}

/// `GET /servers/{id}/os-instance-actions`: what was done to the server.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/os-instance-actions", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "Actions, newest first")))]
pub async fn instance_action_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let actions = state.store().action_list(inst.id).await?;
    Ok(Json(
        json!({"instanceActions": actions.iter().map(action_view).collect::<Vec<_>>()}),
    ))
}

/// `GET /servers/{id}/os-instance-actions/{request_id}`: one action with
/// its events (the failure details are shown to admins, as in Nova).
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/os-instance-actions/{request_id}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"),
           ("request_id" = String, Path, description = "Request id of the action")),
    responses((status = 200, description = "The action with its events")))]
pub async fn instance_action_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, request_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let a = state.store().action_get(inst.id, &request_id).await?;
    let admin = ctx.is_admin();
    let mut v = action_view(&a);
    v["events"] = Value::Array(
        a.events
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "event": e.event,
                    "start_time": e.start_time.naive_micros(),
                    "finish_time": e.finish_time.map(|t| t.naive_micros()),
                    "result": e.result,
                });
                if admin {
                    ev["traceback"] = json!(match (&e.host, &e.details) {
                        (Some(h), Some(d)) => Some(format!("host {h}: {d}")),
                        (None, Some(d)) => Some(d.clone()),
                        _ => None,
                    });
                }
                ev
            })
            .collect(),
    );
    Ok(Json(json!({"instanceAction": v})))
}
