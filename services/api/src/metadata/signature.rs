//! Which instance a metadata request is for, proven by the proxy's
//! signature.
//!
//! The host data plane's proxy knows the guest from its (network, source
//! IP) and signs the instance id with the secret it shares with us
//! ([`cloud_driver::metadata::sign_instance_id`]). Only that signature is
//! trusted: `X-Tenant-ID` and `X-Forwarded-For` are read for logs at most,
//! and what is served comes from the instance record the signed id names.

use super::MetadataError;
use axum::http::HeaderMap;
use cloud_driver::metadata::{
    FORWARDED_FOR_HEADER, INSTANCE_ID_HEADER, SIGNATURE_HEADER, verify_instance_id_signature,
};

/// The instance id of a request whose signature verifies under `secret`,
/// as sent (not yet parsed: an id that is no UUID is simply not found).
/// A missing header, a header that is not text or a wrong signature is
/// `Forbidden`; the check takes the same time wherever a forged signature
/// goes wrong.
pub fn verified_instance_id(headers: &HeaderMap, secret: &str) -> Result<String, MetadataError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(signature)) = (text(INSTANCE_ID_HEADER), text(SIGNATURE_HEADER)) else {
        return Err(MetadataError::Forbidden(
            "the request carries no signed instance id",
        ));
    };
    if !verify_instance_id_signature(secret, id, signature) {
        tracing::warn!(
            instance_id = %id,
            forwarded_for = text(FORWARDED_FOR_HEADER).unwrap_or(""),
            "metadata request with an invalid instance id signature"
        );
        return Err(MetadataError::Forbidden("invalid instance id signature"));
    }
    Ok(id.to_owned())
}
