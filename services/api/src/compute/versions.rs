//! Compute version discovery: the unversioned root and the `v2` / `v2.1`
//! version documents.
//!
//! Clients (keystoneauth, tempest) read these before anything else and
//! need no token for them. Tempest wants `v2.0` listed first and every
//! `self` link followable; the SDK reads `version` / `min_version` of v2.1
//! to negotiate the microversion, so they come from the constants in
//! [`super::microversion`].

use crate::compute::microversion::{MAX_VERSION, MIN_VERSION};
use crate::compute::views;
use crate::extract::BaseUrl;
use axum::Json;
use serde_json::{Value, json};

/// The legacy v2.0 API: listed because clients expect it, never served.
fn v20(base: &str) -> Value {
    json!({
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}/v2/", views::compute_root(base))}],
    })
}

/// The v2.1 API with its microversion range.
fn v21(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_VERSION.to_string(),
        "min_version": MIN_VERSION.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}/", views::v21_root(base))}],
    })
}

/// A list entry turned into a version document: its links gain
/// `describedby`, and it gets `media-types`.
fn document(mut entry: Value, media_version: &str) -> Value {
    if let Some(links) = entry["links"].as_array_mut() {
        links.push(json!({
            "rel": "describedby",
            "type": "text/html",
            "href": "http://docs.openstack.org/"
        }));
    }
    entry["media-types"] = json!([{
        "base": "application/json",
        "type": format!("application/vnd.openstack.compute+json;version={media_version}")
    }]);
    json!({ "version": entry })
}

/// The compute root: every API version, v2.0 first.
#[utoipa::path(get, path = "/", tag = "compute",
    responses((status = 200, description = "The compute API versions")))]
pub async fn compute_versions(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"versions": [v20(&base), v21(&base)]}))
}

/// The v2.0 version document (tempest follows the `self` link of the list).
#[utoipa::path(get, path = "/v2", tag = "compute",
    responses((status = 200, description = "The v2.0 version document")))]
pub async fn compute_v2(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(document(v20(&base), "2"))
}

/// The v2.1 version document: where the catalog points and where the SDK
/// reads the supported microversions.
#[utoipa::path(get, path = "/v2.1", tag = "compute",
    responses((status = 200, description = "The v2.1 version document")))]
pub async fn compute_v21(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(document(v21(&base), "2.1"))
}
