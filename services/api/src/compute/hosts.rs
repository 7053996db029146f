//! Admin views of the compute hosts: `os-hypervisors` and `os-services`.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{Error, ResourceKind, Timestamp};
use cloud_store::{ComputeNode, ServiceRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A stable integer id for a host (microversion 2.1 shows integer ids).
fn host_number(host: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(host.as_bytes());
    i64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff)
}

fn state_of(
    s: Option<&ServiceRecord>,
    now: Timestamp,
    down_secs: i64,
) -> (&'static str, &'static str) {
    match s {
        Some(s) => (
            if s.is_up(now, down_secs) {
                "up"
            } else {
                "down"
            },
            if s.disabled { "disabled" } else { "enabled" },
        ),
        None => ("down", "disabled"),
    }
}

fn hypervisor_view(
    n: &ComputeNode,
    svc: Option<&ServiceRecord>,
    running: i64,
    detail: bool,
    down_secs: i64,
) -> Value {
    let (state, status) = state_of(svc, Timestamp::now(), down_secs);
    let mut v = json!({
        "id": host_number(&n.host),
        "hypervisor_hostname": n.host,
        "state": state,
        "status": status,
    });
    if detail {
        let o = v.as_object_mut().expect("object");
        let mem_used = n.memory_mb.used + n.memory_mb.reserved;
        let disk_used = n.disk_gb.used + n.disk_gb.reserved;
        o.insert(
            "cpu_info".into(),
            json!(json!({"arch": n.cpu_arch}).to_string()),
        );
        o.insert("current_workload".into(), json!(0));
        o.insert(
            "disk_available_least".into(),
            json!(n.disk_gb.total - disk_used),
        );
        o.insert("free_disk_gb".into(), json!(n.disk_gb.total - disk_used));
        o.insert("free_ram_mb".into(), json!(n.memory_mb.total - mem_used));
        o.insert(
            "host_ip".into(),
            json!(n.host_ip.clone().unwrap_or_else(|| "127.0.0.1".into())),
        );
        o.insert("hypervisor_type".into(), json!(n.hypervisor_type));
        o.insert("hypervisor_version".into(), json!(n.hypervisor_version));
        o.insert("local_gb".into(), json!(n.disk_gb.total));
        o.insert("local_gb_used".into(), json!(disk_used));
        o.insert("memory_mb".into(), json!(n.memory_mb.total));
        o.insert("memory_mb_used".into(), json!(mem_used));
        o.insert("running_vms".into(), json!(running));
        o.insert(
            "service".into(),
            json!({
                "host": n.host,
                "id": svc.map(|s| s.id).unwrap_or(0),
                "disabled_reason": svc.and_then(|s| s.disabled_reason.clone()),
            }),
        );
        o.insert("vcpus".into(), json!(n.vcpu.total));
        o.insert("vcpus_used".into(), json!(n.vcpu.used));
    }
    v
}

async fn hypervisors(state: &AppState, detail: bool) -> Result<Vec<Value>, ApiError> {
    let nodes = state.store().compute_nodes().await?;
    let services = state.store().service_list().await?;
    let running: HashMap<String, i64> = state
        .store()
        .running_vms_per_host()
        .await?
        .into_iter()
        .collect();
    Ok(nodes
        .iter()
        .map(|n| {
            let svc = services
                .iter()
                .find(|s| s.host == n.host && s.binary == "cloud-compute");
            hypervisor_view(
                n,
                svc,
                running.get(&n.host).copied().unwrap_or(0),
                detail,
                state.config().service_down_secs,
            )
        })
        .collect())
}

/// Lists hypervisors (admin).
#[utoipa::path(get, path = "/v2.1/os-hypervisors", tag = "compute",
    responses((status = 200, description = "Hypervisors")))]
pub async fn hypervisor_list(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::HypervisorRead)?;
    Ok(Json(
        json!({"hypervisors": hypervisors(&state, false).await?}),
    ))
}

/// Lists hypervisors with their resources (admin).
#[utoipa::path(get, path = "/v2.1/os-hypervisors/detail", tag = "compute",
    responses((status = 200, description = "Hypervisors with details")))]
pub async fn hypervisor_list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::HypervisorRead)?;
    Ok(Json(
        json!({"hypervisors": hypervisors(&state, true).await?}),
    ))
}

/// Totals over every hypervisor (admin).
#[utoipa::path(get, path = "/v2.1/os-hypervisors/statistics", tag = "compute",
    responses((status = 200, description = "Totals")))]
pub async fn hypervisor_statistics(
    State(state): State<AppState>,
    ctx: Ctx,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::HypervisorRead)?;
    let all = hypervisors(&state, true).await?;
    let sum = |k: &str| all.iter().map(|h| h[k].as_i64().unwrap_or(0)).sum::<i64>();
    Ok(Json(json!({"hypervisor_statistics": {
        "count": all.len(),
        "current_workload": 0,
        "disk_available_least": sum("disk_available_least"),
        "free_disk_gb": sum("free_disk_gb"),
        "free_ram_mb": sum("free_ram_mb"),
        "local_gb": sum("local_gb"),
        "local_gb_used": sum("local_gb_used"),
        "memory_mb": sum("memory_mb"),
        "memory_mb_used": sum("memory_mb_used"),
        "running_vms": sum("running_vms"),
        "vcpus": sum("vcpus"),
        "vcpus_used": sum("vcpus_used"),
    }})))
}

/// Shows one hypervisor by its id (admin).
#[utoipa::path(get, path = "/v2.1/os-hypervisors/{hypervisor_id}", tag = "compute",
    params(("hypervisor_id" = String, Path, description = "Hypervisor id")),
    responses((status = 200, description = "The hypervisor"), (status = 404, description = "Not found")))]
pub async fn hypervisor_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::HypervisorRead)?;
    let found = hypervisors(&state, true)
        .await?
        .into_iter()
        .find(|h| h["id"] == id || h["hypervisor_hostname"] == id.as_str())
        .ok_or_else(|| Error::not_found(ResourceKind::Hypervisor, &id))?;
    Ok(Json(json!({"hypervisor": found})))
}

/// Our binary names, with Nova's accepted as aliases (tools filter by them).
fn binary_name(b: &str) -> &str {
    match b {
        "nova-compute" => "cloud-compute",
        "nova-conductor" => "cloud-conductor",
        "nova-scheduler" => "cloud-scheduler",
        other => other,
    }
}

fn service_view(s: &ServiceRecord, down_secs: i64) -> Value {
    let (state, status) = state_of(Some(s), Timestamp::now(), down_secs);
    json!({
        "id": s.id,
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": status,
        "state": state,
        "updated_at": s.updated_at.naive_micros(),
        "disabled_reason": s.disabled_reason,
    })
}

/// Lists services (admin; filters `host`, `binary`).
#[utoipa::path(get, path = "/v2.1/os-services", tag = "compute",
    responses((status = 200, description = "Services")))]
pub async fn service_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServiceRead)?;
    let list: Vec<Value> = state
        .store()
        .service_list()
        .await?
        .iter()
        .filter(|s| q.get("host").is_none_or(|h| h == s.host))
        .filter(|s| q.get("binary").is_none_or(|b| binary_name(b) == s.binary))
        .map(|s| service_view(s, state.config().service_down_secs))
        .collect();
    Ok(Json(json!({"services": list})))
}

/// Body of the `os-services` PUT actions.
#[derive(Debug, Deserialize)]
pub struct ServiceUpdate {
    host: String,
    binary: String,
    #[serde(default)]
    disabled_reason: Option<String>,
    #[serde(default)]
    forced_down: Option<bool>,
}

/// Enables, disables (optionally with a reason) or forces down a service
/// (admin). A disabled host gets no new servers; a forced-down one counts
/// as down at once.
#[utoipa::path(put, path = "/v2.1/os-services/{service}", tag = "compute",
    params(("service" = String, Path, description = "enable, disable, disable-log-reason or force-down")),
    responses((status = 200, description = "The service's new state"), (status = 404, description = "No such service")))]
pub async fn service_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(action): Path<String>,
    JsonBody(u): JsonBody<ServiceUpdate>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServiceWrite)?;
    let binary = binary_name(&u.binary).to_owned();
    let store = state.store();
    let body = match action.as_str() {
        "enable" => {
            store
                .service_set_disabled(&u.host, &binary, false, None)
                .await?;
            json!({"host": u.host, "binary": u.binary, "status": "enabled"})
        }
        "disable" => {
            store
                .service_set_disabled(&u.host, &binary, true, None)
                .await?;
            json!({"host": u.host, "binary": u.binary, "status": "disabled"})
        }
        "disable-log-reason" => {
            let reason = u.disabled_reason.clone().ok_or_else(|| {
                ApiError::bad_request("Invalid input for field 'disabled_reason': required.")
            })?;
            store
                .service_set_disabled(&u.host, &binary, true, Some(&reason))
                .await?;
            json!({"host": u.host, "binary": u.binary, "status": "disabled", "disabled_reason": reason})
        }
        "force-down" => {
            let down = u.forced_down.ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input for field 'forced_down': required (true or false).",
                )
            })?;
            store
                .service_set_forced_down(&u.host, &binary, down)
                .await?;
            json!({"host": u.host, "binary": u.binary, "forced_down": down})
        }
        other => {
            return Err(
                Error::not_found(ResourceKind::Resource, format!("os-services/{other}")).into(),
            );
        }
    };
    Ok(Json(json!({"service": body})))
}

/// Deletes a service record (admin).
#[utoipa::path(delete, path = "/v2.1/os-services/{service}", tag = "compute",
    params(("service" = i64, Path, description = "Service id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn service_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServiceWrite)?;
    let id: i64 = id
        .parse()
        .map_err(|_| Error::not_found(ResourceKind::Service, &id))?;
    state.store().service_delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
