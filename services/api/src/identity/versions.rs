//! Identity version discovery.

use crate::extract::BaseUrl;
use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

fn v3(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json"
        }]
    })
}

/// The identity root: 300 Multiple Choices listing v3 (under `values`, as
/// Keystone nests it).
#[utoipa::path(get, path = "/", tag = "identity",
    responses((status = 300, description = "Available identity API versions")))]
pub async fn identity_versions(BaseUrl(base): BaseUrl) -> (StatusCode, Json<Value>) {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [v3(&base)]}})),
    )
}

/// The v3 version document (where clients start discovery).
#[utoipa::path(get, path = "/v3", tag = "identity",
    responses((status = 200, description = "The identity v3 version document")))]
pub async fn identity_v3(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"version": v3(&base)}))
}
