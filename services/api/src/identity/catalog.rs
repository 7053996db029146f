//! The service catalog placed in tokens.
//!
//! Compute's URL is versioned (`/compute/v2.1`), image and network URLs
//! are not (clients append `v2` / `v2.0` themselves); each endpoint has both
//! `region` and `region_id` because different clients read different keys.

use serde_json::{Value, json};

/// `(type, name, path)` of each service we serve.
const SERVICES: &[(&str, &str, &str)] = &[
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
];

/// Stable ids for services and endpoints (derived from the type, so every
/// replica shows the same catalog).
fn stable_id(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// The catalog for clients reaching us at `base`.
pub fn catalog(base: &str, region: &str) -> Value {
    Value::Array(
        SERVICES
            .iter()
            .map(|(ty, name, path)| {
                json!({
                    "type": ty,
                    "name": name,
                    "id": stable_id(&format!("service:{ty}")),
                    "endpoints": [{
                        "id": stable_id(&format!("endpoint:{ty}:public")),
                        "interface": "public",
                        "region_id": region,
                        "region": region,
                        "url": format!("{base}{path}"),
                    }]
                })
            })
            .collect(),
    )
}
