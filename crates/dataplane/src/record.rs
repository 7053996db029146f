//! What this host's data plane built, kept in `networks.json` in the
//! state directory: each network's segment (to tear down what is no
//! longer wanted, even after a crash) and its connection-tracking zone
//! (stable for the network's life on the host: renumbering a zone would
//! drop its live connections).

use anyhow::Context;
use cloud_driver::network::SegmentSpec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One network this host built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Its segment, as built.
    pub segment: SegmentSpec,
    /// Its conntrack zone (1..=65535).
    pub zone: u16,
}

/// The record of every network built and not yet removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// By network id.
    pub networks: BTreeMap<String, Recorded>,
}

impl Record {
    fn path(dir: &Path) -> PathBuf {
        dir.join("networks.json")
    }

    /// The record in `dir` (empty when there is none or it is unreadable:
    /// a host that cannot read it rebuilds what is wanted).
    pub fn load(dir: &Path) -> Record {
        std::fs::read(Self::path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes it atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Records `id` on `segment`, keeping its zone if it has one, else
    /// giving it the lowest free one.
    pub fn add(&mut self, id: &str, segment: &SegmentSpec) {
        if let Some(r) = self.networks.get_mut(id) {
            r.segment = segment.clone();
            return;
        }
        let used: BTreeSet<u16> = self.networks.values().map(|r| r.zone).collect();
        let zone = (1..=u16::MAX)
            .find(|z| !used.contains(z))
            .unwrap_or(u16::MAX);
        self.networks.insert(
            id.to_owned(),
            Recorded {
                segment: segment.clone(),
                zone,
            },
        );
    }

    /// Each network's zone.
    pub fn zones(&self) -> BTreeMap<String, u16> {
        self.networks
            .iter()
            .map(|(id, r)| (id.clone(), r.zone))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_stay_with_their_network_and_freed_ones_are_reused() {
        let seg = SegmentSpec::Vxlan { vni: 1 };
        let mut r = Record::default();
        r.add("b", &seg);
        r.add("c", &seg);
        // A network whose id sorts first does not renumber the others.
        r.add("a", &seg);
        assert_eq!(r.zones()["b"], 1);
        assert_eq!(r.zones()["c"], 2);
        assert_eq!(r.zones()["a"], 3);
        r.networks.remove("b");
        r.add("d", &seg);
        assert_eq!(r.zones()["d"], 1);
        let dir = tempfile::tempdir().unwrap();
        r.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()), r);
    }
}
