//! The `[driver]` settings of a host whose guests are network namespaces.

use serde::Deserialize;
use std::path::PathBuf;

/// How a netns host presents itself and where it keeps its guests' state.
///
/// The resources are what the host reports to the scheduler, not what it
/// has: a namespace guest uses next to no CPU or memory, so a small machine
/// can pretend to be many large hosts (as the fake driver's `FakeConfig`
/// does), while the guests' networking is real.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetnsConfig {
    /// Logical CPUs reported.
    pub vcpus: u32,
    /// Memory reported, in MiB.
    pub memory_mb: u64,
    /// Disk reported, in GiB.
    pub disk_gb: u64,
    /// Where each guest's record, console log, DHCP script, pid files and
    /// DNS servers live (one directory per guest). Must survive agent
    /// restarts: `list` and `info` come from it.
    pub state_dir: PathBuf,
    /// Guest namespaces are named `<prefix><instance id>`. Namespace names
    /// are global to the machine, so several clouds or test runs on one
    /// machine give each a different prefix to tell their guests apart.
    pub guest_prefix: String,
    /// How long each NIC tries DHCP before its console marker says
    /// `IP=none` (the client keeps trying afterwards). 0 disables DHCP, as
    /// `testguest.dhcp_timeout=0` does for the QEMU test guest.
    pub dhcp_timeout_secs: u32,
}

impl Default for NetnsConfig {
    fn default() -> Self {
        NetnsConfig {
            vcpus: 16,
            memory_mb: 32768,
            disk_gb: 1000,
            state_dir: "/var/lib/cloud/netns".into(),
            guest_prefix: "vm-".into(),
            dhcp_timeout_secs: 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_not_given_and_unknown_keys_are_refused() {
        let c: NetnsConfig = toml::from_str("state_dir = \"/tmp/x\"\nvcpus = 4").unwrap();
        assert_eq!(c.vcpus, 4);
        assert_eq!(c.state_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.guest_prefix, "vm-");
        assert_eq!(c.dhcp_timeout_secs, 10);
        assert!(toml::from_str::<NetnsConfig>("vcpu = 4").is_err());
    }
}
