//! The driver's configuration: the `[driver.libvirt]` part of a compute
//! agent's TOML file.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How the libvirt driver runs guests on this host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LibvirtConfig {
    /// libvirt connection URI.
    pub uri: String,
    /// `kvm`, `qemu` (TCG) or `auto` (probe whether a KVM guest really runs).
    pub virt_type: VirtTypeSetting,
    /// Per-instance directories: disk overlay, config drive, console log.
    pub instances_path: PathBuf,
    /// Base images downloaded from the image API, shared by instances.
    pub image_cache_path: PathBuf,
    /// Host networking state (dnsmasq pid/hosts files per bridge) and the
    /// cached virt-type probe.
    pub state_path: PathBuf,
    /// Cached images unused for this long are removed by
    /// [`crate::LibvirtDriver::cleanup_unused_images`], which the compute
    /// agent runs periodically (`Driver::periodic_maintenance`).
    pub image_cache_max_unused_age_secs: u64,
    /// How long a guest gets to shut down on ACPI before it is forced off
    /// (Nova's `shutdown_timeout`), also for soft reboots.
    pub shutdown_timeout_secs: u64,
    /// The guest CPU model mode; `None` picks per virt type (host-model on
    /// KVM, QEMU's default model under TCG, where host-model is slow).
    pub cpu_mode: Option<CpuMode>,
    /// Memory kept for the host, subtracted from what is reported.
    pub reserved_host_memory_mb: u64,
    /// Host CPUs kept for the host, subtracted from what is reported.
    pub reserved_host_cpus: u32,
    /// Root disk space kept for the host, subtracted from what is reported.
    pub reserved_host_disk_gb: u64,
    /// Serial consoles (`[driver.serial_console]`).
    pub serial_console: crate::serial::SerialConsoleConfig,
}

impl Default for LibvirtConfig {
    fn default() -> Self {
        LibvirtConfig {
            uri: "qemu:///system".into(),
            virt_type: VirtTypeSetting::Auto,
            instances_path: "/var/lib/cloud/instances".into(),
            image_cache_path: "/var/lib/cloud/images".into(),
            state_path: "/var/lib/cloud/libvirt".into(),
            image_cache_max_unused_age_secs: 24 * 3600,
            shutdown_timeout_secs: 60,
            cpu_mode: None,
            reserved_host_memory_mb: 512,
            reserved_host_cpus: 0,
            reserved_host_disk_gb: 0,
            serial_console: Default::default(),
        }
    }
}

impl LibvirtConfig {
    /// The clean-shutdown timeout as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// The configured virtualization type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtTypeSetting {
    /// Use KVM when a KVM guest really runs here, TCG otherwise.
    Auto,
    /// Always KVM.
    Kvm,
    /// Always TCG (software emulation).
    Qemu,
}

/// The virtualization type actually used (the domain `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtType {
    /// Hardware-assisted.
    Kvm,
    /// TCG.
    Qemu,
}

impl VirtType {
    /// The domain XML `type` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            VirtType::Kvm => "kvm",
            VirtType::Qemu => "qemu",
        }
    }

    /// The name `os-hypervisors` shows, as Nova reports it.
    pub fn hypervisor_type(self) -> &'static str {
        match self {
            VirtType::Kvm => "KVM",
            VirtType::Qemu => "QEMU",
        }
    }
}

/// The guest CPU model mode (Nova's `[libvirt] cpu_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuMode {
    /// QEMU's default model; only the topology is set.
    None,
    /// A model close to the host CPU (live-migratable).
    HostModel,
    /// The host CPU as it is (KVM only).
    HostPassthrough,
}

impl CpuMode {
    /// The `<cpu mode=...>` value, `None` when no mode is written.
    pub fn xml_mode(self) -> Option<&'static str> {
        match self {
            CpuMode::None => None,
            CpuMode::HostModel => Some("host-model"),
            CpuMode::HostPassthrough => Some("host-passthrough"),
        }
    }

    /// The mode used when none is configured: host-model on KVM; under TCG
    /// QEMU's default model, which it emulates fastest.
    pub fn default_for(virt: VirtType) -> Self {
        match virt {
            VirtType::Kvm => CpuMode::HostModel,
            VirtType::Qemu => CpuMode::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config_and_rejects_unknown_keys() {
        let cfg: LibvirtConfig = toml::from_str(
            r#"
            uri = "qemu:///system"
            virt_type = "qemu"
            instances_path = "/srv/instances"
            image_cache_path = "/srv/images"
            state_path = "/srv/state"
            image_cache_max_unused_age_secs = 60
            shutdown_timeout_secs = 10
            cpu_mode = "host-passthrough"
            reserved_host_memory_mb = 1024
            reserved_host_cpus = 1
            reserved_host_disk_gb = 5
            "#,
        )
        .unwrap();
        assert_eq!(cfg.virt_type, VirtTypeSetting::Qemu);
        assert_eq!(cfg.cpu_mode, Some(CpuMode::HostPassthrough));
        assert_eq!(cfg.shutdown_timeout(), Duration::from_secs(10));

        let defaults: LibvirtConfig = toml::from_str("").unwrap();
        assert_eq!(defaults, LibvirtConfig::default());

        let err = toml::from_str::<LibvirtConfig>("virt_typ = \"kvm\"").unwrap_err();
        assert!(err.to_string().contains("virt_typ"), "{err}");
    }
}
