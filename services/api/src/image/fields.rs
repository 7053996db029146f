//! What each top-level key of an image document is, and how its value is
//! checked. Create and PATCH share these rules, so a value accepted by one
//! is accepted by the other.
//!
//! Keys fall in four groups, as in Glance: core attributes the user may set
//! (`name`, `disk_format`, ...), read-only attributes the server computes
//! (`status`, `size`, `checksum`, ...; setting one is a 403), reserved
//! names (`location`, `deleted`, `os_glance_*`; also 403), and everything
//! else: free-form string properties shown at the top level.

use crate::error::{ApiError, ApiResult, FaultKind};
use cloud_model::image::{CONTAINER_FORMATS, DISK_FORMATS, Image, VISIBILITIES};
use serde_json::Value;

/// Attributes only the server sets. `id` and `owner` may be given when an
/// image is created (handled there) but never changed afterwards.
const READ_ONLY: &[&str] = &[
    "id",
    "owner",
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "direct_url",
    "locations",
    "stores",
    "self",
    "file",
    "schema",
];

/// Names Glance keeps for itself.
const RESERVED: &[&str] = &["location", "deleted", "deleted_at"];

/// Glance's namespace for server-side properties.
const RESERVED_PREFIX: &str = "os_glance_";

/// Most tags one image may carry (Glance's `image_tag_quota`).
pub const MAX_TAGS: usize = 128;

/// Most free-form properties one image may carry (Glance's
/// `image_property_quota`).
pub const MAX_PROPERTIES: usize = 128;

/// Longest property value accepted.
const MAX_PROPERTY_VALUE: usize = 65_535;

/// A core attribute the user may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Core {
    /// `name`: string or null, at most 255 characters.
    Name,
    /// `disk_format`: one of [`DISK_FORMATS`] or null.
    DiskFormat,
    /// `container_format`: one of [`CONTAINER_FORMATS`] or null.
    ContainerFormat,
    /// `visibility`: one of [`VISIBILITIES`].
    Visibility,
    /// `protected`: boolean.
    Protected,
    /// `os_hidden`: boolean.
    OsHidden,
    /// `min_disk`: GiB, non-negative integer.
    MinDisk,
    /// `min_ram`: MiB, non-negative integer.
    MinRam,
    /// `tags`: list of strings.
    Tags,
}

/// How a top-level key is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    /// A settable core attribute.
    Core(Core),
    /// Computed by the server.
    ReadOnly,
    /// Reserved by Glance.
    Reserved,
    /// A free-form string property.
    Property,
}

/// Classifies a top-level key.
pub fn classify(key: &str) -> Attr {
    let core = match key {
        "name" => Core::Name,
        "disk_format" => Core::DiskFormat,
        "container_format" => Core::ContainerFormat,
        "visibility" => Core::Visibility,
        "protected" => Core::Protected,
        "os_hidden" => Core::OsHidden,
        "min_disk" => Core::MinDisk,
        "min_ram" => Core::MinRam,
        "tags" => Core::Tags,
        _ if READ_ONLY.contains(&key) => return Attr::ReadOnly,
        _ if RESERVED.contains(&key) || key.starts_with(RESERVED_PREFIX) => {
            return Attr::Reserved;
        }
        _ => return Attr::Property,
    };
    Attr::Core(core)
}

/// The 403 for setting a read-only or reserved attribute (Glance's words).
pub fn forbidden(key: &str, attr: Attr) -> ApiError {
    let what = if attr == Attr::Reserved {
        "reserved"
    } else {
        "read-only"
    };
    ApiError::new(
        FaultKind::Forbidden,
        format!("Attribute '{key}' is {what}."),
    )
}

fn invalid(key: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid value for '{key}': {problem}."))
}

fn one_of(key: &str, value: &Value, allowed: &[&str], nullable: bool) -> ApiResult<Option<String>> {
    match value {
        Value::Null if nullable => Ok(None),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        other => Err(invalid(
            key,
            format!(
                "{other} is not one of {}{}",
                allowed.join(", "),
                if nullable { " (or null)" } else { "" }
            ),
        )),
    }
}

fn boolean(key: &str, value: &Value) -> ApiResult<bool> {
    value
        .as_bool()
        .ok_or_else(|| invalid(key, format!("{value} is not a boolean")))
}

fn size(key: &str, value: &Value) -> ApiResult<i64> {
    value
        .as_i64()
        .filter(|n| (0..=i64::from(i32::MAX)).contains(n))
        .ok_or_else(|| {
            invalid(
                key,
                format!("{value} is not an integer between 0 and 2147483647"),
            )
        })
}

/// Checks a tag list: strings of 1 to 255 characters, at most
/// [`MAX_TAGS`]; duplicates are dropped (tags are a set in Glance).
pub fn tags(key: &str, value: &Value) -> ApiResult<Vec<String>> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(key, format!("{value} is not a list of strings")))?;
    let mut out: Vec<String> = Vec::new();
    for t in items {
        let t = t
            .as_str()
            .ok_or_else(|| invalid(key, format!("tag {t} is not a string")))?;
        if t.is_empty() || t.chars().count() > 255 {
            return Err(invalid(key, "tags must be 1 to 255 characters long"));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::new(
            FaultKind::OverQuota,
            format!(
                "Maximum number of tags exceeded: {} given, the limit is {MAX_TAGS}.",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Sets core attribute `core` (named `key` in the request) of `image` to
/// `value`, after checking it.
pub fn set_core(image: &mut Image, core: Core, key: &str, value: &Value) -> ApiResult<()> {
    match core {
        Core::Name => {
            image.name = match value {
                Value::Null => None,
                Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
                Value::String(_) => return Err(invalid(key, "longer than 255 characters")),
                other => return Err(invalid(key, format!("{other} is not a string"))),
            }
        }
        Core::DiskFormat => image.disk_format = one_of(key, value, DISK_FORMATS, true)?,
        Core::ContainerFormat => {
            image.container_format = one_of(key, value, CONTAINER_FORMATS, true)?;
        }
        Core::Visibility => {
            image.visibility = one_of(key, value, VISIBILITIES, false)?.unwrap_or_default();
        }
        Core::Protected => image.protected = boolean(key, value)?,
        Core::OsHidden => image.os_hidden = boolean(key, value)?,
        Core::MinDisk => image.min_disk = size(key, value)?,
        Core::MinRam => image.min_ram = size(key, value)?,
        Core::Tags => image.tags = tags(key, value)?,
    }
    Ok(())
}

/// Checks a free-form property: a name of 1 to 255 characters and a
/// string value (Glance's schema: `additionalProperties: string`).
pub fn property(key: &str, value: &Value) -> ApiResult<String> {
    if key.is_empty() || key.chars().count() > 255 {
        return Err(ApiError::bad_request(format!(
            "Invalid property name '{key}': it must be 1 to 255 characters long."
        )));
    }
    match value {
        Value::String(s) if s.len() <= MAX_PROPERTY_VALUE => Ok(s.clone()),
        Value::String(_) => Err(invalid(
            key,
            format!("longer than {MAX_PROPERTY_VALUE} bytes"),
        )),
        other => Err(invalid(
            key,
            format!("{other} is not a string (extra image properties are strings)"),
        )),
    }
}

/// Refuses an image with more than [`MAX_PROPERTIES`] properties.
pub fn check_property_count(image: &Image) -> ApiResult<()> {
    if image.properties.len() > MAX_PROPERTIES {
        return Err(ApiError::new(
            FaultKind::OverQuota,
            format!(
                "Maximum number of image properties exceeded: {} given, the limit is \
                 {MAX_PROPERTIES}.",
                image.properties.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_like_glance() {
        assert_eq!(classify("name"), Attr::Core(Core::Name));
        assert_eq!(classify("status"), Attr::ReadOnly);
        assert_eq!(classify("os_glance_import_task"), Attr::Reserved);
        assert_eq!(classify("deleted"), Attr::Reserved);
        assert_eq!(classify("owner_specified.openstack.md5"), Attr::Property);
    }

    #[test]
    fn tags_are_a_set_of_strings() {
        let t = tags("tags", &serde_json::json!(["a", "b", "a"])).unwrap();
        assert_eq!(t, ["a", "b"]);
        assert!(tags("tags", &serde_json::json!("a")).is_err());
        assert!(tags("tags", &serde_json::json!([""])).is_err());
    }

    #[test]
    fn formats_name_the_allowed_values() {
        let e = one_of(
            "disk_format",
            &serde_json::json!("bogus"),
            DISK_FORMATS,
            true,
        )
        .unwrap_err();
        assert!(e.0.message.contains("disk_format"), "{}", e.0.message);
        assert!(e.0.message.contains("qcow2"), "{}", e.0.message);
    }
}
