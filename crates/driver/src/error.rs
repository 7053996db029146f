//! The driver's error type.

use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use std::fmt;

/// The operations a driver performs, for error messages and matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Reading host resources.
    HostResources,
    /// Creating a VM.
    Spawn,
    /// Removing a VM.
    Destroy,
    /// Starting a VM.
    PowerOn,
    /// Stopping a VM.
    PowerOff,
    /// Rebooting a VM.
    Reboot,
    /// Freezing a VM in memory.
    Pause,
    /// Thawing a paused VM.
    Unpause,
    /// Saving a VM's memory to disk and stopping it.
    Suspend,
    /// Restoring a suspended VM.
    Resume,
    /// Sending a VM a non-maskable interrupt (a crash dump trigger).
    InjectNmi,
    /// Rebuilding a VM from an image.
    Rebuild,
    /// Capturing a VM's root disk.
    Snapshot,
    /// Booting a VM from a rescue image.
    Rescue,
    /// Booting a rescued VM from its own disk again.
    Unrescue,
    /// Opening a VM's serial console.
    SerialConsole,
    /// Plugging a NIC into a VM (hotplug when it runs).
    AttachInterface,
    /// Unplugging a NIC from a VM.
    DetachInterface,
    /// Reading a VM's state.
    Info,
    /// Listing VMs.
    List,
    /// Reading the console log.
    Console,
    /// Applying the host's data plane.
    Network,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::HostResources => "read host resources",
            Op::Spawn => "spawn",
            Op::Destroy => "destroy",
            Op::PowerOn => "power on",
            Op::PowerOff => "power off",
            Op::Reboot => "reboot",
            Op::Pause => "pause",
            Op::Unpause => "unpause",
            Op::Suspend => "suspend",
            Op::Resume => "resume",
            Op::InjectNmi => "inject an NMI into",
            Op::Rebuild => "rebuild",
            Op::Snapshot => "snapshot",
            Op::Rescue => "rescue",
            Op::Unrescue => "unrescue",
            Op::SerialConsole => "open the serial console of",
            Op::AttachInterface => "attach an interface to",
            Op::DetachInterface => "detach an interface from",
            Op::Info => "get info of",
            Op::List => "list",
            Op::Console => "read the console of",
            Op::Network => "apply the host network",
        })
    }
}

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The VM does not exist on this host.
    #[error("no VM {0} on this host")]
    NotFound(InstanceId),
    /// The VM is in a state that does not allow the operation.
    #[error("cannot {requested} a VM that is {current}")]
    InvalidState {
        /// The VM's state.
        current: PowerState,
        /// What was asked.
        requested: Op,
    },
    /// This driver cannot do the operation at all (not a transient
    /// failure: the user is told, and trying again will not help).
    #[error("the {driver} driver cannot {op} VMs")]
    Unsupported {
        /// The driver's kind.
        driver: &'static str,
        /// What was asked.
        op: Op,
    },
    /// The image could not be used (download failed, checksum mismatch,
    /// unsupported format). The message is shown to the user as the fault.
    #[error("image {image}: {message}")]
    Image {
        /// Image id.
        image: String,
        /// What is wrong with it.
        message: String,
    },
    /// The backend failed.
    #[error("{op} failed for VM {id}")]
    Backend {
        /// What was being done.
        op: Op,
        /// The VM (nil for host-wide operations).
        id: InstanceId,
        /// The cause.
        #[source]
        source: anyhow::Error,
    },
}

impl DriverError {
    /// A backend failure with its cause.
    pub fn backend(op: Op, id: InstanceId, source: impl Into<anyhow::Error>) -> Self {
        DriverError::Backend {
            op,
            id,
            source: source.into(),
        }
    }

    /// The message with its chain of causes, for faults shown to users and
    /// for logs.
    pub fn full_message(&self) -> String {
        match self {
            DriverError::Backend { source, .. } => format!("{self}: {source:#}"),
            other => other.to_string(),
        }
    }
}
