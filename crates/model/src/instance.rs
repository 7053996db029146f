//! The instance state machine: vm_state, task_state and power_state, and
//! how Nova maps them onto the API's `status`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What the hypervisor says about a VM, with Nova's numeric codes
/// (`OS-EXT-STS:power_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    /// 0: unknown or no domain.
    NoState,
    /// 1: running.
    Running,
    /// 3: paused.
    Paused,
    /// 4: shut off.
    Shutdown,
    /// 6: crashed.
    Crashed,
    /// 7: suspended.
    Suspended,
}

impl PowerState {
    /// Nova's numeric code.
    pub fn code(self) -> i64 {
        match self {
            PowerState::NoState => 0,
            PowerState::Running => 1,
            PowerState::Paused => 3,
            PowerState::Shutdown => 4,
            PowerState::Crashed => 6,
            PowerState::Suspended => 7,
        }
    }

    /// From Nova's numeric code (unknown codes are `NoState`).
    pub fn from_code(c: i64) -> Self {
        match c {
            1 => PowerState::Running,
            3 => PowerState::Paused,
            4 => PowerState::Shutdown,
            6 => PowerState::Crashed,
            7 => PowerState::Suspended,
            _ => PowerState::NoState,
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::NoState => "NOSTATE",
            PowerState::Running => "RUNNING",
            PowerState::Paused => "PAUSED",
            PowerState::Shutdown => "SHUTDOWN",
            PowerState::Crashed => "CRASHED",
            PowerState::Suspended => "SUSPENDED",
        })
    }
}

/// The stable state of an instance (`OS-EXT-STS:vm_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// Being built.
    Building,
    /// Running (or should be).
    Active,
    /// Powered off by the user.
    Stopped,
    /// Paused.
    Paused,
    /// Suspended.
    Suspended,
    /// Booted from a rescue image, its own root disk attached second.
    Rescued,
    /// Shelved: snapshotted and stopped, still on its host.
    Shelved,
    /// Shelved and offloaded: on no host, holding no host resources; its
    /// snapshot is what unshelve boots.
    ShelvedOffloaded,
    /// Failed; see the fault.
    Error,
    /// Deleted (never shown: deleted servers are 404).
    Deleted,
}

impl VmState {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Building => "building",
            VmState::Active => "active",
            VmState::Stopped => "stopped",
            VmState::Paused => "paused",
            VmState::Suspended => "suspended",
            VmState::Rescued => "rescued",
            VmState::Shelved => "shelved",
            VmState::ShelvedOffloaded => "shelved_offloaded",
            VmState::Error => "error",
            VmState::Deleted => "deleted",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "building" => VmState::Building,
            "active" => VmState::Active,
            "stopped" => VmState::Stopped,
            "paused" => VmState::Paused,
            "suspended" => VmState::Suspended,
            "rescued" => VmState::Rescued,
            "shelved" => VmState::Shelved,
            "shelved_offloaded" => VmState::ShelvedOffloaded,
            "error" => VmState::Error,
            "deleted" => VmState::Deleted,
            _ => return None,
        })
    }
}

/// What is being done to an instance right now (`OS-EXT-STS:task_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for the scheduler.
    Scheduling,
    /// Ports being allocated.
    Networking,
    /// The host is creating the VM.
    Spawning,
    /// Soft reboot in progress.
    Rebooting,
    /// Hard reboot in progress.
    RebootingHard,
    /// Stop in progress.
    PoweringOff,
    /// Start in progress.
    PoweringOn,
    /// Pause in progress.
    Pausing,
    /// Unpause in progress.
    Unpausing,
    /// Suspend in progress.
    Suspending,
    /// Resume in progress.
    Resuming,
    /// Rebuild in progress (a fresh root disk from the image).
    Rebuilding,
    /// A snapshot of the root disk is being taken and uploaded.
    ImageSnapshot,
    /// Rescue in progress.
    Rescuing,
    /// Unrescue in progress.
    Unrescuing,
    /// Shelve in progress (snapshot, then stop).
    Shelving,
    /// Offload of a shelved server in progress.
    ShelvingOffloading,
    /// Unshelve in progress (schedule, then boot the snapshot).
    Unshelving,
    /// Delete in progress.
    Deleting,
}

impl TaskState {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduling => "scheduling",
            TaskState::Networking => "networking",
            TaskState::Spawning => "spawning",
            TaskState::Rebooting => "rebooting",
            TaskState::RebootingHard => "rebooting_hard",
            TaskState::PoweringOff => "powering-off",
            TaskState::PoweringOn => "powering-on",
            TaskState::Pausing => "pausing",
            TaskState::Unpausing => "unpausing",
            TaskState::Suspending => "suspending",
            TaskState::Resuming => "resuming",
            TaskState::Rebuilding => "rebuilding",
            TaskState::ImageSnapshot => "image_snapshot",
            TaskState::Rescuing => "rescuing",
            TaskState::Unrescuing => "unrescuing",
            TaskState::Shelving => "shelving",
            TaskState::ShelvingOffloading => "shelving_offloading",
            TaskState::Unshelving => "unshelving",
            TaskState::Deleting => "deleting",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduling" => TaskState::Scheduling,
            "networking" => TaskState::Networking,
            "spawning" => TaskState::Spawning,
            "rebooting" => TaskState::Rebooting,
            "rebooting_hard" => TaskState::RebootingHard,
            "powering-off" => TaskState::PoweringOff,
            "powering-on" => TaskState::PoweringOn,
            "pausing" => TaskState::Pausing,
            "unpausing" => TaskState::Unpausing,
            "suspending" => TaskState::Suspending,
            "resuming" => TaskState::Resuming,
            "rebuilding" => TaskState::Rebuilding,
            "image_snapshot" => TaskState::ImageSnapshot,
            "rescuing" => TaskState::Rescuing,
            "unrescuing" => TaskState::Unrescuing,
            "shelving" => TaskState::Shelving,
            "shelving_offloading" => TaskState::ShelvingOffloading,
            "unshelving" => TaskState::Unshelving,
            "deleting" => TaskState::Deleting,
            _ => return None,
        })
    }
}

/// The API status of an instance, as Nova derives it from vm_state and
/// task_state (`nova/api/openstack/common.py`, `_STATE_MAP`).
pub fn api_status(vm: VmState, task: Option<TaskState>) -> &'static str {
    match (vm, task) {
        (VmState::Building, _) => "BUILD",
        (VmState::Active, Some(TaskState::Rebooting)) => "REBOOT",
        (VmState::Active, Some(TaskState::RebootingHard)) => "HARD_REBOOT",
        (VmState::Stopped, Some(TaskState::Rebooting)) => "REBOOT",
        (VmState::Stopped, Some(TaskState::RebootingHard)) => "HARD_REBOOT",
        (VmState::Active | VmState::Stopped | VmState::Error, Some(TaskState::Rebuilding)) => {
            "REBUILD"
        }
        (VmState::Active, _) => "ACTIVE",
        (VmState::Stopped, _) => "SHUTOFF",
        (VmState::Paused, _) => "PAUSED",
        (VmState::Suspended, _) => "SUSPENDED",
        (VmState::Rescued, _) => "RESCUE",
        (VmState::Shelved, _) => "SHELVED",
        (VmState::ShelvedOffloaded, _) => "SHELVED_OFFLOADED",
        (VmState::Error, _) => "ERROR",
        (VmState::Deleted, _) => "DELETED",
    }
}

/// The vm_state values a status filter (`?status=ACTIVE`) selects.
pub fn vm_states_for_status(status: &str) -> Option<Vec<VmState>> {
    Some(match status.to_ascii_uppercase().as_str() {
        "BUILD" => vec![VmState::Building],
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "REBUILD" => vec![VmState::Active],
        "SHUTOFF" => vec![VmState::Stopped],
        "PAUSED" => vec![VmState::Paused],
        "SUSPENDED" => vec![VmState::Suspended],
        "RESCUE" => vec![VmState::Rescued],
        "SHELVED" => vec![VmState::Shelved],
        "SHELVED_OFFLOADED" => vec![VmState::ShelvedOffloaded],
        "ERROR" => vec![VmState::Error],
        "DELETED" => vec![VmState::Deleted],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_follows_nova() {
        assert_eq!(
            api_status(VmState::Building, Some(TaskState::Scheduling)),
            "BUILD"
        );
        assert_eq!(api_status(VmState::Active, None), "ACTIVE");
        assert_eq!(
            api_status(VmState::Active, Some(TaskState::Rebooting)),
            "REBOOT"
        );
        assert_eq!(
            api_status(VmState::Active, Some(TaskState::RebootingHard)),
            "HARD_REBOOT"
        );
        assert_eq!(
            api_status(VmState::Active, Some(TaskState::PoweringOff)),
            "ACTIVE"
        );
        assert_eq!(api_status(VmState::Stopped, None), "SHUTOFF");
        assert_eq!(api_status(VmState::Error, None), "ERROR");
    }

    #[test]
    fn power_codes_round_trip() {
        for p in [
            PowerState::NoState,
            PowerState::Running,
            PowerState::Paused,
            PowerState::Shutdown,
            PowerState::Crashed,
            PowerState::Suspended,
        ] {
            assert_eq!(PowerState::from_code(p.code()), p);
        }
    }

    #[test]
    fn state_names_round_trip() {
        for s in ["building", "active", "stopped", "error"] {
            assert_eq!(VmState::parse(s).unwrap().as_str(), s);
        }
        for t in [
            "scheduling",
            "spawning",
            "rebooting_hard",
            "powering-off",
            "pausing",
            "unpausing",
            "suspending",
            "resuming",
            "deleting",
        ] {
            assert_eq!(TaskState::parse(t).unwrap().as_str(), t);
        }
    }
}

use crate::{ImageId, InstanceId, NetworkId, PortId, ProjectId, ServerGroupId, Timestamp, UserId};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The flavor as it was when the server was booted (later flavor changes
/// or deletion never affect the server).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlavorSnapshot {
    /// Flavor id.
    pub id: String,
    /// Flavor name.
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: i64,
    /// Memory in MiB.
    pub ram_mb: i64,
    /// Root disk in GiB.
    pub disk_gb: i64,
    /// Swap in MiB.
    pub swap_mb: i64,
    /// Ephemeral disk in GiB.
    pub ephemeral_gb: i64,
    /// Extra specs.
    pub extra_specs: BTreeMap<String, String>,
}

/// A network request of a server create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestedNetwork {
    /// A new port on this network, optionally with this address.
    Network {
        /// The network.
        network_id: NetworkId,
        /// A chosen address.
        fixed_ip: Option<Ipv4Addr>,
    },
    /// An existing port.
    Port {
        /// The port.
        port_id: PortId,
    },
}

/// Why a server is in ERROR (`fault` in the API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// HTTP-like code (500 for build failures, as Nova).
    pub code: i64,
    /// What happened, in words a user understands.
    pub message: String,
    /// More detail (per-host failures), shown to admins.
    pub details: String,
    /// When it happened.
    pub created: Timestamp,
}

/// A server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Server id.
    pub id: InstanceId,
    /// Owner.
    pub project_id: ProjectId,
    /// Creator.
    pub user_id: UserId,
    /// Display name.
    pub name: String,
    /// Guest hostname.
    pub hostname: String,
    /// Stable state.
    pub vm_state: VmState,
    /// Current task.
    pub task_state: Option<TaskState>,
    /// Last known hypervisor power state.
    pub power_state: PowerState,
    /// Compute host, once scheduled.
    pub host: Option<String>,
    /// Hypervisor node name.
    pub node: Option<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// Flavor snapshot.
    pub flavor: FlavorSnapshot,
    /// Image booted.
    pub image_id: ImageId,
    /// Keypair name.
    pub key_name: Option<String>,
    /// Keypair public key (copied at boot).
    pub key_data: Option<String>,
    /// User data, base64 as given.
    pub user_data: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Tags.
    pub tags: Vec<String>,
    /// `accessIPv4`.
    pub access_ipv4: String,
    /// `accessIPv6`.
    pub access_ipv6: String,
    /// `config_drive` as requested.
    pub config_drive: String,
    /// Index in a multi-create.
    pub launch_index: i64,
    /// Multi-create reservation id (`r-xxxxxxxx`).
    pub reservation_id: String,
    /// Server group, if any.
    pub server_group_id: Option<ServerGroupId>,
    /// What networks were asked for.
    pub requested_networks: Vec<RequestedNetwork>,
    /// Security group names.
    pub security_groups: Vec<String>,
    /// NUMA placement chosen by the scheduler (JSON of the driver's
    /// `NumaPlacement`).
    pub numa_placement: Option<serde_json::Value>,
    /// Why it is in ERROR.
    pub fault: Option<Fault>,
    /// Build progress 0-100.
    pub progress: i64,
    /// Generation of the last applied host report.
    pub state_gen: i64,
    /// When the current task times out.
    pub task_deadline: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it first became ACTIVE.
    pub launched_at: Option<Timestamp>,
    /// When it was deleted.
    pub terminated_at: Option<Timestamp>,
    /// Soft-delete marker (deleted servers are 404 to users).
    pub deleted_at: Option<Timestamp>,
}

impl Instance {
    /// The availability zone the server is in, as users see it: the
    /// requested `zone:host[:node]` without the host an admin forced it
    /// on (Nova shows the zone only); `nova` when none was named.
    pub fn zone(&self) -> &str {
        match self.availability_zone.split(':').next() {
            Some(z) if !z.is_empty() => z,
            _ => "nova",
        }
    }

    /// The API status.
    pub fn status(&self) -> &'static str {
        api_status(self.vm_state, self.task_state)
    }
}

/// One user request against a server (`os-instance-actions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceAction {
    /// Internal id.
    pub id: crate::ActionId,
    /// The server.
    pub instance_id: InstanceId,
    /// The API request id.
    pub request_id: String,
    /// `create`, `stop`, `start`, `reboot`, `delete`, ...
    pub action: String,
    /// Owner.
    pub project_id: ProjectId,
    /// Who asked.
    pub user_id: UserId,
    /// When it started.
    pub start_time: Timestamp,
    /// When it finished.
    pub finish_time: Option<Timestamp>,
    /// `Error` when it failed.
    pub message: Option<String>,
    /// Its steps.
    pub events: Vec<ActionEvent>,
}

/// A step of an instance action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// `schedule`, `compute_spawn`, `power_state_sync`, ...
    pub event: String,
    /// Where it ran.
    pub host: Option<String>,
    /// When it started.
    pub start_time: Timestamp,
    /// When it finished.
    pub finish_time: Option<Timestamp>,
    /// `Success` or `Error`.
    pub result: Option<String>,
    /// What happened (the failure message on error).
    pub details: Option<String>,
}

/// A server group's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupPolicy {
    /// All members on one host.
    Affinity,
    /// Every member on a different host.
    AntiAffinity,
    /// Prefer one host.
    SoftAffinity,
    /// Prefer different hosts.
    SoftAntiAffinity,
}

impl GroupPolicy {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupPolicy::Affinity => "affinity",
            GroupPolicy::AntiAffinity => "anti-affinity",
            GroupPolicy::SoftAffinity => "soft-affinity",
            GroupPolicy::SoftAntiAffinity => "soft-anti-affinity",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "affinity" => GroupPolicy::Affinity,
            "anti-affinity" => GroupPolicy::AntiAffinity,
            "soft-affinity" => GroupPolicy::SoftAffinity,
            "soft-anti-affinity" => GroupPolicy::SoftAntiAffinity,
            _ => return None,
        })
    }
}

/// A server group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerGroup {
    /// Group id.
    pub id: ServerGroupId,
    /// Owner.
    pub project_id: ProjectId,
    /// Creator.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// Policy.
    pub policy: GroupPolicy,
    /// Members.
    pub members: Vec<InstanceId>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// Who locked a server, in Nova's terms: a lock taken by someone of the
/// server's own project can be lifted by anyone of that project, one taken
/// by an admin of another project only by an admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockedBy {
    /// Someone of the server's project.
    Owner,
    /// An admin acting on another project's server.
    Admin,
}

impl LockedBy {
    /// The stored name (Nova's `locked_by`).
    pub fn as_str(self) -> &'static str {
        match self {
            LockedBy::Owner => "owner",
            LockedBy::Admin => "admin",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(LockedBy::Owner),
            "admin" => Some(LockedBy::Admin),
            _ => None,
        }
    }
}

/// A server's lock: while it is held, non-admins cannot act on the server
/// (stop, start, reboot, pause, suspend, delete, ...), so a server someone
/// depends on is not switched off by accident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceLock {
    /// Owner or admin.
    pub locked_by: LockedBy,
    /// The user who took it (for the record).
    pub user_id: UserId,
    /// Why, as given (`locked_reason`).
    pub reason: Option<String>,
    /// When.
    pub created_at: Timestamp,
}
