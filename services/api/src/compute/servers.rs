//! `GET/PUT/DELETE /servers[/{id}]` and the listings.

use crate::auth::{Action, Ctx};
use crate::compute::server_views;
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, JsonBody, QueryPairs};
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use cloud_bus::CONDUCTOR_QUEUE;
use cloud_model::instance::{Instance, TaskState, VmState, vm_states_for_status};
use cloud_model::{Error, InstanceId, ProjectId, ResourceKind, Timestamp};
use cloud_rpc::ConductorMsg;
use cloud_store::{InstanceFilter, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most servers one page may hold (Nova's `max_limit`).
pub const MAX_PAGE: i64 = 1000;

/// Parses a server id from the path: names and garbage are 404s, which is
/// what lets clients fall back to a `?name=` search.
pub fn server_id(raw: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse(raw).ok_or_else(|| Error::not_found(ResourceKind::Server, raw).into())
}

/// Loads a server the caller may see (admins see every project's).
pub async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> Result<Instance, ApiError> {
    let id = server_id(raw)?;
    Ok(state.store().instance_get(id, &ctx.read_scope()?).await?)
}

struct Listing {
    servers: Vec<Instance>,
    next_marker: Option<InstanceId>,
}

async fn list(state: &AppState, ctx: &Ctx, q: &QueryPairs) -> Result<Listing, ApiError> {
    ctx.authorize(Action::ServerRead)?;
    let all_tenants = q
        .get("all_tenants")
        .map(|v| v.is_empty() || crate::extract::parse_bool(v).unwrap_or(true))
        .unwrap_or(false);
    let scope = if all_tenants {
        ctx.authorize(Action::ServerListAllProjects)?;
        match q.get("project_id").or_else(|| q.get("tenant_id")) {
            Some(p) => Scope::Project(ProjectId::from_string(p)),
            None => Scope::All,
        }
    } else {
        ctx.own_scope()?
    };
    let mut filter = InstanceFilter::scope(scope.clone());
    if let Some(s) = q.get("status") {
        filter.vm_states = Some(
            vm_states_for_status(s)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid status value '{s}'.")))?,
        );
    }
    filter.image_id = q
        .get("image")
        .map(|i| i.rsplit('/').next().unwrap_or(i).to_owned());
    filter.flavor_id = q
        .get("flavor")
        .map(|f| f.rsplit('/').next().unwrap_or(f).to_owned());
    filter.reservation_id = q.get("reservation_id").map(str::to_owned);
    if let Some(h) = q.get("host") {
        ctx.authorize(Action::ServerAdminRead)?;
        filter.host = Some(h.to_owned());
    }
    if let Some(cs) = q.get("changes-since").or_else(|| q.get("changes_since")) {
        filter.changes_since = Some(Timestamp::parse(cs).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid changes-since value '{cs}': expected an ISO 8601 time."
            ))
        })?);
    }
    let name_re = match q.get("name") {
        Some(n) => Some(regex::Regex::new(n).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid name filter '{n}': not a regular expression ({e})."
            ))
        })?),
        None => None,
    };
    let limit = q.limit()?.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let marker = match q.get("marker") {
        Some(m) => {
            let id = InstanceId::parse(m)
                .ok_or_else(|| ApiError::bad_request(format!("marker [{m}] not found")))?;
            let mut f = InstanceFilter::scope(scope.clone());
            f.include_deleted = true;
            Some(
                state
                    .store()
                    .instance_get_any(id)
                    .await
                    .ok()
                    .filter(|i| scope.project().is_none_or(|p| *p == i.project_id))
                    .ok_or_else(|| ApiError::bad_request(format!("marker [{m}] not found")))?,
            )
        }
        None => None,
    };
    let servers = match &name_re {
        None => {
            state
                .store()
                .instance_list(&filter, marker.as_ref(), Some(limit))
                .await?
        }
        Some(re) => {
            // The name filter is a regex, which SQL cannot do portably:
            // filter the (already narrowed) rows here, then page.
            state
                .store()
                .instance_list(&filter, marker.as_ref(), None)
                .await?
                .into_iter()
                .filter(|i| re.is_match(&i.name))
                .take(limit as usize)
                .collect()
        }
    };
    let next_marker = if servers.len() as i64 == limit && limit > 0 {
        servers.last().map(|s| s.id)
    } else {
        None
    };
    Ok(Listing {
        servers,
        next_marker,
    })
}

fn next_link(base: &str, path: &str, q: &QueryPairs, marker: InstanceId) -> Value {
    let mut params: Vec<String> =
        q.0.iter()
            .filter(|(k, _)| k != "marker")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
    params.push(format!("marker={marker}"));
    json!([{"rel": "next", "href": format!("{base}/compute/v2.1/{path}?{}", params.join("&"))}])
}

/// Lists servers (id, name, links), newest first.
#[utoipa::path(get, path = "/v2.1/servers", tag = "compute",
    responses((status = 200, description = "Servers")))]
pub async fn server_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let l = list(&state, &ctx, &q).await?;
    let mut body = json!({
        "servers": l.servers.iter().map(|s| server_views::minimal(s, &base)).collect::<Vec<_>>(),
    });
    if let Some(m) = l.next_marker {
        body["servers_links"] = next_link(&base, "servers", &q, m);
    }
    Ok(Json(body))
}

/// Lists servers with details, newest first.
#[utoipa::path(get, path = "/v2.1/servers/detail", tag = "compute",
    responses((status = 200, description = "Servers with details")))]
pub async fn server_list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let l = list(&state, &ctx, &q).await?;
    let ids: Vec<InstanceId> = l.servers.iter().map(|s| s.id).collect();
    let nics = state.store().server_nics(&ids).await?;
    let admin = ctx.is_admin();
    let servers: Vec<Value> = l
        .servers
        .iter()
        .map(|s| {
            server_views::full(
                s,
                nics.get(&s.id).map(Vec::as_slice).unwrap_or(&[]),
                &base,
                admin,
            )
        })
        .collect();
    let mut body = json!({ "servers": servers });
    if let Some(m) = l.next_marker {
        body["servers_links"] = next_link(&base, "servers/detail", &q, m);
    }
    Ok(Json(body))
}

/// Shows a server.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "The server"), (status = 404, description = "Not found")))]
pub async fn server_show(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let nics = state.store().server_nics(&[inst.id]).await?;
    Ok(Json(json!({"server": server_views::full(
        &inst,
        nics.get(&inst.id).map(Vec::as_slice).unwrap_or(&[]),
        &base,
        ctx.is_admin(),
    )})))
}

/// Body of `PUT /servers/{id}`.
#[derive(Debug, Deserialize)]
pub struct UpdateServerRequest {
    server: UpdateServer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateServer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "accessIPv4")]
    access_ipv4: Option<String>,
    #[serde(default, rename = "accessIPv6")]
    access_ipv6: Option<String>,
    #[serde(default, rename = "OS-DCF:diskConfig")]
    disk_config: Option<String>,
}

/// Renames a server or changes its access addresses.
#[utoipa::path(put, path = "/v2.1/servers/{server_id}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "The updated server (basic view)")))]
pub async fn server_update(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateServerRequest>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(&state, &ctx, &id).await?;
    let u = req.server;
    if let Some(n) = &u.name
        && (n.trim().is_empty() || n.chars().count() > 255)
    {
        return Err(ApiError::bad_request(
            "Invalid input for field 'server.name': must be 1 to 255 characters and not blank.",
        ));
    }
    let v4 = match u.access_ipv4.as_deref() {
        Some("") => Some(String::new()),
        Some(a) => Some(
            a.parse::<std::net::Ipv4Addr>()
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid input for field 'server.accessIPv4': '{a}' is not an IPv4 address."
                    ))
                })?
                .to_string(),
        ),
        None => None,
    };
    let v6 = match u.access_ipv6.as_deref() {
        Some("") => Some(String::new()),
        Some(a) => Some(
            a.parse::<std::net::Ipv6Addr>()
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid input for field 'server.accessIPv6': '{a}' is not an IPv6 address."
                    ))
                })?
                .to_string(),
        ),
        None => None,
    };
    if let Some(d) = &u.disk_config
        && d != "AUTO"
        && d != "MANUAL"
    {
        return Err(ApiError::bad_request(
            "Invalid input for field 'server.OS-DCF:diskConfig': must be AUTO or MANUAL.",
        ));
    }
    let inst = state
        .store()
        .instance_update_info(
            inst.id,
            &ctx.read_scope()?,
            u.name.as_deref(),
            v4.as_deref(),
            v6.as_deref(),
        )
        .await?;
    let nics = state.store().server_nics(&[inst.id]).await?;
    Ok(Json(json!({"server": server_views::basic(
        &inst,
        nics.get(&inst.id).map(Vec::as_slice).unwrap_or(&[]),
        &base,
    )})))
}

/// Deletes a server (in any state). Repeating a delete is harmless.
#[utoipa::path(delete, path = "/v2.1/servers/{server_id}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 204, description = "Deletion started"), (status = 404, description = "Not found")))]
pub async fn server_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Extension(RequestId(request_id)): Extension<RequestId>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(&state, &ctx, &id).await?;
    if inst.task_state == Some(TaskState::Deleting) {
        return Ok(StatusCode::NO_CONTENT);
    }
    crate::compute::server_lock::refuse_if_locked(&state, &ctx, &inst).await?;
    let scope = ctx.read_scope()?;
    let all_vm = [
        VmState::Building,
        VmState::Active,
        VmState::Stopped,
        VmState::Paused,
        VmState::Suspended,
        VmState::Rescued,
        VmState::Shelved,
        VmState::ShelvedOffloaded,
        VmState::Error,
    ];
    let other_tasks = [
        TaskState::Scheduling,
        TaskState::Networking,
        TaskState::Spawning,
        TaskState::Rebooting,
        TaskState::RebootingHard,
        TaskState::PoweringOff,
        TaskState::PoweringOn,
        TaskState::Pausing,
        TaskState::Unpausing,
        TaskState::Suspending,
        TaskState::Resuming,
        TaskState::Rebuilding,
        TaskState::ImageSnapshot,
        TaskState::Rescuing,
        TaskState::Unrescuing,
        TaskState::Shelving,
        TaskState::ShelvingOffloading,
        TaskState::Unshelving,
    ];
    let deadline = Timestamp::now().plus_seconds(900);
    match state
        .store()
        .instance_begin_task(
            inst.id,
            &scope,
            "delete",
            &all_vm,
            &other_tasks,
            TaskState::Deleting,
            deadline,
        )
        .await
    {
        Ok(_) => {}
        Err(Error::Conflict { .. }) => return Ok(StatusCode::NO_CONTENT),
        Err(e) => return Err(e.into()),
    }
    state
        .store()
        .action_start(
            inst.id,
            &request_id,
            "delete",
            &inst.project_id,
            ctx.user_id(),
        )
        .await?;
    state
        .store()
        .workflow_create(inst.id, "delete", "destroy")
        .await?;
    let msg = ConductorMsg::DeleteInstance {
        instance_id: inst.id,
    };
    let sent = match cloud_rpc::encode(&msg, &request_id) {
        Ok(env) => state
            .bus()
            .cast(CONDUCTOR_QUEUE, env)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        tracing::warn!(instance = %inst.id, error = %e, "cannot reach the conductors now; the delete will be resumed");
    }
    Ok(StatusCode::NO_CONTENT)
}
