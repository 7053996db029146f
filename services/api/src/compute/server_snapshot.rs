//! The `createImage` server action: the server's root disk captured and
//! uploaded as a new image of the project.
//!
//! As in Nova, the API creates the image record first (`queued`, owned by
//! the server's project, private, with `image_type=snapshot`,
//! `instance_uuid`, `base_image_ref`, the source image's formats and
//! `min_ram`, the flavor's disk as `min_disk`, and the user's metadata),
//! then moves the server into task_state `image_snapshot` with a deadline,
//! records the `createImage` instance action and casts
//! [`ComputeMsg::Snapshot`] to the host. The server's status does not
//! change (ACTIVE, SHUTOFF, ...). The host uploads the disk through the
//! image API (the image goes `saving`, then `active`); the conductor
//! clears the task and finishes the action, deleting the image when the
//! snapshot failed. At our microversion (2.1) the answer is a 202 with an
//! empty body and a `Location` header naming the image (2.45 moved it
//! into the body).

use crate::auth::{Action, Ctx};
use crate::compute::server_lock::refuse_if_locked;
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::image::fields::{self, Attr};
use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_bus::compute_queue;
use cloud_model::image::Image;
use cloud_model::instance::{Instance, TaskState, VmState};
use cloud_model::{Error, ImageId, Timestamp};
use cloud_rpc::ComputeMsg;
use cloud_store::Scope;
use serde_json::Value;
use std::collections::BTreeMap;

/// How long a snapshot may take before the reconciler gives up on it
/// (capture and upload of a whole root disk: longer than a power action).
const SNAPSHOT_DEADLINE_SECS: i64 = 1800;

/// The vm_states a snapshot may start from (Nova's `check_instance_state`
/// for `snapshot`), with no task running.
const FROM: [VmState; 4] = [
    VmState::Active,
    VmState::Stopped,
    VmState::Paused,
    VmState::Suspended,
];

/// Base image properties a snapshot does not inherit (Nova's
/// `non_inheritable_image_properties`, and what the snapshot sets itself).
const NOT_INHERITED: [&str; 6] = [
    "cache_in_nova",
    "bittorrent",
    "image_type",
    "instance_uuid",
    "base_image_ref",
    "user_id",
];

/// Whether a snapshot inherits its base image's property `key`: not the
/// ones above, nor signatures and what a client recorded about the file
/// it uploaded (`owner_specified.*`), which do not describe the snapshot.
fn inherited(key: &str) -> bool {
    !NOT_INHERITED.contains(&key)
        && !key.starts_with("img_signature")
        && !key.starts_with("owner_specified.")
}

/// What the request asks for.
struct Request {
    name: String,
    metadata: BTreeMap<String, String>,
}

/// Runs `createImage` on server `id`; `base` is the URL clients reach us at.
pub async fn create_image(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    args: &Value,
    base: &str,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let req = parse(args)?;
    let inst = load(state, ctx, id).await?;
    let host = check_state(&inst)?;
    refuse_if_locked(state, ctx, &inst).await?;
    let image = snapshot_record(state, ctx, &inst, req).await?;
    state.store().image_create(&image).await?;
    if let Err(e) = begin(state, ctx, &inst, request_id).await {
        // Lost a race with another action: the image would never fill.
        let _ = state.store().image_delete(image.id).await;
        return Err(e);
    }
    cast(state, &inst, &host, image.id, request_id).await?;
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{base}/image/v2/images/{}", image.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// Reads `{"name": ..., "metadata": {...}}` (Nova's schema: the name is
/// required, metadata values are strings).
fn parse(args: &Value) -> ApiResult<Request> {
    let obj = args.as_object().ok_or_else(|| {
        ApiError::bad_request("Invalid input for field 'createImage': it must be an object.")
    })?;
    if let Some(key) = obj.keys().find(|k| *k != "name" && *k != "metadata") {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'createImage': additional property '{key}' is not \
             allowed (name and metadata are)."
        )));
    }
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => s.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field 'createImage.name': {other} is not a non-empty string \
                 of at most 255 characters."
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "Invalid input for field 'createImage': 'name' is a required property.",
            ));
        }
    };
    let mut metadata = BTreeMap::new();
    match obj.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                metadata.insert(k.clone(), metadata_value(k, v)?);
            }
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field 'createImage.metadata': {other} is not an object."
            )));
        }
    }
    Ok(Request { name, metadata })
}

/// One metadata item: a free-form image property (not a core or
/// reserved image attribute), its value a string.
fn metadata_value(key: &str, value: &Value) -> ApiResult<String> {
    if fields::classify(key) != Attr::Property {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'createImage.metadata': '{key}' is an image attribute, \
             not a property a snapshot's metadata may set."
        )));
    }
    if value.as_str().is_some_and(|s| s.chars().count() > 255) {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'createImage.metadata.{key}': longer than 255 characters."
        )));
    }
    fields::property(key, value)
}

/// The server's host, if its state allows a snapshot (a 409 naming the
/// state otherwise). The store checks again when the task begins.
fn check_state(inst: &Instance) -> ApiResult<String> {
    // Nova names the vm_state first when it is the one that blocks.
    let blocking = match (inst.task_state, &inst.host) {
        _ if !FROM.contains(&inst.vm_state) => format!("vm_state {}", inst.vm_state.as_str()),
        (Some(t), _) => format!("task_state {}", t.as_str()),
        (None, None) => format!("vm_state {} on no host", inst.vm_state.as_str()),
        (None, Some(host)) => return Ok(host.clone()),
    };
    Err(ApiError::new(
        FaultKind::Conflict,
        format!(
            "Cannot 'createImage' instance {} while it is in {blocking}.",
            inst.id
        ),
    ))
}

/// The new image record: queued, private, owned by the server's project,
/// described after its base image.
async fn snapshot_record(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    req: Request,
) -> ApiResult<Image> {
    let image = snapshot_image(state, ctx, inst, req.name, req.metadata).await?;
    fields::check_property_count(&image)?;
    Ok(image)
}

/// A queued, private image of the server's project named `name`, to
/// receive a capture of `inst`'s root disk: described after its base image
/// (formats, inherited properties, min_disk/min_ram) with Nova's snapshot
/// properties and `metadata`. Shelve makes its snapshot with it too.
pub(crate) async fn snapshot_image(
    state: &AppState,
    ctx: &Ctx,
    inst: &Instance,
    name: String,
    metadata: BTreeMap<String, String>,
) -> ApiResult<Image> {
    // The base image may have been deleted since the server booted.
    let base = state
        .store()
        .image_get(inst.image_id, &Scope::All)
        .await
        .ok();
    let mut properties: BTreeMap<String, String> = base
        .as_ref()
        .map(|b| {
            b.properties
                .iter()
                .filter(|(k, _)| inherited(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    properties.insert("image_type".into(), "snapshot".into());
    properties.insert("instance_uuid".into(), inst.id.to_string());
    properties.insert("base_image_ref".into(), inst.image_id.to_string());
    properties.insert("user_id".into(), ctx.user_id().to_string());
    properties.extend(metadata);
    let now = Timestamp::now();
    Ok(Image {
        id: ImageId::new(),
        owner: inst.project_id.clone(),
        name: Some(name),
        status: "queued".to_owned(),
        disk_format: Some(
            base.as_ref()
                .and_then(|b| b.disk_format.clone())
                .unwrap_or_else(|| "qcow2".to_owned()),
        ),
        container_format: Some(
            base.as_ref()
                .and_then(|b| b.container_format.clone())
                .unwrap_or_else(|| "bare".to_owned()),
        ),
        visibility: "private".to_owned(),
        size: None,
        virtual_size: None,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        min_disk: inst
            .flavor
            .disk_gb
            .max(base.as_ref().map_or(0, |b| b.min_disk)),
        min_ram: base.as_ref().map_or(0, |b| b.min_ram),
        protected: false,
        os_hidden: false,
        properties,
        tags: Vec::new(),
        created_at: now,
        updated_at: now,
    })
}

/// The task (with its deadline) and the instance action.
async fn begin(state: &AppState, ctx: &Ctx, inst: &Instance, request_id: &str) -> ApiResult<()> {
    state
        .store()
        .instance_begin_task(
            inst.id,
            &ctx.read_scope()?,
            "createImage",
            &FROM,
            &[],
            TaskState::ImageSnapshot,
            Timestamp::now().plus_seconds(SNAPSHOT_DEADLINE_SECS),
        )
        .await?;
    state
        .store()
        .action_start(
            inst.id,
            request_id,
            "createImage",
            &inst.project_id,
            ctx.user_id(),
        )
        .await?;
    Ok(())
}

/// Asks the host to capture and upload; a host that cannot be reached now
/// is left to the task's deadline.
async fn cast(
    state: &AppState,
    inst: &Instance,
    host: &str,
    image_id: ImageId,
    request_id: &str,
) -> ApiResult<()> {
    let msg = ComputeMsg::Snapshot {
        instance_id: inst.id,
        image_id: image_id.to_string(),
    };
    let env = cloud_rpc::encode(&msg, request_id).map_err(Error::from)?;
    if let Err(e) = state.bus().cast(&compute_queue(host), env).await {
        tracing::warn!(instance = %inst.id, %host, error = %e, "cannot reach the host now");
    }
    Ok(())
}
