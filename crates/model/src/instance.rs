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
        (VmState::Active, _) => "ACTIVE",
        (VmState::Stopped, _) => "SHUTOFF",
        (VmState::Paused, _) => "PAUSED",
        (VmState::Suspended, _) => "SUSPENDED",
        (VmState::Error, _) => "ERROR",
        (VmState::Deleted, _) => "DELETED",
    }
}

/// The vm_state values a status filter (`?status=ACTIVE`) selects.
pub fn vm_states_for_status(status: &str) -> Option<Vec<VmState>> {
    Some(match status.to_ascii_uppercase().as_str() {
        "BUILD" => vec![VmState::Building],
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" => vec![VmState::Active],
        "SHUTOFF" => vec![VmState::Stopped],
        "PAUSED" => vec![VmState::Paused],
        "SUSPENDED" => vec![VmState::Suspended],
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
            "deleting",
        ] {
            assert_eq!(TaskState::parse(t).unwrap().as_str(), t);
        }
    }
}
