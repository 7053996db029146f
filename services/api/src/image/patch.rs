//! `PATCH /v2/images/{id}`: JSON-patch updates in Glance's two dialects.
//!
//! * `application/openstack-images-v2.1-json-patch` (RFC 6902 style, what
//!   openstacksdk sends): `[{"op": "replace", "path": "/name", "value": "x"}]`.
//! * `application/openstack-images-v2.0-json-patch` (the older draft, what
//!   tempest sends): `[{"replace": "/name", "value": "x"}]`.
//!
//! Only `add`, `replace` and `remove` exist, and only on top-level members.
//! All operations are checked and applied to a copy first; the record is
//! written once, so a bad operation anywhere in the list changes nothing.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::parse_json;
use crate::image::fields::{self, Attr};
use crate::image::images::check_visibility_change;
use crate::image::{ensure_owner, load, views};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use cloud_model::image::Image;
use serde_json::{Map, Value};

/// The media type of the RFC 6902 dialect.
pub const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";

/// The media type of the older dialect.
pub const PATCH_V20: &str = "application/openstack-images-v2.0-json-patch";

/// Which patch dialect a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `{"op": ..., "path": ...}`.
    V21,
    /// `{"<op>": "<path>"}`.
    V20,
}

/// A patch operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add a member (a property; on an existing member see [`apply`]).
    Add,
    /// Replace an existing member.
    Replace,
    /// Remove a property.
    Remove,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        match s {
            "add" => Some(Op::Add),
            "replace" => Some(Op::Replace),
            "remove" => Some(Op::Remove),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Remove => "remove",
        }
    }
}

/// One checked operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// What to do.
    pub op: Op,
    /// The top-level member it applies to (JSON pointer decoded).
    pub key: String,
    /// The value (for `add` and `replace`).
    pub value: Value,
}

/// The dialect named by the request's `Content-Type`; anything else is a
/// 415 that names the accepted types.
pub fn dialect(headers: &HeaderMap) -> ApiResult<Dialect> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        PATCH_V21 => Ok(Dialect::V21),
        PATCH_V20 => Ok(Dialect::V20),
        _ => Err(ApiError::new(
            FaultKind::UnsupportedMediaType,
            format!(
                "Unsupported Content-Type '{ct}' for an image update: use {PATCH_V21} or \
                 {PATCH_V20}."
            ),
        )),
    }
}

/// Decodes a JSON pointer to the one top-level member it names, with
/// Glance's checks (`~1` is `/`, `~0` is `~`).
fn member(pointer: &str) -> ApiResult<String> {
    let bad = |why: &str| ApiError::bad_request(format!("Invalid path '{pointer}': {why}."));
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| bad("it must start with '/'"))?;
    if rest.is_empty() {
        return Err(bad("it names no attribute"));
    }
    if rest.contains('/') {
        return Err(bad(
            "only top-level attributes can be changed (for tags, replace '/tags' with the \
             whole list)",
        ));
    }
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(bad("'~' must be followed by 0 or 1"));
        }
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Parses the body into checked operations.
pub fn parse(dialect: Dialect, body: &[u8]) -> ApiResult<Vec<Change>> {
    let doc: Value = parse_json(body)?;
    let Value::Array(items) = doc else {
        return Err(ApiError::bad_request(
            "Invalid request body: a JSON patch must be a list of operations.",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let obj = item.as_object().ok_or_else(|| {
                ApiError::bad_request(format!("Invalid operation #{i}: {item} is not an object."))
            })?;
            parse_one(dialect, i, obj)
        })
        .collect()
}

fn parse_one(dialect: Dialect, i: usize, obj: &Map<String, Value>) -> ApiResult<Change> {
    let bad = |why: String| ApiError::bad_request(format!("Invalid operation #{i}: {why}"));
    let (op, path) = match dialect {
        Dialect::V21 => {
            let op = obj
                .get("op")
                .ok_or_else(|| bad("it has no 'op' member.".into()))?;
            let op_name = op
                .as_str()
                .ok_or_else(|| bad(format!("'op' must be a string, not {op}.")))?;
            let op = Op::parse(op_name).ok_or_else(|| {
                bad(format!(
                    "operation '{op_name}' is not supported: use add, replace or remove."
                ))
            })?;
            let path = obj
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("it needs a string 'path' member.".into()))?;
            (op, path)
        }
        Dialect::V20 => {
            let found: Vec<Op> = ["add", "replace", "remove"]
                .into_iter()
                .filter(|k| obj.contains_key(*k))
                .filter_map(Op::parse)
                .collect();
            let [op] = found[..] else {
                return Err(bad(
                    "it must contain exactly one member named \"add\", \"remove\" or \"replace\"."
                        .into(),
                ));
            };
            let path = obj
                .get(op.name())
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("the '{}' member must be a path string.", op.name())))?;
            (op, path)
        }
    };
    let key = member(path)?;
    let value = match op {
        Op::Remove => Value::Null,
        Op::Add | Op::Replace => obj.get("value").cloned().ok_or_else(|| {
            bad(format!(
                "operation '{}' requires a member named 'value'.",
                op.name()
            ))
        })?,
    };
    Ok(Change { op, key, value })
}

fn conflict(message: String) -> ApiError {
    ApiError::new(FaultKind::Conflict, message)
}

/// Applies one change to `image`, with Glance's rules: read-only and
/// reserved attributes are 403; core attributes cannot be removed (403);
/// `replace`/`remove` of a missing property and, in the v2.0 dialect,
/// `add` of an existing member are 409; in the v2.1 dialect `add` of an
/// existing member replaces it (RFC 6902).
pub fn apply(dialect: Dialect, image: &mut Image, change: &Change) -> ApiResult<()> {
    let key = change.key.as_str();
    match fields::classify(key) {
        attr @ (Attr::ReadOnly | Attr::Reserved) => Err(fields::forbidden(key, attr)),
        Attr::Core(core) => match change.op {
            Op::Remove => Err(ApiError::new(
                FaultKind::Forbidden,
                format!("Property {key} may not be removed: it is a core image attribute."),
            )),
            Op::Add if dialect == Dialect::V20 => {
                Err(conflict(format!("Property {key} already present.")))
            }
            Op::Add | Op::Replace => {
                if matches!(
                    core,
                    fields::Core::DiskFormat | fields::Core::ContainerFormat
                ) && image.status != "queued"
                {
                    let before = if core == fields::Core::DiskFormat {
                        image.disk_format.clone()
                    } else {
                        image.container_format.clone()
                    };
                    let mut probe = image.clone();
                    fields::set_core(&mut probe, core, key, &change.value)?;
                    let after = if core == fields::Core::DiskFormat {
                        probe.disk_format
                    } else {
                        probe.container_format
                    };
                    if after != before {
                        return Err(ApiError::new(
                            FaultKind::Forbidden,
                            format!(
                                "Attribute {key} can only be replaced for a queued image (this \
                                 one is {}).",
                                image.status
                            ),
                        ));
                    }
                }
                fields::set_core(image, core, key, &change.value)
            }
        },
        Attr::Property => {
            let exists = image.properties.contains_key(key);
            match change.op {
                Op::Add if exists && dialect == Dialect::V20 => {
                    Err(conflict(format!("Property {key} already present.")))
                }
                Op::Replace | Op::Remove if !exists => {
                    Err(conflict(format!("Property {key} does not exist.")))
                }
                Op::Remove => {
                    image.properties.remove(key);
                    Ok(())
                }
                Op::Add | Op::Replace => {
                    let v = fields::property(key, &change.value)?;
                    image.properties.insert(key.to_owned(), v);
                    Ok(())
                }
            }
        }
    }
}

/// Updates an image with a JSON patch (owner or admin).
#[utoipa::path(patch, path = "/v2/images/{image_id}", tag = "image",
    params(("image_id" = String, Path, description = "Image id")),
    request_body(content = Object, content_type = "application/openstack-images-v2.1-json-patch",
        description = "JSON patch (also accepted as application/openstack-images-v2.0-json-patch)"),
    responses((status = 200, description = "The updated image"),
        (status = 400, description = "Invalid operation or value"),
        (status = 403, description = "Read-only attribute, or not the owner"),
        (status = 404, description = "Not found"),
        (status = 409, description = "Property missing or already present"),
        (status = 415, description = "Not a JSON-patch media type")))]
pub async fn image_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ImageWrite)?;
    let image = load(&state, &ctx, &id).await?;
    ensure_owner(&ctx, &image)?;
    let dialect = dialect(&headers)?;
    let changes = parse(dialect, &body)?;
    // The operations apply to the record as it is when the write happens
    // (read under its row lock), not to the copy loaded above, so that
    // concurrent patches of different members all land.
    let stored = state
        .store()
        .image_modify(image.id, &ctx.read_scope()?, |current| {
            ensure_owner(&ctx, current)?;
            let mut updated = current.clone();
            for change in &changes {
                apply(dialect, &mut updated, change)?;
            }
            fields::check_property_count(&updated)?;
            check_visibility_change(&ctx, Some(&current.visibility), &updated)?;
            Ok::<_, ApiError>((updated != *current).then_some(updated))
        })
        .await?;
    Ok(Json(views::image(&stored)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Image {
        let now = cloud_model::Timestamp::now();
        Image {
            id: cloud_model::ImageId::new(),
            owner: cloud_model::ProjectId::new(),
            name: Some("a".into()),
            status: "active".into(),
            disk_format: Some("qcow2".into()),
            container_format: Some("bare".into()),
            visibility: "shared".into(),
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_disk: 0,
            min_ram: 0,
            protected: false,
            os_hidden: false,
            properties: [("k".to_owned(), "v".to_owned())].into(),
            tags: vec![],
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn both_dialects_parse_to_the_same_change() {
        let a = parse(
            Dialect::V21,
            br#"[{"op": "replace", "path": "/name", "value": "x"}]"#,
        )
        .unwrap();
        let b = parse(Dialect::V20, br#"[{"replace": "/name", "value": "x"}]"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].key, "name");
    }

    #[test]
    fn pointers_are_decoded_and_checked() {
        assert_eq!(member("/a~1b~0c").unwrap(), "a/b~c");
        assert!(member("name").is_err());
        assert!(member("/a/b").is_err());
        assert!(member("/a~2").is_err());
    }

    #[test]
    fn glance_rules_apply() {
        let mut img = sample();
        let ch = |op, key: &str, value| Change {
            op,
            key: key.into(),
            value,
        };
        // Read-only and core removal are 403.
        let e = apply(
            Dialect::V21,
            &mut img,
            &ch(Op::Replace, "status", json!("x")),
        )
        .unwrap_err();
        assert_eq!(e.0.kind, FaultKind::Forbidden);
        let e = apply(Dialect::V21, &mut img, &ch(Op::Remove, "name", Value::Null)).unwrap_err();
        assert_eq!(e.0.kind, FaultKind::Forbidden);
        // Missing property is 409; v2.1 add replaces, v2.0 add conflicts.
        let e = apply(Dialect::V21, &mut img, &ch(Op::Remove, "nope", Value::Null)).unwrap_err();
        assert_eq!(e.0.kind, FaultKind::Conflict);
        apply(Dialect::V21, &mut img, &ch(Op::Add, "k", json!("w"))).unwrap();
        assert_eq!(img.properties["k"], "w");
        let e = apply(Dialect::V20, &mut img, &ch(Op::Add, "k", json!("z"))).unwrap_err();
        assert_eq!(e.0.kind, FaultKind::Conflict);
        // Formats are frozen once data exists.
        let e = apply(
            Dialect::V21,
            &mut img,
            &ch(Op::Replace, "disk_format", json!("raw")),
        )
        .unwrap_err();
        assert_eq!(e.0.kind, FaultKind::Forbidden);
        apply(
            Dialect::V21,
            &mut img,
            &ch(Op::Replace, "disk_format", json!("qcow2")),
        )
        .unwrap();
    }
}
