//! The messages of the control plane, one enum per destination queue.
//!
//! Each variant's doc comment states when it is sent and what the receiver
//! may assume. Every handler is idempotent: messages are delivered at least
//! once. The enum variant becomes the envelope's `kind` and its fields the
//! body, so a message is readable on the wire (RabbitMQ's management UI,
//! logs) without our code.

use cloud_bus::{BusError, Envelope};
use cloud_driver::{HostResources, ImageSpec, NicSpec, RebootKind, SerialEndpoint, VmInfo, VmSpec};
use cloud_model::instance::PowerState;
use cloud_model::{InstanceId, NetworkId, SecurityGroupId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Messages to the conductors (`conductor` queue).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum ConductorMsg {
    /// Run (or resume) the build workflow of a server. Sent by the API
    /// after the server and its workflow were recorded; resent by the
    /// reconciler for builds whose conductor died.
    BuildInstance {
        /// The server.
        instance_id: InstanceId,
    },
    /// Run (or resume) the delete workflow of a server whose task_state is
    /// already `deleting`.
    DeleteInstance {
        /// The server.
        instance_id: InstanceId,
    },
    /// A compute agent started (or its resources changed): register the
    /// host and reconcile what runs on it.
    HostReport {
        /// The host name.
        host: String,
        /// Availability zone configured on the agent.
        availability_zone: String,
        /// Capacity and topology.
        resources: HostResources,
        /// `(class, reserved, allocation_ratio)` per resource class.
        inventory: Vec<(String, i64, f64)>,
        /// Every VM of ours the hypervisor has.
        vms: Vec<VmInfo>,
        /// Whether this report follows an agent start (then orphans are reaped).
        startup: bool,
        /// The host's underlay address: other hosts send the overlay
        /// (VXLAN) traffic of shared networks to it. `None` on a host that
        /// carries no overlay (the fake driver without one configured).
        #[serde(default)]
        local_ip: Option<Ipv4Addr>,
        /// Whether the host runs routers (the network role): routers are
        /// placed only on such hosts.
        #[serde(default)]
        network_node: bool,
    },
    /// A service is alive.
    Heartbeat {
        /// Host.
        host: String,
        /// `cloud-compute`, ...
        binary: String,
    },
    /// Something happened to a server on a host.
    InstanceEvent {
        /// The server.
        instance_id: InstanceId,
        /// The host it happened on.
        host: String,
        /// The agent's generation for this report (guards against old reports).
        generation: i64,
        /// The hypervisor's power state after the event.
        power_state: PowerState,
        /// What happened.
        event: HostEvent,
    },
    /// Something that hosts' data planes depend on changed: ports were
    /// bound, unbound or edited, security group rules or memberships
    /// changed, subnets or networks changed. The conductor finds the hosts
    /// concerned (those with ports on `networks`, with ports in or whose
    /// rules name `security_groups`, and `hosts`) and tells each to pull
    /// its state again ([`ComputeMsg::SyncNetwork`]). Sent by the API after
    /// it committed the change, and by the conductor itself.
    NetworkChanged {
        /// Networks whose ports, subnets or segment changed.
        #[serde(default)]
        networks: Vec<NetworkId>,
        /// Security groups whose rules or members changed.
        #[serde(default)]
        security_groups: Vec<SecurityGroupId>,
        /// Hosts to tell in any case (a port left them).
        #[serde(default)]
        hosts: Vec<String>,
    },
    /// A call from a compute agent: the desired data plane of `host`.
    /// Reply: [`cloud_driver::HostNetwork`]. Sent at agent start, after a
    /// [`ComputeMsg::SyncNetwork`], and periodically as a safety net.
    GetHostNetwork {
        /// The host asking.
        host: String,
    },
    /// Run (or resume) the rebuild of a server whose task_state is already
    /// `rebuilding` (the API recorded the new image, name and metadata):
    /// the conductor builds the spec and casts it to the server's host.
    RebuildInstance {
        /// The server.
        instance_id: InstanceId,
    },
    /// Rescue a server whose task_state is already `rescuing`: the
    /// conductor builds the spec and casts it with the rescue image.
    RescueInstance {
        /// The server.
        instance_id: InstanceId,
        /// The image to boot for the rescue (the server's own by default).
        rescue_image_ref: String,
    },
    /// Run (or resume) the unshelve of a shelved-offloaded server whose
    /// task_state is already `unshelving`: schedule it anew and boot its
    /// snapshot.
    UnshelveInstance {
        /// The server.
        instance_id: InstanceId,
    },
    /// Periodic power-state sync: the hypervisor's view of every VM.
    PowerSync {
        /// Host.
        host: String,
        /// Generation of this sync.
        generation: i64,
        /// The VMs.
        vms: Vec<VmInfo>,
    },
}

/// What a compute agent reports about an operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostEvent {
    /// The VM was created and started.
    Spawned,
    /// Creating the VM failed; it was cleaned up on the host.
    SpawnFailed {
        /// Why, for the fault shown to the user.
        message: String,
    },
    /// The VM was started.
    PoweredOn,
    /// The VM was stopped.
    PoweredOff,
    /// The VM was rebooted.
    Rebooted,
    /// The VM was paused (frozen in memory).
    Paused,
    /// The paused VM runs again.
    Unpaused,
    /// The VM's memory was saved to disk and the VM stopped.
    Suspended,
    /// The suspended VM was restored and runs.
    Resumed,
    /// The VM was rebuilt from its (new) image and runs.
    Rebuilt,
    /// The root disk was captured and uploaded as image `image_id`.
    Snapshotted {
        /// The snapshot image.
        image_id: String,
    },
    /// Capturing or uploading the snapshot failed; the server is back in
    /// its previous state.
    SnapshotFailed {
        /// The snapshot image (to be marked killed or removed).
        image_id: String,
        /// Why.
        message: String,
    },
    /// The VM runs from its rescue image.
    Rescued,
    /// The VM runs from its own root disk again.
    Unrescued,
    /// The VM was snapshotted (for shelve) and stopped.
    Shelved {
        /// The snapshot image unshelve will boot.
        image_id: String,
    },
    /// The VM and its host resources are gone.
    Destroyed,
    /// A power action failed.
    ActionFailed {
        /// `stop`, `start`, `reboot`, `pause`, `unpause`, `suspend`, `resume`.
        action: String,
        /// Why.
        message: String,
    },
}

/// Messages to the schedulers (`scheduler` queue, always calls).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum SchedulerMsg {
    /// Pick a host for a server and claim its resources there. Reply:
    /// [`Selection`] or an error message saying why no host fits.
    SelectDestinations {
        /// The server (its flavor, image, group and AZ are read from the store).
        instance_id: InstanceId,
        /// Hosts that already failed this build.
        ignore_hosts: Vec<String>,
        /// How many alternates to return.
        num_alternates: u32,
    },
}

/// A scheduler's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The host whose resources were claimed.
    pub host: String,
    /// The NUMA placement (pinned CPUs were claimed too).
    pub numa: Option<cloud_driver::NumaPlacement>,
    /// Other hosts that fit, best first (not claimed).
    pub alternates: Vec<String>,
}

/// Messages to a compute agent (`compute.<host>` queue).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum ComputeMsg {
    /// Create and start a VM. The host's resources were claimed. Answered
    /// by an `InstanceEvent` (spawned or spawn_failed) to the conductor.
    Spawn {
        /// What to build.
        spec: Box<VmSpec>,
    },
    /// Remove a VM and its host resources. Answered by `Destroyed`.
    Destroy {
        /// The server.
        instance_id: InstanceId,
    },
    /// Start a stopped VM. Answered by `PoweredOn` or `ActionFailed`.
    PowerOn {
        /// The server.
        instance_id: InstanceId,
    },
    /// Stop a VM (ACPI, then forced after the timeout). Answered by
    /// `PoweredOff` or `ActionFailed`.
    PowerOff {
        /// The server.
        instance_id: InstanceId,
    },
    /// Reboot a VM. Answered by `Rebooted` or `ActionFailed`.
    Reboot {
        /// The server.
        instance_id: InstanceId,
        /// Soft or hard.
        kind: RebootKind,
    },
    /// Pause a running VM. Answered by `Paused` or `ActionFailed`.
    Pause {
        /// The server.
        instance_id: InstanceId,
    },
    /// Unpause a paused VM. Answered by `Unpaused` or `ActionFailed`.
    Unpause {
        /// The server.
        instance_id: InstanceId,
    },
    /// Suspend a VM (memory to disk). Answered by `Suspended` or
    /// `ActionFailed`.
    Suspend {
        /// The server.
        instance_id: InstanceId,
    },
    /// Resume a suspended VM. Answered by `Resumed` or `ActionFailed`.
    Resume {
        /// The server.
        instance_id: InstanceId,
    },
    /// Give a VM a fresh root disk from `spec.image` and boot it, keeping
    /// its NICs. Answered by `Rebuilt` or `ActionFailed`.
    Rebuild {
        /// What to build (the server's new image, name, metadata).
        spec: Box<VmSpec>,
    },
    /// Capture the VM's root disk and upload it as image `image_id`
    /// (already created, queued). Answered by `Snapshotted` or
    /// `SnapshotFailed`.
    Snapshot {
        /// The server.
        instance_id: InstanceId,
        /// The image record to upload into.
        image_id: String,
    },
    /// Boot the VM from a rescue image with its own disk second. Answered
    /// by `Rescued` or `ActionFailed`.
    Rescue {
        /// The server as built.
        spec: Box<VmSpec>,
        /// The rescue image.
        rescue_image: ImageSpec,
    },
    /// Boot a rescued VM from its own disk again. Answered by `Unrescued`
    /// or `ActionFailed`.
    Unrescue {
        /// The server.
        instance_id: InstanceId,
    },
    /// Snapshot the VM into image `image_id` and stop it. Answered by
    /// `Shelved` or `ActionFailed`.
    Shelve {
        /// The server.
        instance_id: InstanceId,
        /// The image record to upload into.
        image_id: String,
    },
    /// Where the VM's serial console can be reached (a call). Reply:
    /// [`SerialEndpoint`].
    SerialConsole {
        /// The server.
        instance_id: InstanceId,
    },
    /// The host's desired data plane changed: pull it from the conductor
    /// ([`ConductorMsg::GetHostNetwork`]) and apply it. Carries no state,
    /// so duplicates and reordering are harmless; an agent coalesces a
    /// burst of them into one pull.
    SyncNetwork {
        /// Why, for the logs.
        reason: String,
    },
    /// Read the console log (a call). Reply: [`ConsoleOutput`].
    ConsoleOutput {
        /// The server.
        instance_id: InstanceId,
        /// At most this many bytes from the end.
        max_bytes: usize,
    },
    /// Plug the port `nic` (bound to this host) into the VM: once the
    /// host's data plane carries the port, a hotplug into a running or
    /// paused guest, a definition change for a stopped one. A call, so the
    /// API answers with the attachment only once the guest has it (Nova's
    /// attach is synchronous). Reply: `()` or why not.
    AttachInterface {
        /// The server.
        instance_id: InstanceId,
        /// The NIC, as a spawn would get it.
        nic: NicSpec,
    },
    /// Unplug the VM's NIC of port `nic` (found by its MAC). A call, as
    /// [`ComputeMsg::AttachInterface`]. Reply: `()` or why not.
    DetachInterface {
        /// The server.
        instance_id: InstanceId,
        /// The NIC as attached.
        nic: NicSpec,
    },
    /// Send the VM a non-maskable interrupt (Nova's `trigger_crash_dump`;
    /// a call, so a driver without NMIs is a 400 at once). Reply:
    /// [`CrashDump`].
    TriggerCrashDump {
        /// The server.
        instance_id: InstanceId,
    },
}

/// The reply to `TriggerCrashDump`: an NMI that could not be sent because
/// the host's driver has none is not a failure of the host (the user is
/// told 400, not 409), so it is a value of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashDump {
    /// The NMI was sent.
    Injected,
    /// The host's driver cannot send NMIs.
    Unsupported {
        /// In words for the user.
        message: String,
    },
}

/// What a compute agent answers to a call: the reply of the message's own
/// type (the caller decodes that type; on the wire this is just it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HostReply {
    /// To `ConsoleOutput`.
    Console(Reply<ConsoleOutput>),
    /// To `TriggerCrashDump`.
    CrashDump(Reply<CrashDump>),
    /// To `SerialConsole`.
    Serial(Reply<SerialEndpoint>),
    /// To `AttachInterface` and `DetachInterface`.
    Interface(Reply<()>),
}

/// The reply to `ConsoleOutput`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleOutput {
    /// The log text.
    pub output: String,
}

/// The body of every reply: a value or an error message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    /// Success.
    Ok(T),
    /// Failure, in words for the user.
    Err(String),
    /// The callee could not do it now (its database or a peer was out of
    /// reach) and nothing was done: the caller retries later instead of
    /// failing for good.
    Unavailable(String),
}

/// Wraps a message in an envelope for the bus.
pub fn encode<M: Serialize>(msg: &M, request_id: &str) -> Result<Envelope, BusError> {
    let v = serde_json::to_value(msg).map_err(|e| BusError::Codec(e.to_string()))?;
    let kind = v
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("reply")
        .to_owned();
    let body = v.get("body").cloned().unwrap_or(serde_json::Value::Null);
    let mut env = Envelope::new(&kind, request_id, &body)?;
    env.body = body;
    // The sending span's context when spans are exported, else one
    // derived from the request id (so logs of one request share a trace id).
    if env.traceparent.is_none() {
        env.traceparent = Some(traceparent(request_id));
    }
    Ok(env)
}

/// A W3C `traceparent` whose trace id is the request id (so a trace and
/// the logs of one API request share an id) and whose span id is new.
pub fn traceparent(request_id: &str) -> String {
    let trace = request_id
        .strip_prefix("req-")
        .and_then(uuid_hex)
        .unwrap_or_else(|| format!("{:032x}", fnv(request_id.as_bytes()) as u128));
    let span = fnv(format!("{request_id}{}", cloud_model::Timestamp::now().micros()).as_bytes());
    format!("00-{trace}-{span:016x}-01")
}

fn uuid_hex(u: &str) -> Option<String> {
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Unwraps a message of enum type `M` from an envelope.
pub fn decode<M: DeserializeOwned>(env: &Envelope) -> Result<M, BusError> {
    serde_json::from_value(serde_json::json!({"kind": env.kind, "body": env.body}))
        .map_err(|e| BusError::Codec(format!("{}: {e}", env.kind)))
}

/// Builds a reply envelope.
pub fn encode_reply<T: Serialize>(
    reply: &Reply<T>,
    request_id: &str,
) -> Result<Envelope, BusError> {
    Envelope::new("reply", request_id, reply)
}

/// Wraps an agent's answer in a reply envelope (as [`encode_reply`]).
pub fn encode_host_reply(reply: &HostReply, request_id: &str) -> Result<Envelope, BusError> {
    Envelope::new("reply", request_id, reply)
}

/// Reads a reply envelope.
pub fn decode_reply<T: DeserializeOwned>(env: &Envelope) -> Result<Reply<T>, BusError> {
    env.decode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_envelopes() {
        let id = InstanceId::new();
        let msg = ConductorMsg::BuildInstance { instance_id: id };
        let env = encode(&msg, "req-1").unwrap();
        assert_eq!(env.kind, "build_instance");
        let tp = traceparent("req-0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
        assert!(
            tp.starts_with("00-0b1e2c3d4e5f4a6b8c7d9e0f1a2b3c4d-"),
            "{tp}"
        );
        assert_eq!(tp.len(), 55);
        assert_eq!(env.body["instance_id"], id.to_string());
        assert_eq!(decode::<ConductorMsg>(&env).unwrap(), msg);
        let reply: Reply<ConsoleOutput> = Reply::Ok(ConsoleOutput { output: "x".into() });
        let env = encode_reply(&reply, "req-1").unwrap();
        assert_eq!(decode_reply::<ConsoleOutput>(&env).unwrap(), reply);
    }
}
