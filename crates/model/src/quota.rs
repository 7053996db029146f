//! Quotas: per-project limits on resources.

use serde::{Deserialize, Serialize};

/// Resources with a quota, with Nova's names.
pub const QUOTA_RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "floating_ips",
    "fixed_ips",
    "metadata_items",
    "key_pairs",
    "security_groups",
    "security_group_rules",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "server_groups",
    "server_group_members",
];

/// The default image storage per project: 100 GiB, room for a few dozen
/// cloud images or a handful of large ones, while one project can no
/// longer fill the image store alone.
pub const DEFAULT_IMAGE_SIZE_TOTAL: i64 = 100 << 30;

/// Default limits for a project without overrides. `-1` is unlimited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaDefaults {
    /// Servers.
    pub instances: i64,
    /// vCPUs over all servers.
    pub cores: i64,
    /// RAM in MiB over all servers.
    pub ram: i64,
    /// Keypairs per user.
    pub key_pairs: i64,
    /// Metadata items per server.
    pub metadata_items: i64,
    /// Security groups per project.
    pub security_groups: i64,
    /// Rules per project.
    pub security_group_rules: i64,
    /// Server groups per project.
    pub server_groups: i64,
    /// Members per server group.
    pub server_group_members: i64,
    /// Bytes of image data per project (Glance's `image_size_total`,
    /// enforced while an upload streams in). Not a Nova quota: it is not
    /// in [`QUOTA_RESOURCES`]; a project's own limit is a `quota_limits`
    /// row of this name.
    pub image_size_total: i64,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        // Nova's defaults.
        Self {
            instances: 10,
            cores: 20,
            ram: 51200,
            key_pairs: 100,
            metadata_items: 128,
            security_groups: 10,
            security_group_rules: 100,
            server_groups: 10,
            server_group_members: 10,
            image_size_total: DEFAULT_IMAGE_SIZE_TOTAL,
        }
    }
}

impl QuotaDefaults {
    /// The default limit of a resource by its Nova name.
    pub fn get(&self, resource: &str) -> i64 {
        match resource {
            "instances" => self.instances,
            "cores" => self.cores,
            "ram" => self.ram,
            "key_pairs" => self.key_pairs,
            "metadata_items" => self.metadata_items,
            "security_groups" => self.security_groups,
            "security_group_rules" => self.security_group_rules,
            "server_groups" => self.server_groups,
            "server_group_members" => self.server_group_members,
            "image_size_total" => self.image_size_total,
            "floating_ips" | "fixed_ips" => -1,
            "injected_files" => 5,
            "injected_file_content_bytes" => 10240,
            "injected_file_path_bytes" => 255,
            _ => -1,
        }
    }
}
