//! The host data plane, built with the kernel's own tools.
//!
//! Per network with ports on the host:
//! * a Linux bridge (`brq<net>`) in the host's namespace, with no address:
//!   guests' taps, the segment's uplink (a VXLAN device, a VLAN
//!   subinterface or a physical interface) and one end of a veth into
//! * the network's own namespace (`qdhcp-<net>`), which holds each
//!   subnet's gateway address, runs dnsmasq for DHCP, and has the metadata
//!   proxy's socket on 169.254.169.254:80. No tenant address ever sits in
//!   the host's namespace, so overlapping CIDRs of different projects
//!   coexist and guests cannot reach the host.
//!
//! Security groups and anti-spoofing are nftables rules in two tables the
//! agent owns (`bridge` and `inet` families), replaced in one transaction
//! per change. Why it is built this way: docs/adr/0007-host-data-plane.md.

pub mod cmd;
pub mod config;
pub mod names;

pub use config::{DataPlaneConfig, MetadataProxyConfig};

use cloud_driver::HostNetwork;

/// One host's data plane.
pub struct DataPlane {
    config: DataPlaneConfig,
}

impl DataPlane {
    /// A data plane wired as `config` says; nothing is touched until
    /// [`DataPlane::apply`].
    pub fn new(config: DataPlaneConfig) -> DataPlane {
        DataPlane { config }
    }

    /// Its settings.
    pub fn config(&self) -> &DataPlaneConfig {
        &self.config
    }

    /// The namespace that plays the host (`None`: ours).
    pub fn host_namespace(&self) -> Option<&str> {
        self.config.host_namespace.as_deref()
    }

    /// Runs `ip args...` in the host's namespace.
    pub async fn ip<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        cmd::run_in(self.host_namespace(), "ip", args).await
    }

    /// Brings the host in line with `desired` (see the crate docs).
    pub async fn apply(&self, desired: &HostNetwork) -> anyhow::Result<()> {
        let _ = desired;
        anyhow::bail!("the kernel data plane is not wired yet")
    }
}
