//! The `rebuild` server action: a fresh root disk from a (new) image; the
//! server keeps its id, host, ports and addresses.
//!
//! Everything a user can get wrong is checked before anything is written
//! (Nova 2.1's body schema, the image, the name, the metadata, the lock);
//! then one transaction records the new image, name and metadata, starts
//! the `rebuilding` task (status REBUILD) and the `rebuild` action. The
//! answer is Nova's: 202 with the server's view and its `adminPass`
//! (given, or generated), which is never stored. The conductor takes it
//! from there ([`ConductorMsg::RebuildInstance`]).

use crate::auth::{Action, Ctx};
use crate::compute::microversion::{MAX_VERSION, MIN_VERSION};
use crate::compute::params;
use crate::compute::server_create::random_password;
use crate::compute::server_lock::refuse_if_locked;
use crate::compute::server_metadata::check_items;
use crate::compute::server_views;
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_bus::CONDUCTOR_QUEUE;
use cloud_model::image::Image;
use cloud_model::instance::{FlavorSnapshot, Instance};
use cloud_model::{Error, ImageId, Timestamp};
use cloud_rpc::ConductorMsg;
use cloud_store::{RebuildChange, Scope, rebuild_refusal};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How long the API gives a rebuild before the conductor takes it up: a
/// rebuild the conductor never heard of is sent again by its reconciler
/// after this (the conductor sets the host's own deadline when it casts).
const REBUILD_DEADLINE_SECS: i64 = 300;

/// The body keys Nova 2.1 accepts in `rebuild`.
const KEYS_2_1: &[&str] = &[
    "imageRef",
    "name",
    "metadata",
    "adminPass",
    "accessIPv4",
    "accessIPv6",
    "OS-DCF:diskConfig",
    "preserve_ephemeral",
    "personality",
];

/// Keys of later microversions, with the one that brings them: all above
/// our [`MAX_VERSION`], so every request may be refused them with a 400
/// that says so, as Nova's schema refuses them below their version.
const LATER_KEYS: &[(&str, &str)] = &[
    ("description", "2.19"),
    ("key_name", "2.54"),
    ("user_data", "2.57"),
    ("trusted_image_certificates", "2.63"),
    ("hostname", "2.90"),
];

/// A validated rebuild request.
struct RebuildRequest {
    change: RebuildChange,
    admin_pass: String,
    disk_config: Option<String>,
}

/// Runs `rebuild` on server `id`; `base` is the URL links start with.
pub async fn rebuild(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
    base: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(state, ctx, id).await?;
    let req = parse(state, args)?;
    checked_image(state, ctx, &inst, req.change.image_id).await?;
    refuse_if_not_rebuildable(&inst)?;
    refuse_if_locked(state, ctx, &inst).await?;
    let inst = state
        .store()
        .instance_begin_rebuild(
            inst.id,
            &ctx.read_scope()?,
            &req.change,
            Timestamp::now().plus_seconds(REBUILD_DEADLINE_SECS),
            request_id,
            ctx.user_id(),
        )
        .await?;
    hand_to_conductor(state, &inst, request_id).await;
    answer(state, &inst, &req, base).await
}

/// Checks the body against Nova 2.1's `rebuild` schema and this cloud's
/// limits.
fn parse(state: &AppState, args: &Value) -> ApiResult<RebuildRequest> {
    let obj = params::object(args, "rebuild")?;
    if let Some((key, version)) = LATER_KEYS.iter().find(|(k, _)| obj.contains_key(*k)) {
        return Err(params::invalid(
            &format!("rebuild.{key}"),
            format!(
                "'{key}' requires microversion {version} or later; this API serves \
                 microversions {MIN_VERSION} to {MAX_VERSION}."
            ),
        ));
    }
    params::only_known(obj, KEYS_2_1, "rebuild")?;
    let image_ref = obj
        .get("imageRef")
        .ok_or_else(|| params::invalid("rebuild", "'imageRef' is a required property."))?;
    let image_ref = params::string(image_ref, "rebuild.imageRef")?;
    let image_id =
        ImageId::parse(image_ref.rsplit('/').next().unwrap_or(image_ref)).ok_or_else(|| {
            params::invalid(
                "rebuild.imageRef",
                format!("'{image_ref}' is not an image id."),
            )
        })?;
    let name = optional_string(obj, "name")?;
    if let Some(n) = &name {
        params::name(n, "rebuild.name")?;
    }
    let metadata = match obj.get("metadata") {
        None => None,
        Some(m) => Some(metadata(state, m)?),
    };
    let access_ipv4 = optional_string(obj, "accessIPv4")?
        .map(|a| access_ip::<std::net::Ipv4Addr>(a, "accessIPv4"))
        .transpose()?;
    let access_ipv6 = optional_string(obj, "accessIPv6")?
        .map(|a| access_ip::<std::net::Ipv6Addr>(a, "accessIPv6"))
        .transpose()?;
    let disk_config = optional_string(obj, "OS-DCF:diskConfig")?;
    if disk_config
        .as_deref()
        .is_some_and(|d| d != "AUTO" && d != "MANUAL")
    {
        return Err(params::invalid(
            "rebuild.OS-DCF:diskConfig",
            "must be AUTO or MANUAL.",
        ));
    }
    if let Some(p) = obj.get("preserve_ephemeral")
        && params::boolean(p, "rebuild.preserve_ephemeral")?
    {
        return Err(params::invalid(
            "rebuild.preserve_ephemeral",
            "preserving the ephemeral disk is not supported: a rebuild recreates every disk.",
        ));
    }
    if let Some(p) = obj.get("personality") {
        let files = p.as_array().ok_or_else(|| {
            params::invalid(
                "rebuild.personality",
                format!("{p} is not of type 'array'."),
            )
        })?;
        if !files.is_empty() {
            return Err(params::invalid(
                "rebuild.personality",
                "file injection is not supported; pass files in user_data (cloud-init) instead.",
            ));
        }
    }
    let admin_pass = match optional_string(obj, "adminPass")? {
        Some(p) => p,
        None => random_password(),
    };
    Ok(RebuildRequest {
        change: RebuildChange {
            image_id,
            name,
            metadata,
            access_ipv4,
            access_ipv6,
        },
        admin_pass,
        disk_config,
    })
}

/// `obj[key]` as a string if present (`null` counts as absent).
fn optional_string(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(
            params::string(v, &format!("rebuild.{key}"))?.to_owned(),
        )),
    }
}

/// The new metadata, with the rules of server create and the metadata
/// API (keys 1-255 characters, values up to 255, the item quota).
fn metadata(state: &AppState, value: &Value) -> ApiResult<BTreeMap<String, String>> {
    let obj = params::object(value, "rebuild.metadata")?;
    let mut items = BTreeMap::new();
    for (k, v) in obj {
        let v = v.as_str().ok_or_else(|| {
            params::invalid(
                "rebuild.metadata",
                format!("the value of '{k}' is not a string."),
            )
        })?;
        items.insert(k.clone(), v.to_owned());
    }
    check_items(state, &items)?;
    Ok(items)
}

/// An access address (empty clears it).
fn access_ip<A: std::str::FromStr + ToString>(raw: String, field: &str) -> ApiResult<String> {
    if raw.is_empty() {
        return Ok(raw);
    }
    raw.parse::<A>().map(|a| a.to_string()).map_err(|_| {
        params::invalid(
            &format!("rebuild.{field}"),
            format!("'{raw}' is not an address of that family."),
        )
    })
}

/// The image exists, the caller may use it for this server (the
/// server's project sees it; admins see every image), it is active and
/// it fits the server's flavor: a 400 otherwise, as Nova's.
async fn checked_image(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    id: ImageId,
) -> ApiResult<Image> {
    let scope = if ctx.is_admin() {
        Scope::All
    } else {
        Scope::Project(inst.project_id.clone())
    };
    let image = match state.store().image_get(id, &scope).await {
        Ok(image) => image,
        Err(Error::NotFound { .. }) => {
            return Err(ApiError::bad_request(format!(
                "Image {id} could not be found."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if image.status != "active" {
        return Err(ApiError::bad_request(format!(
            "Image {id} is not active (status {}): upload its data first.",
            image.status
        )));
    }
    fits_flavor(&image, &inst.flavor)?;
    Ok(image)
}

/// Nova's `FlavorMemoryTooSmall` / `FlavorDiskTooSmall`.
fn fits_flavor(image: &Image, flavor: &FlavorSnapshot) -> ApiResult<()> {
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
    Ok(())
}

/// A 409 naming the state when the server, as loaded, cannot be rebuilt
/// (the store checks again atomically; this gives the usual message
/// before the lock is looked at, as Nova checks states first).
fn refuse_if_not_rebuildable(inst: &Instance) -> ApiResult<()> {
    match rebuild_refusal(inst) {
        None => Ok(()),
        Some(why) => Err(ApiError::new(FaultKind::Conflict, why)),
    }
}

/// Casts the rebuild to the conductors; if none can be reached now, the
/// task's deadline brings the reconciler to send it.
async fn hand_to_conductor(state: &AppState, inst: &Instance, request_id: &str) {
    let msg = ConductorMsg::RebuildInstance {
        instance_id: inst.id,
    };
    let sent = match cloud_rpc::encode(&msg, request_id) {
        Ok(env) => state
            .bus()
            .cast(CONDUCTOR_QUEUE, env)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        tracing::warn!(instance = %inst.id, error = %e, "cannot reach the conductors now; the rebuild will be resumed");
    }
}

/// Nova's answer: 202, the server (status REBUILD) and its `adminPass`.
async fn answer(
    state: &AppState,
    inst: &Instance,
    req: &RebuildRequest,
    base: &str,
) -> ApiResult<Response> {
    let nics = state.store().server_nics(&[inst.id]).await?;
    let mut server = server_views::basic(
        inst,
        nics.get(&inst.id).map(Vec::as_slice).unwrap_or(&[]),
        base,
    );
    server["adminPass"] = json!(req.admin_pass);
    if let Some(d) = &req.disk_config {
        server["OS-DCF:diskConfig"] = json!(d);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "server": server }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::LATER_KEYS;
    use crate::compute::microversion::{MAX_VERSION, Microversion};

    /// Raising the served microversion past one of these means serving
    /// that key in a rebuild, not refusing it any more.
    #[test]
    fn the_refused_keys_are_above_the_served_microversions() {
        for (key, version) in LATER_KEYS {
            let v = Microversion::parse(version).expect("a version");
            assert!(v > MAX_VERSION, "{key} comes with {version}: serve it");
        }
    }
}
