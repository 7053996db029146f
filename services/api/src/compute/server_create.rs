//! `POST /servers`: validate everything a user can get wrong, record the
//! servers (with their quota) in one transaction, and hand each build to
//! the conductors.

use crate::auth::{Action, Ctx};
use crate::compute::server_create_schema;
use crate::compute::server_quota::{PerServer, servers_that_fit};
use crate::compute::server_security_groups::find_security_group;
use crate::compute::server_views::links;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{BaseUrl, JsonBody};
use crate::idempotency::HeldKey;
use crate::network::port_checks;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use cloud_bus::CONDUCTOR_QUEUE;
use cloud_model::instance::{
    FlavorSnapshot, GroupPolicy, Instance, PowerState, RequestedNetwork, TaskState, VmState,
};
use cloud_model::network::Network;
use cloud_model::{Error, FlavorId, ImageId, NetworkId, PortId, ServerGroupId, Timestamp};
use cloud_rpc::ConductorMsg;
use cloud_store::Scope;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Largest user data accepted (base64 text), as Nova.
pub const MAX_USER_DATA: usize = 65535;

/// How many times a create whose quota room was taken by concurrent
/// creates (between reading the use and recording the batch) works out
/// its count again before giving up with the quota fault.
const QUOTA_RACE_RETRIES: u32 = 3;

/// Body of `POST /servers`: Nova 2.1's schema, unknown fields refused
/// (`additionalProperties: false`) rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServerRequest {
    server: CreateServer,
    #[serde(default, rename = "os:scheduler_hints")]
    scheduler_hints: Option<SchedulerHints>,
    #[serde(default, rename = "OS-SCH-HNT:scheduler_hints")]
    scheduler_hints_alt: Option<SchedulerHints>,
}

#[derive(Debug, Default, Deserialize)]
struct SchedulerHints {
    #[serde(default)]
    group: Option<String>,
}

/// An integer that clients send as a number or a numeric string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Count {
    Int(i64),
    Text(String),
}

impl Count {
    fn value(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            Count::Int(i) => Ok(*i),
            Count::Text(s) => s.trim().parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid input for field 'server.{field}': '{s}' is not an integer."
                ))
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
enum Networks {
    Word(String),
    List(Vec<NetworkRequest>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkRequest {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    port: Option<String>,
    #[serde(default)]
    fixed_ip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityGroupRef {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateServer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "imageRef")]
    image_ref: Option<String>,
    #[serde(default, rename = "flavorRef")]
    flavor_ref: Option<String>,
    #[serde(default)]
    networks: Option<Networks>,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    user_data: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    security_groups: Option<Vec<SecurityGroupRef>>,
    #[serde(default)]
    min_count: Option<Count>,
    #[serde(default)]
    max_count: Option<Count>,
    #[serde(default)]
    return_reservation_id: Option<bool>,
    #[serde(default, rename = "accessIPv4")]
    access_ipv4: Option<String>,
    #[serde(default, rename = "accessIPv6")]
    access_ipv6: Option<String>,
    #[serde(default, rename = "adminPass")]
    admin_pass: Option<String>,
    #[serde(default, rename = "OS-DCF:diskConfig")]
    disk_config: Option<String>,
    #[serde(default)]
    block_device_mapping_v2: Option<Vec<Value>>,
    #[serde(default)]
    config_drive: Option<Value>,
    /// Volume mappings (the legacy form): only an empty list is served.
    #[serde(default)]
    block_device_mapping: Option<Vec<Value>>,
    /// Files to inject: only an empty list is served.
    #[serde(default)]
    personality: Option<Vec<Value>>,
    /// Server tags (Nova 2.52): not a 2.1 field, but Ansible's
    /// openstack.cloud.server sends an empty list on every create, so an
    /// empty list is accepted; tags themselves are refused with the way to
    /// set them.
    #[serde(default)]
    tags: Option<Vec<Value>>,
}

impl TryFrom<Value> for Networks {
    type Error = String;

    /// `"auto"`/`"none"` or a list of requests; a request's own error
    /// (an unknown field, say) is kept rather than an untagged enum's
    /// "did not match any variant".
    fn try_from(v: Value) -> Result<Self, String> {
        match v {
            Value::String(w) => Ok(Networks::Word(w)),
            Value::Array(_) => serde_json::from_value(v)
                .map(Networks::List)
                .map_err(|e| e.to_string()),
            other => Err(format!("{other} is not a list, 'auto' or 'none'")),
        }
    }
}

fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid input for field 'server.{field}': {why}"))
}

/// Nova's hostname rule: lowercase, letters/digits/hyphens, at most 63.
pub fn sanitize_hostname(name: &str) -> String {
    let mut h: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while h.contains("--") {
        h = h.replace("--", "-");
    }
    let h = h.trim_matches('-').chars().take(63).collect::<String>();
    let h = h.trim_end_matches('-').to_owned();
    if h.is_empty() { "server".to_owned() } else { h }
}

/// A generated `adminPass` (server create, rebuild): shown once, never stored.
pub(crate) fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates one or more servers.
#[utoipa::path(post, path = "/v2.1/servers", tag = "compute",
    responses((status = 202, description = "Accepted: the build runs in the background"),
              (status = 400, description = "Invalid request (the message names the field)"),
              (status = 403, description = "Quota exceeded or not allowed"),
              (status = 409, description = "A resource is in use")))]
pub async fn server_create(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Extension(RequestId(request_id)): Extension<RequestId>,
    idempotency_key: Option<Extension<HeldKey>>,
    JsonBody(req): JsonBody<CreateServerRequest>,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let project = ctx.project_id()?.clone();
    let scope = Scope::Project(project.clone());
    let store = state.store();
    let s = req.server;

    let name = s.name.ok_or_else(|| bad("name", "required"))?;
    if name.trim().is_empty() {
        return Err(bad("name", "must not be blank"));
    }
    if name.chars().count() > 255 {
        return Err(bad("name", "must be at most 255 characters"));
    }

    // Boot source: an image (OSC adds an image->local BDM for it).
    server_create_schema::check_unserved(
        s.block_device_mapping.as_deref(),
        s.personality.as_deref(),
        s.tags.as_deref(),
    )?;
    if let Some(bdms) = &s.block_device_mapping_v2 {
        for b in bdms {
            server_create_schema::check_bdm_v2_fields(b)?;
            let image_local = b.get("source_type").and_then(Value::as_str) == Some("image")
                && b.get("destination_type")
                    .and_then(Value::as_str)
                    .unwrap_or("local")
                    == "local";
            if !image_local {
                return Err(bad(
                    "block_device_mapping_v2",
                    "only booting from an image to a local disk is supported (no volumes)",
                ));
            }
        }
    }
    let image_ref = s
        .image_ref
        .clone()
        .or_else(|| {
            s.block_device_mapping_v2.as_ref().and_then(|b| {
                b.iter()
                    .find_map(|x| x.get("uuid").and_then(Value::as_str).map(str::to_owned))
            })
        })
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("imageRef", "required"))?;
    let image_id = ImageId::parse(image_ref.rsplit('/').next().unwrap_or(&image_ref))
        .ok_or_else(|| bad("imageRef", format!("'{image_ref}' is not an image id")))?;
    let image = store
        .image_get(image_id, &scope)
        .await
        .map_err(|_| ApiError::bad_request(format!("Image {image_id} could not be found.")))?;
    if image.status != "active" {
        return Err(ApiError::bad_request(format!(
            "Image {image_id} is not active (status {}): upload its data first.",
            image.status
        )));
    }

    let flavor_ref = s
        .flavor_ref
        .clone()
        .ok_or_else(|| bad("flavorRef", "required"))?;
    let flavor_id = FlavorId::from_string(flavor_ref.rsplit('/').next().unwrap_or(&flavor_ref));
    let flavor = match store.flavor_get(&flavor_id).await {
        Ok(f) if ctx.is_admin() || store.flavor_visible_to(&f, &project).await? => f,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Flavor {flavor_ref} could not be found."
            )));
        }
    };
    if flavor.disabled {
        return Err(ApiError::bad_request(format!(
            "Flavor {flavor_ref} is disabled."
        )));
    }
    if image.min_ram > flavor.ram_mb {
        return Err(ApiError::bad_request(format!(
            "Flavor's memory is too small for the requested image: image needs {} MiB, \
             flavor {} has {} MiB.",
            image.min_ram, flavor.name, flavor.ram_mb
        )));
    }
    if flavor.disk_gb > 0 && image.min_disk > flavor.disk_gb {
        return Err(ApiError::bad_request(format!(
            "Flavor's disk is too small for the requested image: image needs {} GiB, flavor \
             {} has {} GiB.",
            image.min_disk, flavor.name, flavor.disk_gb
        )));
    }

    let requested_networks = resolve_networks(&state, &ctx, s.networks).await?;

    let (key_name, key_data) = match &s.key_name {
        Some(k) => {
            let kp = store
                .keypair_get(ctx.user_id(), k)
                .await
                .map_err(|_| ApiError::bad_request("Invalid key_name provided."))?;
            (Some(kp.name), Some(kp.public_key))
        }
        None => (None, None),
    };

    if let Some(ud) = &s.user_data {
        if ud.len() > MAX_USER_DATA {
            return Err(bad(
                "user_data",
                format!(
                    "{} bytes is longer than the maximum of {MAX_USER_DATA}",
                    ud.len()
                ),
            ));
        }
        base64::engine::general_purpose::STANDARD
            .decode(ud.trim())
            .map_err(|_| bad("user_data", "not valid base64"))?;
    }

    let limits = store.quota_limits(&project, &state.config().quotas).await?;
    let metadata = s.metadata.unwrap_or_default();
    let max_meta = limits.get("metadata_items").copied().unwrap_or(128);
    if max_meta >= 0 && metadata.len() as i64 > max_meta {
        return Err(ApiError::new(
            FaultKind::OverQuota,
            format!(
                "Quota exceeded for metadata_items: {} items given, maximum {max_meta}.",
                metadata.len()
            ),
        ));
    }
    for (k, v) in &metadata {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(bad(
                "metadata",
                format!("key '{k}' must be 1 to 255 characters"),
            ));
        }
        if v.chars().count() > 255 {
            return Err(bad(
                "metadata",
                format!("value of '{k}' is longer than 255 characters"),
            ));
        }
    }

    let az = match s.availability_zone.as_deref().filter(|z| !z.is_empty()) {
        None => "nova".to_owned(),
        Some(z) => crate::compute::availability_zones::checked_zone(store, &ctx, z).await?,
    };

    let security_groups: Vec<String> = match s.security_groups {
        Some(list) if !list.is_empty() => {
            store.security_group_ensure_default(&project).await?;
            let mut names = Vec::new();
            for sg in list {
                let found = find_security_group(store, &scope, &sg.name)
                    .await?
                    .map(|g| g.name);
                let n = found.ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Unable to find security_group with name or id '{}'.",
                        sg.name
                    ))
                })?;
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            names
        }
        _ => vec!["default".to_owned()],
    };

    let min_count = s
        .min_count
        .as_ref()
        .map(|c| c.value("min_count"))
        .transpose()?
        .unwrap_or(1);
    let max_count = s
        .max_count
        .as_ref()
        .map(|c| c.value("max_count"))
        .transpose()?
        .unwrap_or(min_count);
    if min_count < 1 {
        return Err(bad("min_count", "must be at least 1"));
    }
    if max_count < min_count {
        return Err(bad(
            "max_count",
            "must be greater than or equal to min_count",
        ));
    }
    if max_count > 1000 {
        return Err(bad("max_count", "must be at most 1000"));
    }
    if max_count > 1
        && requested_networks.iter().any(|r| {
            matches!(
                r,
                RequestedNetwork::Port { .. }
                    | RequestedNetwork::Network {
                        fixed_ip: Some(_),
                        ..
                    }
            )
        })
    {
        return Err(ApiError::bad_request(
            "Multiple servers cannot share one port or fixed IP: use min_count = max_count = 1.",
        ));
    }

    let hints = req
        .scheduler_hints
        .or(req.scheduler_hints_alt)
        .unwrap_or_default();
    let group = match &hints.group {
        Some(g) => {
            let gid = ServerGroupId::parse(g).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid scheduler hint 'group': '{g}' is not a server group id."
                ))
            })?;
            let group = store.server_group_get(gid, &scope).await.map_err(|_| {
                ApiError::bad_request(format!("Server group {g} could not be found."))
            })?;
            let max_members = limits.get("server_group_members").copied().unwrap_or(10);
            if max_members >= 0 && group.members.len() as i64 + max_count > max_members {
                return Err(ApiError::new(
                    FaultKind::OverQuota,
                    format!("Quota exceeded, too many servers in group {g} (limit {max_members})."),
                ));
            }
            Some(group)
        }
        None => None,
    };

    let access_ipv4 = match s.access_ipv4.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => a
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("accessIPv4", format!("'{a}' is not an IPv4 address")))?
            .to_string(),
        None => String::new(),
    };
    let access_ipv6 = match s.access_ipv6.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => a
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("accessIPv6", format!("'{a}' is not an IPv6 address")))?
            .to_string(),
        None => String::new(),
    };
    let disk_config = s.disk_config.unwrap_or_else(|| "MANUAL".to_owned());
    if disk_config != "MANUAL" && disk_config != "AUTO" {
        return Err(bad("OS-DCF:diskConfig", "must be AUTO or MANUAL"));
    }
    let config_drive = match &s.config_drive {
        Some(Value::Bool(true)) => "True".to_owned(),
        Some(Value::String(v)) if crate::extract::parse_bool(v) == Some(true) => "True".to_owned(),
        _ => String::new(),
    };
    let admin_pass = s.admin_pass.unwrap_or_else(random_password);

    let snapshot = FlavorSnapshot {
        id: flavor.id.to_string(),
        name: flavor.name.clone(),
        vcpus: flavor.vcpus,
        ram_mb: flavor.ram_mb,
        disk_gb: flavor.disk_gb,
        swap_mb: flavor.swap_mb,
        ephemeral_gb: flavor.ephemeral_gb,
        extra_specs: flavor.extra_specs.clone(),
    };
    let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let now = Timestamp::now();
    let make = |n: i64| -> Vec<Instance> {
        (0..n)
            .map(|i| {
                let display = if n > 1 {
                    format!("{name}-{}", i + 1)
                } else {
                    name.clone()
                };
                Instance {
                    id: cloud_model::InstanceId::new(),
                    project_id: project.clone(),
                    user_id: ctx.user_id().clone(),
                    hostname: sanitize_hostname(&display),
                    name: display,
                    vm_state: VmState::Building,
                    task_state: Some(TaskState::Scheduling),
                    power_state: PowerState::NoState,
                    host: None,
                    node: None,
                    availability_zone: az.clone(),
                    flavor: snapshot.clone(),
                    image_id,
                    key_name: key_name.clone(),
                    key_data: key_data.clone(),
                    user_data: s.user_data.as_ref().map(|u| u.trim().to_owned()),
                    metadata: metadata.clone(),
                    tags: Vec::new(),
                    access_ipv4: access_ipv4.clone(),
                    access_ipv6: access_ipv6.clone(),
                    config_drive: config_drive.clone(),
                    launch_index: i,
                    reservation_id: reservation_id.clone(),
                    server_group_id: group.as_ref().map(|g| g.id),
                    requested_networks: requested_networks.clone(),
                    security_groups: security_groups.clone(),
                    numa_placement: None,
                    fault: None,
                    progress: 0,
                    state_gen: 0,
                    task_deadline: None,
                    created_at: Timestamp::from_micros(now.micros() + i),
                    updated_at: now,
                    launched_at: None,
                    terminated_at: None,
                    deleted_at: None,
                }
            })
            .collect()
    };
    let answer = |first: &Instance| {
        accepted(
            &base,
            first,
            s.return_reservation_id == Some(true),
            &disk_config,
            &security_groups,
            &admin_pass,
        )
    };
    // Nova creates as many as the quota allows between min and max: how
    // many that is comes from the project's use before one server is
    // built. The store checks again atomically; if concurrent creates took
    // the room meanwhile, the count is worked out again (a few times).
    let each = PerServer {
        cores: flavor.vcpus,
        ram: flavor.ram_mb,
    };
    let mut attempts = 0;
    let batch = loop {
        let used = store.compute_usage(&project).await?;
        let count = servers_that_fit(&limits, &used, each, min_count, max_count)?;
        let batch = make(count);
        // The answer is recorded for the request's Idempotency-Key in the
        // transaction that records the servers: a retry after this API
        // died finds them.
        let record = idempotency_key
            .as_ref()
            .and_then(|Extension(k)| k.record(&answer(&batch[0])));
        match store
            .instances_create_recorded(&batch, &request_id, &limits, record.as_ref())
            .await
        {
            Ok(()) => break batch,
            Err(Error::QuotaExceeded { .. }) if attempts < QUOTA_RACE_RETRIES => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(g) = &group
        && (g.policy == GroupPolicy::AntiAffinity || g.policy == GroupPolicy::Affinity)
    {
        tracing::debug!(group = %g.id, policy = g.policy.as_str(), "server joins a hard-policy group");
    }
    for inst in &batch {
        let msg = ConductorMsg::BuildInstance {
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
            // The workflow is recorded; a conductor's reconciler resumes it.
            tracing::warn!(instance = %inst.id, error = %e, "cannot reach the conductors now; the build will be resumed");
        }
    }
    Ok(answer(&batch[0]).map(axum::body::Body::from))
}

/// The 202 naming a create's first server (or, when asked, only its
/// reservation).
fn accepted(
    base: &str,
    first: &Instance,
    reservation_only: bool,
    disk_config: &str,
    security_groups: &[String],
    admin_pass: &str,
) -> axum::http::Response<Vec<u8>> {
    let id = first.id.to_string();
    let (body, location) = if reservation_only {
        (json!({"reservation_id": first.reservation_id}), None)
    } else {
        let body = json!({"server": {
            "id": id,
            "links": links(base, "servers", &id),
            "OS-DCF:diskConfig": disk_config,
            "security_groups": security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
            "adminPass": admin_pass,
        }});
        (body, Some(format!("{base}/compute/v2.1/servers/{id}")))
    };
    let mut resp = axum::http::Response::new(serde_json::to_vec(&body).unwrap_or_default());
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Turns the `networks` field into port requests, checking that every
/// network and port exists and may be used.
async fn resolve_networks(
    state: &AppState,
    ctx: &Ctx,
    networks: Option<Networks>,
) -> Result<Vec<RequestedNetwork>, ApiError> {
    let store = state.store();
    let scope = ctx.own_scope()?;
    let list = match networks {
        Some(Networks::Word(w)) if w == "none" => return Ok(Vec::new()),
        Some(Networks::Word(w)) if w == "auto" => None,
        Some(Networks::Word(w)) => {
            return Err(bad(
                "networks",
                format!("'{w}' is not a list, 'auto' or 'none'"),
            ));
        }
        Some(Networks::List(l)) => Some(l),
        None => None,
    };
    let Some(list) = list else {
        // Like Nova: use the one network the project can use, if exactly one.
        let nets = store.network_list(&scope, &BTreeMap::new()).await?;
        let nets: Vec<_> = nets.into_iter().filter(|n| !n.external).collect();
        return match nets.len() {
            0 => Ok(Vec::new()),
            1 => Ok(vec![RequestedNetwork::Network {
                network_id: nets[0].id,
                fixed_ip: None,
            }]),
            n => Err(ApiError::new(
                FaultKind::Conflict,
                format!(
                    "Multiple possible networks found ({n}): use a Network ID to be more specific."
                ),
            )),
        };
    };
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        match (&n.port, &n.uuid) {
            (Some(p), _) => {
                let port_id = PortId::parse(p).ok_or_else(|| {
                    bad(
                        &format!("networks[{i}].port"),
                        format!("'{p}' is not a port id"),
                    )
                })?;
                let port = store
                    .port_get(port_id, &scope)
                    .await
                    .map_err(|_| ApiError::bad_request(format!("Port {p} could not be found.")))?;
                if port.device_id.is_some() {
                    return Err(ApiError::new(
                        FaultKind::Conflict,
                        format!("Port {p} is still in use by another server."),
                    ));
                }
                out.push(RequestedNetwork::Port { port_id });
            }
            (None, Some(u)) => {
                let network_id = NetworkId::parse(u).ok_or_else(|| {
                    bad(
                        &format!("networks[{i}].uuid"),
                        format!("'{u}' is not a network id"),
                    )
                })?;
                let network = usable_network(state, &scope, network_id).await?;
                let fixed_ip = match &n.fixed_ip {
                    Some(ip) => {
                        let ip: Ipv4Addr = ip.parse().map_err(|_| {
                            bad(
                                &format!("networks[{i}].fixed_ip"),
                                format!("'{ip}' is not an IPv4 address"),
                            )
                        })?;
                        check_fixed_ip(state, ctx, &network, ip).await?;
                        Some(ip)
                    }
                    None => None,
                };
                out.push(RequestedNetwork::Network {
                    network_id,
                    fixed_ip,
                });
            }
            (None, None) => {
                return Err(bad(&format!("networks[{i}]"), "give a 'uuid' or a 'port'"));
            }
        }
    }
    Ok(out)
}

/// A network a new server may be on: one of the project's own, or a
/// shared one (Nova's "available networks"). Every project sees the
/// external networks, but another project's is not one of them: like a
/// network it cannot see, Nova's 400.
async fn usable_network(
    state: &AppState,
    scope: &Scope,
    id: NetworkId,
) -> Result<Network, ApiError> {
    let not_found = || ApiError::bad_request(format!("Network {id} could not be found."));
    let network = state
        .store()
        .network_get(id, scope)
        .await
        .map_err(|_| not_found())?;
    let own = scope.project() == Some(&network.project_id);
    if network.external && !network.shared && !own {
        return Err(not_found());
    }
    Ok(network)
}

/// A requested fixed IP gets the checks of a port create with that
/// address: choosing addresses is for the network's owner (403), and the
/// address must be a host address of one of the network's subnets, not
/// its gateway (400), and free (409).
async fn check_fixed_ip(
    state: &AppState,
    ctx: &Ctx,
    network: &Network,
    ip: Ipv4Addr,
) -> Result<(), ApiError> {
    port_checks::ensure_network_owner(ctx, network, true)?;
    let store = state.store();
    let subnets = store
        .subnet_list(
            &Scope::All,
            &[("network_id".to_owned(), network.id.to_string())]
                .into_iter()
                .collect(),
        )
        .await?;
    let subnet = subnets
        .iter()
        .find(|s| s.cidr.contains(ip))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Fixed IP {ip} is not in any subnet of network {}.",
                network.id
            ))
        })?;
    if let Some(what) = port_checks::reserved_address(subnet, ip) {
        return Err(ApiError::bad_request(format!(
            "Fixed IP {ip} is not a valid address for a server: it is {what} of subnet {} ({}).",
            subnet.id, subnet.cidr
        )));
    }
    let ports = store
        .port_list(&cloud_store::PortFilter {
            network_id: Some(network.id),
            ..cloud_store::PortFilter::all(Scope::All)
        })
        .await?;
    if ports
        .iter()
        .any(|p| p.fixed_ips.iter().any(|f| f.ip_address == ip))
    {
        return Err(ApiError::new(
            FaultKind::Conflict,
            format!(
                "Fixed IP address {ip} is already in use on network {}.",
                network.id
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sanitize_hostname;

    #[test]
    fn hostnames_follow_nova() {
        assert_eq!(sanitize_hostname("My VM_1"), "my-vm-1");
        assert_eq!(sanitize_hostname("--x--"), "x");
        assert_eq!(sanitize_hostname("???"), "server");
        assert_eq!(sanitize_hostname(&"a".repeat(80)).len(), 63);
    }
}
