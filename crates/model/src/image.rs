//! Glance images.

use crate::{ImageId, ProjectId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Disk formats Glance accepts.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];

/// Container formats Glance accepts.
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

/// Visibility values.
pub const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];

/// An image record. The bytes live in the image file store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Image id.
    pub id: ImageId,
    /// Owning project.
    pub owner: ProjectId,
    /// Optional name (not unique).
    pub name: Option<String>,
    /// `queued` -> `saving` -> `active` (or `killed`, `deleted`).
    pub status: String,
    /// `qcow2`, `raw`, ...
    pub disk_format: Option<String>,
    /// `bare`, ...
    pub container_format: Option<String>,
    /// `public`, `private`, `shared` or `community`.
    pub visibility: String,
    /// Bytes stored, once uploaded.
    pub size: Option<i64>,
    /// Size of the disk the image describes, when known.
    pub virtual_size: Option<i64>,
    /// MD5 hex of the data.
    pub checksum: Option<String>,
    /// `sha512` once uploaded.
    pub os_hash_algo: Option<String>,
    /// SHA-512 hex of the data.
    pub os_hash_value: Option<String>,
    /// Minimum disk in GiB to boot it.
    pub min_disk: i64,
    /// Minimum RAM in MiB to boot it.
    pub min_ram: i64,
    /// Protected images cannot be deleted.
    pub protected: bool,
    /// Hidden from default listings.
    pub os_hidden: bool,
    /// Free-form string properties (`architecture`, `kernel_id`, ...).
    pub properties: BTreeMap<String, String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}
