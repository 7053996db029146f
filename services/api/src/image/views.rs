//! The JSON shape of an image, as Glance shows it.
//!
//! Core attributes first, then the free-form properties at the top level
//! (that is where Glance puts them; clients read `architecture`,
//! `hw_disk_bus`, ... from there), then the relative links.

use cloud_model::image::Image;
use serde_json::{Map, Value, json};

/// The `<image>` document.
pub fn image(img: &Image) -> Value {
    let id = img.id.to_string();
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("id", json!(id));
    put("name", json!(img.name));
    put("status", json!(img.status));
    put("disk_format", json!(img.disk_format));
    put("container_format", json!(img.container_format));
    put("visibility", json!(img.visibility));
    put("size", json!(img.size));
    put("virtual_size", json!(img.virtual_size));
    put("checksum", json!(img.checksum));
    put("os_hash_algo", json!(img.os_hash_algo));
    put("os_hash_value", json!(img.os_hash_value));
    put("min_disk", json!(img.min_disk));
    put("min_ram", json!(img.min_ram));
    put("protected", json!(img.protected));
    put("os_hidden", json!(img.os_hidden));
    put("owner", json!(img.owner.as_str()));
    put("created_at", json!(img.created_at.iso_seconds()));
    put("updated_at", json!(img.updated_at.iso_seconds()));
    put("tags", json!(img.tags));
    for (k, v) in &img.properties {
        // Validation keeps property names apart from core attributes; the
        // check here only guarantees a core attribute is never shadowed.
        m.entry(k.clone()).or_insert_with(|| json!(v));
    }
    m.insert("self".into(), json!(format!("/v2/images/{id}")));
    m.insert("file".into(), json!(format!("/v2/images/{id}/file")));
    m.insert("schema".into(), json!("/v2/schemas/image"));
    Value::Object(m)
}
