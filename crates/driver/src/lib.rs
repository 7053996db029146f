//! The hypervisor driver interface.
//!
//! A compute agent drives its host through one [`Driver`], used as
//! `Arc<dyn Driver>`: the fake driver (in memory, for simulation and tests)
//! or the libvirt driver (real QEMU/KVM guests). The trait sits on the
//! control path (libvirt calls, image downloads, `qemu-img`), so it is
//! async. Every method is idempotent: repeating it after it succeeded is
//! `Ok`, because bus messages are delivered at least once.

mod error;
pub mod metadata;
pub mod network;
mod spec;

pub use error::{DriverError, Op};
pub use network::{HostNetwork, NetworkApplied};
pub use spec::*;

use async_trait::async_trait;
use cloud_model::InstanceId;
use std::time::Duration;

/// What a compute agent needs from a hypervisor backend.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// `"fake"` or `"libvirt"`: shown in `os-hypervisors` and logs.
    fn kind(&self) -> &'static str;

    /// The host's capacity and topology, reported to the scheduler as
    /// inventory at start and whenever it changes.
    async fn host_resources(&self) -> Result<HostResources, DriverError>;

    /// Creates the VM described by `spec` and starts it. If the VM already
    /// exists (a redelivered message), it is left as it is and `Ok` is
    /// returned.
    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError>;

    /// Removes the VM and everything that belongs to it on this host (disk
    /// overlays, config drive, network devices). `Ok` if it does not exist.
    async fn destroy(&self, id: InstanceId) -> Result<(), DriverError>;

    /// Powers a stopped VM on. `Ok` if it is already running.
    async fn power_on(&self, id: InstanceId) -> Result<(), DriverError>;

    /// Asks the guest to shut down (ACPI), waits up to `timeout`, then
    /// forces it off. `Ok` if it is already off.
    async fn power_off(&self, id: InstanceId, timeout: Duration) -> Result<(), DriverError>;

    /// Reboots: `Soft` asks the guest (ACPI) and falls back to hard after a
    /// timeout; `Hard` resets it. A stopped VM is started by a hard reboot.
    async fn reboot(&self, id: InstanceId, kind: RebootKind) -> Result<(), DriverError>;

    /// Freezes a running VM in memory (its vCPUs stop; memory and devices
    /// stay). `Ok` if it is already paused. Drivers that cannot say so
    /// with [`DriverError::Unsupported`], the default.
    async fn pause(&self, id: InstanceId) -> Result<(), DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Pause,
        })
    }

    /// Lets a paused VM run again from where it stopped. `Ok` if it runs.
    async fn unpause(&self, id: InstanceId) -> Result<(), DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Unpause,
        })
    }

    /// Saves a running (or paused) VM's memory to disk and stops it, so it
    /// holds no CPU or memory on the host until resumed. `Ok` if it is
    /// already suspended.
    async fn suspend(&self, id: InstanceId) -> Result<(), DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Suspend,
        })
    }

    /// Restores a suspended VM from its saved memory: the guest carries on
    /// where it was (no reboot). `Ok` if it runs.
    async fn resume(&self, id: InstanceId) -> Result<(), DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Resume,
        })
    }

    /// Sends a running or paused VM a non-maskable interrupt, which a
    /// guest configured for it answers with a kernel crash dump (Nova's
    /// `trigger_crash_dump`): how a user debugs a hung guest. Drivers that
    /// cannot say so with [`DriverError::Unsupported`], the default, which
    /// the API turns into a 400.
    async fn inject_nmi(&self, id: InstanceId) -> Result<(), DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::InjectNmi,
        })
    }

    /// Gives the VM a fresh root disk from `spec.image` and boots it again,
    /// keeping its identity and NICs (Nova's rebuild). The default removes
    /// the VM and creates it anew from `spec`.
    async fn rebuild(&self, spec: &VmSpec) -> Result<(), DriverError> {
        self.destroy(spec.id).await?;
        self.spawn(spec).await
    }

    /// Captures the VM's root disk, consistent, as one self-contained image
    /// file at `dest`, and leaves the VM in the power state it was in. The
    /// agent uploads the file through the image API. Drivers that cannot
    /// say so with [`DriverError::Unsupported`], the default.
    async fn snapshot(
        &self,
        id: InstanceId,
        dest: &std::path::Path,
    ) -> Result<DiskSnapshot, DriverError> {
        let _ = (id, dest);
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Snapshot,
        })
    }

    /// Boots the VM from `rescue_image` with its own root disk attached as
    /// the second disk (Nova's rescue). `Ok` if it is already rescued.
    async fn rescue(&self, spec: &VmSpec, rescue_image: &ImageSpec) -> Result<(), DriverError> {
        let _ = (spec, rescue_image);
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Rescue,
        })
    }

    /// Boots a rescued VM from its own root disk again and drops the
    /// rescue disk. `Ok` if it is not rescued.
    async fn unrescue(&self, id: InstanceId) -> Result<(), DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::Unrescue,
        })
    }

    /// Where the VM's serial port can be reached as a byte stream (a TCP
    /// endpoint the console proxy connects to).
    async fn serial_console(&self, id: InstanceId) -> Result<SerialEndpoint, DriverError> {
        let _ = id;
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::SerialConsole,
        })
    }

    /// Plugs the NIC `nic` into the VM (Nova's interface attach): a
    /// running or paused guest sees a new device at once (hotplug), and
    /// the VM keeps it across stops and reboots; a stopped VM gets it at
    /// its next start. The agent applied the port on the host's data plane
    /// first. `Ok` if the VM already has a NIC with the port's MAC.
    async fn attach_interface(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        let _ = (id, nic);
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::AttachInterface,
        })
    }

    /// Unplugs the VM's NIC of port `nic` (found by its MAC), from the
    /// running guest and from the VM's definition. `Ok` if the VM has no
    /// such NIC.
    async fn detach_interface(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        let _ = (id, nic);
        Err(DriverError::Unsupported {
            driver: self.kind(),
            op: Op::DetachInterface,
        })
    }

    /// The VM's current state.
    async fn info(&self, id: InstanceId) -> Result<VmInfo, DriverError>;

    /// Every VM of ours on this host (domains without the marker of this
    /// cloud are ignored).
    async fn list(&self) -> Result<Vec<VmInfo>, DriverError>;

    /// The tail of the VM's serial console log, at most `max_bytes`.
    async fn console_output(&self, id: InstanceId, max_bytes: usize)
    -> Result<String, DriverError>;

    /// Brings the host's data plane (bridges, overlay tunnels, the
    /// per-network namespaces with their gateways, DHCP and metadata
    /// proxies, security groups and anti-spoofing) in line with `desired`.
    /// Whatever the data plane holds that `desired` does not name is
    /// removed. The agent calls it at start, whenever the control plane
    /// says the host's state changed, and before a spawn whose ports it
    /// has not applied yet; calls never overlap. Idempotent. A network
    /// that cannot be set up is reported in the result (its ports are not
    /// ready) without failing the others; an error means nothing could be.
    async fn apply_network(&self, desired: &HostNetwork) -> Result<NetworkApplied, DriverError>;

    /// Housekeeping the agent runs every `maintenance_secs` (the libvirt
    /// driver removes cached base images no instance has used for a while).
    /// Failures are the driver's to log: the next run tries again, and no
    /// instance depends on it. The default does nothing.
    async fn periodic_maintenance(&self) {}
}

/// A root disk captured by [`Driver::snapshot`]: what the image record
/// needs to describe the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskSnapshot {
    /// `qcow2` or `raw`.
    pub disk_format: String,
    /// Bytes in the file.
    pub size: u64,
}

/// Where a VM's serial console is served as a raw byte stream over TCP.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SerialEndpoint {
    /// Address the console proxy connects to.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// How to reboot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RebootKind {
    /// ACPI reboot request to the guest.
    Soft,
    /// Reset (or destroy + start).
    Hard,
}

/// Default time a guest gets to shut down cleanly before it is forced off
/// (Nova's `shutdown_timeout`).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a driver gets image bytes from. The compute agent provides one
/// that downloads from the image API with its service credentials (agents
/// hold no database credentials); the driver verifies what it receives
/// against the checksums in [`ImageSpec`] and caches it.
#[async_trait]
pub trait ImageFetcher: Send + Sync + 'static {
    /// Streams the bytes of image `image_id` into `dest` and returns how
    /// many were written.
    async fn fetch(
        &self,
        image_id: &str,
        dest: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> anyhow::Result<u64>;
}
