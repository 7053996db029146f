//! What the server being scheduled needs: flavor, image properties, zone,
//! server group and the hosts to avoid.

use cloud_model::ServerGroupId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Server group policies (the model's type: the API, the store and the
/// scheduler speak of the same four policies).
pub use cloud_model::instance::GroupPolicy;

/// The server group of the request, with where its other members already
/// run, so the group filters and weighers need no store access.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// The group.
    pub id: ServerGroupId,
    /// Its policy.
    pub policy: GroupPolicy,
    /// Hosts of the other members, one entry per member (a host appears
    /// as often as it holds members, which the soft weighers count).
    pub member_hosts: Vec<String>,
}

/// What one server (or each server of a multi-create) needs. Sent over the
/// bus, so it is plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestSpec {
    /// vCPUs (flavor).
    pub vcpus: i64,
    /// Memory, MiB (flavor).
    pub memory_mb: i64,
    /// Disk, GiB (flavor root + ephemeral; 0 when booted from a volume).
    pub disk_gb: i64,
    /// Flavor extra specs (`hw:numa_nodes`, `hw:cpu_policy`, ...).
    pub extra_specs: BTreeMap<String, String>,
    /// Image properties (`architecture`, `img_hv_type`, `hw_*`, ...).
    pub image_properties: BTreeMap<String, String>,
    /// Requested availability zone (`zone`, `zone:host` or `:host`);
    /// `None` for any zone.
    pub availability_zone: Option<String>,
    /// The server group, if the server is in one.
    pub group: Option<GroupSpec>,
    /// Hosts that already failed this build (the retry filter skips them).
    pub ignore_hosts: Vec<String>,
    /// Servers created by this request ([`crate::select_all`] places each
    /// in turn).
    pub num_instances: u32,
    /// Seed of the random pick among the best `host_subset_size` hosts.
    /// The caller chooses it (e.g. from the instance uuid) so replaying a
    /// decision gives the same answer.
    pub seed: u64,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            vcpus: 0,
            memory_mb: 0,
            disk_gb: 0,
            extra_specs: BTreeMap::new(),
            image_properties: BTreeMap::new(),
            availability_zone: None,
            group: None,
            ignore_hosts: Vec::new(),
            num_instances: 1,
            seed: 0,
        }
    }
}

impl RequestSpec {
    /// A `hw:` setting: the flavor's extra spec `hw:x`, else the image
    /// property `hw_x` (the flavor wins, as the operator's choice).
    pub fn hw_setting(&self, flavor_key: &str) -> Option<&str> {
        if let Some(v) = self.extra_specs.get(flavor_key) {
            return Some(v.as_str());
        }
        let rest = flavor_key.strip_prefix("hw:")?;
        self.image_properties
            .iter()
            .find(|(k, _)| k.strip_prefix("hw_") == Some(rest))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_setting_wins_over_image_property() {
        let mut s = RequestSpec::default();
        s.image_properties
            .insert("hw_numa_nodes".into(), "2".into());
        assert_eq!(s.hw_setting("hw:numa_nodes"), Some("2"));
        s.extra_specs.insert("hw:numa_nodes".into(), "1".into());
        assert_eq!(s.hw_setting("hw:numa_nodes"), Some("1"));
        assert_eq!(s.hw_setting("hw:cpu_policy"), None);
        assert_eq!(s.hw_setting("no-prefix"), None);
    }

    #[test]
    fn round_trips_through_json_with_defaults() {
        let s: RequestSpec = serde_json::from_str(r#"{"vcpus": 2, "memory_mb": 512}"#).unwrap();
        assert_eq!(s.num_instances, 1);
        assert_eq!(s.vcpus, 2);
        let mut g = s.clone();
        g.group = Some(GroupSpec {
            id: ServerGroupId::new(),
            policy: GroupPolicy::SoftAntiAffinity,
            member_hosts: vec!["a".into()],
        });
        let json = serde_json::to_string(&g).unwrap();
        assert!(json.contains("soft-anti-affinity"), "{json}");
        assert_eq!(serde_json::from_str::<RequestSpec>(&json).unwrap(), g);
    }
}
