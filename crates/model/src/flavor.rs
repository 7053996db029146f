//! Flavors: the sizes servers are booted with.

use crate::{FlavorId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A flavor. Servers keep a snapshot of it, so deleting or changing a
/// flavor never changes running servers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// Admin-chosen or generated id.
    pub id: FlavorId,
    /// Unique name (`m1.small`).
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: i64,
    /// Memory in MiB.
    pub ram_mb: i64,
    /// Root disk in GiB (0: the image's size).
    pub disk_gb: i64,
    /// Swap in MiB.
    pub swap_mb: i64,
    /// Ephemeral disk in GiB.
    pub ephemeral_gb: i64,
    /// Network bandwidth factor (informational).
    pub rxtx_factor: f64,
    /// Visible to every project, or only to those given access.
    pub is_public: bool,
    /// Disabled flavors cannot be booted.
    pub disabled: bool,
    /// Free text.
    pub description: Option<String>,
    /// Scheduling and hardware hints (`hw:numa_nodes`, `hw:cpu_policy`...).
    pub extra_specs: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// The fields an admin gives when creating a flavor.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFlavor {
    /// Id, or generated when `None`.
    pub id: Option<FlavorId>,
    /// Unique name.
    pub name: String,
    /// Virtual CPUs (>= 1).
    pub vcpus: i64,
    /// Memory in MiB (>= 1).
    pub ram_mb: i64,
    /// Root disk in GiB (>= 0).
    pub disk_gb: i64,
    /// Swap in MiB (>= 0).
    pub swap_mb: i64,
    /// Ephemeral disk in GiB (>= 0).
    pub ephemeral_gb: i64,
    /// Bandwidth factor (> 0).
    pub rxtx_factor: f64,
    /// Public or access-listed.
    pub is_public: bool,
    /// Free text.
    pub description: Option<String>,
}
