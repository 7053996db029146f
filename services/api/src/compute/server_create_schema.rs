//! The parts of Nova 2.1's `POST /servers` schema that the request's
//! types (with `deny_unknown_fields`) cannot say by themselves: the keys a
//! `block_device_mapping_v2` entry may have, and the 2.1 fields this cloud
//! accepts only empty (volumes, file injection), which are refused with a
//! reason instead of being dropped silently.

use crate::compute::params;
use crate::error::{ApiError, ApiResult};
use serde_json::Value;

/// The keys of a `block_device_mapping_v2` entry at microversion 2.1
/// (`tag` comes with 2.32, `volume_type` with 2.67).
const BDM_V2_KEYS: &[&str] = &[
    "virtual_name",
    "volume_id",
    "snapshot_id",
    "volume_size",
    "device_name",
    "delete_on_termination",
    "no_device",
    "connection_info",
    "source_type",
    "uuid",
    "image_id",
    "destination_type",
    "guest_format",
    "device_type",
    "disk_bus",
    "boot_index",
];

/// Refuses a `block_device_mapping_v2` entry that is not an object of
/// Nova's keys.
pub fn check_bdm_v2_fields(entry: &Value) -> ApiResult<()> {
    let field = "server.block_device_mapping_v2";
    let obj = entry.as_object().ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field '{field}': {entry} is not an object."
        ))
    })?;
    params::only_known(obj, BDM_V2_KEYS, field)
}

/// Refuses what Nova 2.1 accepts but this cloud cannot do: volume
/// mappings in the legacy `block_device_mapping` and injected files in
/// `personality`; and tags, which come with 2.52. Empty lists are accepted
/// (clients send them: Ansible sends `"tags": []` on every create).
pub fn check_unserved(
    bdm_v1: Option<&[Value]>,
    personality: Option<&[Value]>,
    tags: Option<&[Value]>,
) -> ApiResult<()> {
    if tags.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for field 'server.tags': tags at create come with microversion \
             2.52; add them once the server exists (PUT /servers/{server_id}/tags/{tag}).",
        ));
    }
    if bdm_v1.is_some_and(|b| !b.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for field 'server.block_device_mapping': volumes are not supported; \
             boot from an image (imageRef).",
        ));
    }
    if personality.is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for field 'server.personality': file injection is not supported; \
             pass files in user_data (cloud-init) instead.",
        ));
    }
    Ok(())
}
