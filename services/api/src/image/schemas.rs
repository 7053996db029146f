//! `/v2/schemas/image[s]`: the JSON schemas Glance publishes.
//!
//! python-glanceclient reads them to tell core attributes from free-form
//! properties and to validate input before sending it; other clients ignore
//! them. They describe exactly what [`super::views::image`] renders.

use crate::auth::{Action, Ctx};
use crate::error::ApiResult;
use axum::Json;
use cloud_model::image::{CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES};
use serde_json::{Value, json};

/// Statuses an image can be in (the ones we produce are a subset).
pub const STATUSES: &[&str] = &[
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
];

fn nullable_enum(values: &[&str]) -> Value {
    let mut all: Vec<Value> = vec![Value::Null];
    all.extend(values.iter().map(|v| json!(v)));
    json!({"type": ["null", "string"], "enum": all})
}

fn read_only(ty: Value, description: &str) -> Value {
    json!({"type": ty, "readOnly": true, "description": description})
}

/// The schema of one image document.
pub fn image_schema_doc() -> Value {
    json!({
        "name": "image",
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image",
                   "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "maxLength": 255,
                     "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "enum": STATUSES,
                       "description": "Status of the image"},
            "visibility": {"type": "string", "enum": VISIBILITIES,
                           "description": "Scope of image accessibility"},
            "protected": {"type": "boolean",
                          "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean",
                          "description": "If true, image will not appear in default image list response."},
            "checksum": read_only(json!(["null", "string"]), "md5 hash of image contents."),
            "os_hash_algo": read_only(json!(["null", "string"]), "Algorithm to calculate the os_hash_value"),
            "os_hash_value": read_only(json!(["null", "string"]), "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"),
            "owner": {"type": ["null", "string"], "maxLength": 255,
                      "description": "Owner of the image"},
            "size": read_only(json!(["null", "integer"]), "Size of image file in bytes"),
            "virtual_size": read_only(json!(["null", "integer"]), "Virtual size of image in bytes"),
            "container_format": nullable_enum(CONTAINER_FORMATS),
            "disk_format": nullable_enum(DISK_FORMATS),
            "created_at": read_only(json!("string"), "Date and time of image registration"),
            "updated_at": read_only(json!("string"), "Date and time of the last image modification"),
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                     "description": "List of strings related to the image"},
            "min_ram": {"type": "integer", "minimum": 0,
                        "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "minimum": 0,
                         "description": "Amount of disk space (in GB) required to boot image."},
            "self": read_only(json!("string"), "An image self url"),
            "file": read_only(json!("string"), "An image file url"),
            "schema": read_only(json!("string"), "An image schema url"),
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// The schema of one image.
#[utoipa::path(get, path = "/v2/schemas/image", tag = "image",
    responses((status = 200, description = "JSON schema of an image")))]
pub async fn image_schema(ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ImageRead)?;
    Ok(Json(image_schema_doc()))
}

/// The schema of an image listing.
#[utoipa::path(get, path = "/v2/schemas/images", tag = "image",
    responses((status = 200, description = "JSON schema of an image listing")))]
pub async fn images_schema(ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ImageRead)?;
    Ok(Json(json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema_doc()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })))
}
