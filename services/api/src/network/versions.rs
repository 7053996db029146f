//! Network API discovery: the version list and the v2.0 resource list.
//!
//! Neutron's root lists only `v2.0` under the single key `versions`
//! (tempest iterates every value and every entry), and nothing here needs
//! a token.

use crate::extract::BaseUrl;
use axum::Json;
use serde_json::{Value, json};

/// The resources of v2.0, as `(name, collection)`.
const RESOURCES: &[(&str, &str)] = &[
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("security-group", "security-groups"),
    ("security-group-rule", "security-group-rules"),
];

/// The network root: the one API version, v2.0.
#[utoipa::path(get, path = "/", tag = "network",
    responses((status = 200, description = "Available network API versions")))]
pub async fn network_versions(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{base}/network/v2.0/")}],
    }]}))
}

/// The v2.0 document: the resource collections it serves.
#[utoipa::path(get, path = "/v2.0", tag = "network",
    responses((status = 200, description = "The v2.0 resources")))]
pub async fn network_v2(BaseUrl(base): BaseUrl) -> Json<Value> {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, collection)| {
            json!({
                "name": name,
                "collection": collection,
                "links": [{"rel": "self", "href": format!("{base}/network/v2.0/{collection}")}],
            })
        })
        .collect();
    Json(json!({ "resources": resources }))
}
