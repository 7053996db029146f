//! Image API version discovery.
//!
//! Glance's root answers 300 with every v2 minor version; clients
//! (keystoneauth) pick the highest `CURRENT` one and use its `self` link as
//! the endpoint. The minor versions are informational: nothing is
//! negotiated per request.

use crate::extract::BaseUrl;
use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The newest minor version we list (Glance 2.16 = the 2024.x series).
const NEWEST_MINOR: u32 = 16;

fn entry(base: &str, minor: u32) -> Value {
    json!({
        "id": format!("v2.{minor}"),
        "status": if minor == NEWEST_MINOR { "CURRENT" } else { "SUPPORTED" },
        "links": [{"rel": "self", "href": format!("{base}/image/v2/")}],
    })
}

/// The image root: 300 Multiple Choices listing v2.16 (current) down to v2.0.
#[utoipa::path(get, path = "/", tag = "image",
    responses((status = 300, description = "Available image API versions")))]
pub async fn image_versions(BaseUrl(base): BaseUrl) -> (StatusCode, Json<Value>) {
    let versions: Vec<Value> = (0..=NEWEST_MINOR).rev().map(|m| entry(&base, m)).collect();
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": versions})),
    )
}

/// The v2 version document, for clients configured with a versioned URL.
#[utoipa::path(get, path = "/v2", tag = "image",
    responses((status = 200, description = "The current v2 version")))]
pub async fn image_v2(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"version": entry(&base, NEWEST_MINOR)}))
}
