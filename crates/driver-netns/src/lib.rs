//! The `netns` driver: guests that are Linux network namespaces.
//!
//! A guest here is a network namespace `<prefix><instance id>` with one
//! veth NIC per port, plugged into the host's real data plane (the kernel
//! bridges, VXLAN, nftables and dnsmasq of `cloud-dataplane`) exactly
//! where a VM's tap would be, and a busybox `udhcpc` per NIC that takes
//! its address, routes and MTU from the network's DHCP server. There is no
//! CPU, memory or disk behind it: it costs a few kilobytes, so one machine
//! runs many simulated hosts with many guests each. It is for what the
//! fake driver cannot show and QEMU is too heavy for: multi-host tests of
//! the data plane (`ip netns exec <guest_ns> busybox ping ...` is a guest
//! pinging), demos and scale tests of the network.
//!
//! What a guest is and does lives in files (see [`records`]), so a
//! restarted agent finds its guests; its console log gets the QEMU test
//! guest's `TESTGUEST` markers (see [`script`]), so tests read either kind
//! of guest the same way. Tools needed: `ip` and `busybox` (with `udhcpc`).

mod boot;
pub mod config;
pub mod dhcp_client;
pub mod guest;
pub mod records;
pub mod script;

pub use config::NetnsConfig;

use async_trait::async_trait;
use cloud_dataplane::DataPlane;
use cloud_driver::{
    Driver, DriverError, HostNetwork, HostResources, NumaCell, Op, RebootKind, VmInfo, VmSpec,
};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use records::{GuestFiles, GuestRecord};
use std::sync::Arc;
use std::time::Duration;

/// The namespace of guest `id`: `<prefix><id>`.
pub fn guest_ns_name(prefix: &str, id: InstanceId) -> String {
    format!("{prefix}{id}")
}

/// A host whose guests are network namespaces.
pub struct NetnsDriver {
    config: NetnsConfig,
    dataplane: Arc<DataPlane>,
}

impl NetnsDriver {
    /// A driver plugging its guests into `dataplane` (which also knows
    /// which namespace, if any, plays the host).
    pub fn new(config: NetnsConfig, dataplane: Arc<DataPlane>) -> NetnsDriver {
        NetnsDriver { config, dataplane }
    }

    /// Its settings.
    pub fn config(&self) -> &NetnsConfig {
        &self.config
    }

    /// The namespace of guest `id`, for running commands "in the guest"
    /// (`ip netns exec <it> ...`).
    pub fn guest_ns(&self, id: InstanceId) -> String {
        guest_ns_name(&self.config.guest_prefix, id)
    }

    fn files(&self, id: InstanceId) -> GuestFiles {
        GuestFiles::new(&self.config.state_dir, id)
    }

    fn record(&self, op: Op, id: InstanceId) -> Result<(GuestFiles, GuestRecord), DriverError> {
        let files = self.files(id);
        match files.load() {
            Ok(Some(r)) => Ok((files, r)),
            Ok(None) => Err(DriverError::NotFound(id)),
            Err(e) => Err(DriverError::backend(op, id, e)),
        }
    }

    /// The power state as the guest really is: a guest recorded as running
    /// whose namespace is gone (the machine rebooted, someone deleted it)
    /// is off, and `power_on` rebuilds it.
    fn power_of(&self, record: &GuestRecord) -> PowerState {
        if !record.spawned {
            PowerState::NoState
        } else if record.power == PowerState::Running
            && !guest::ns_exists(&self.guest_ns(record.spec.id))
        {
            PowerState::Shutdown
        } else {
            record.power
        }
    }
}

/// The id host-wide failures are reported under (nil, as the libvirt
/// driver does).
fn host_id() -> InstanceId {
    InstanceId::from_uuid(uuid::Uuid::nil())
}

#[async_trait]
impl Driver for NetnsDriver {
    fn kind(&self) -> &'static str {
        "netns"
    }

    async fn host_resources(&self) -> Result<HostResources, DriverError> {
        let c = &self.config;
        Ok(HostResources {
            vcpus: c.vcpus,
            memory_mb: c.memory_mb,
            disk_gb: c.disk_gb,
            numa_cells: vec![NumaCell {
                id: 0,
                cpus: (0..c.vcpus).collect(),
                memory_mb: c.memory_mb,
                hugepages: Vec::new(),
            }],
            hypervisor_type: "netns".to_owned(),
            hypervisor_version: 1_000_000,
            cpu_arch: std::env::consts::ARCH.to_owned(),
        })
    }

    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        let fail = |e: anyhow::Error| DriverError::backend(Op::Spawn, spec.id, e);
        let files = self.files(spec.id);
        if let Some(r) = files.load().map_err(fail)?
            && r.spawned
            && guest::ns_exists(&self.guest_ns(spec.id))
        {
            return Ok(());
        }
        // Recorded first, so a destroy after a failed spawn finds the taps.
        let mut record = GuestRecord {
            spec: spec.clone(),
            power: PowerState::Running,
            spawned: false,
        };
        files.save(&record).map_err(fail)?;
        self.boot(&files, spec).await.map_err(fail)?;
        record.spawned = true;
        files.save(&record).map_err(fail)
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), DriverError> {
        let fail = |e: anyhow::Error| DriverError::backend(Op::Destroy, id, e);
        let files = self.files(id);
        let ns = self.guest_ns(id);
        // An unreadable record must not keep the guest alive: clean up
        // what can be found without it.
        let record = files.load().unwrap_or_default();
        dhcp_client::stop_all(&files.dir).await.map_err(fail)?;
        if guest::ns_exists(&ns) {
            dhcp_client::kill_namespace_processes(&ns).await;
        }
        if let Some(r) = &record {
            for nic in &r.spec.nics {
                guest::delete_tap(&self.dataplane, &nic.port_id)
                    .await
                    .map_err(fail)?;
            }
        }
        guest::delete_namespace(&ns).await.map_err(fail)?;
        files.remove().map_err(fail)
    }

    async fn power_on(&self, id: InstanceId) -> Result<(), DriverError> {
        let (files, mut record) = self.record(Op::PowerOn, id)?;
        let fail = |e: anyhow::Error| DriverError::backend(Op::PowerOn, id, e);
        if self.power_of(&record) == PowerState::Running
            && self.clients_running(&files, &record.spec)
        {
            return Ok(());
        }
        self.boot(&files, &record.spec).await.map_err(fail)?;
        record.power = PowerState::Running;
        record.spawned = true;
        files.save(&record).map_err(fail)
    }

    async fn power_off(&self, id: InstanceId, _timeout: Duration) -> Result<(), DriverError> {
        // Nothing in a namespace needs time to shut down cleanly.
        let (files, mut record) = self.record(Op::PowerOff, id)?;
        let fail = |e: anyhow::Error| DriverError::backend(Op::PowerOff, id, e);
        if record.power == PowerState::Shutdown {
            return Ok(());
        }
        self.halt(&files, &record.spec).await.map_err(fail)?;
        files
            .console_append(&["TESTGUEST POWEROFF".to_owned()])
            .map_err(fail)?;
        record.power = PowerState::Shutdown;
        files.save(&record).map_err(fail)
    }

    async fn reboot(&self, id: InstanceId, kind: RebootKind) -> Result<(), DriverError> {
        let (files, mut record) = self.record(Op::Reboot, id)?;
        let fail = |e: anyhow::Error| DriverError::backend(Op::Reboot, id, e);
        let current = self.power_of(&record);
        if kind == RebootKind::Soft && current != PowerState::Running {
            return Err(DriverError::InvalidState {
                current,
                requested: Op::Reboot,
            });
        }
        if current == PowerState::Running {
            files
                .console_append(&["TESTGUEST REBOOT".to_owned()])
                .map_err(fail)?;
        }
        self.halt(&files, &record.spec).await.map_err(fail)?;
        self.boot(&files, &record.spec).await.map_err(fail)?;
        record.power = PowerState::Running;
        record.spawned = true;
        files.save(&record).map_err(fail)
    }

    async fn info(&self, id: InstanceId) -> Result<VmInfo, DriverError> {
        let (_, record) = self.record(Op::Info, id)?;
        Ok(VmInfo {
            id,
            power_state: self.power_of(&record),
        })
    }

    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        // From this host's records only: namespaces with our prefix may
        // belong to other simulated hosts on the same machine.
        let fail = |e: anyhow::Error| DriverError::backend(Op::List, host_id(), e);
        let mut out = Vec::new();
        for (id, files) in records::all(&self.config.state_dir).map_err(fail)? {
            if let Some(record) = files.load().map_err(fail)? {
                out.push(VmInfo {
                    id,
                    power_state: self.power_of(&record),
                });
            }
        }
        Ok(out)
    }

    async fn console_output(
        &self,
        id: InstanceId,
        max_bytes: usize,
    ) -> Result<String, DriverError> {
        let (files, _) = self.record(Op::Console, id)?;
        files
            .console_tail(max_bytes)
            .map_err(|e| DriverError::backend(Op::Console, id, e))
    }

    async fn apply_network(
        &self,
        desired: &HostNetwork,
    ) -> Result<cloud_driver::NetworkApplied, DriverError> {
        self.dataplane
            .apply(desired)
            .await
            .map(|failed| cloud_driver::NetworkApplied { failed })
            .map_err(|e| DriverError::backend(Op::Network, host_id(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_namespace_names() {
        let id = InstanceId::parse("9f8e7d6c-5b4a-4321-8765-43210fedcba0").unwrap();
        assert_eq!(
            guest_ns_name("vm-", id),
            "vm-9f8e7d6c-5b4a-4321-8765-43210fedcba0"
        );
    }

    #[tokio::test]
    async fn unknown_guests() {
        let dir = tempfile::tempdir().unwrap();
        let d = NetnsDriver::new(
            NetnsConfig {
                state_dir: dir.path().to_owned(),
                guest_prefix: "cloud-netns-unit-".into(),
                ..NetnsConfig::default()
            },
            Arc::new(DataPlane::new(Default::default())),
        );
        assert_eq!(d.kind(), "netns");
        let id = InstanceId::new();
        assert!(matches!(d.info(id).await, Err(DriverError::NotFound(_))));
        assert!(matches!(
            d.power_on(id).await,
            Err(DriverError::NotFound(_))
        ));
        assert!(matches!(
            d.console_output(id, 10).await,
            Err(DriverError::NotFound(_))
        ));
        assert!(d.list().await.unwrap().is_empty());
        d.destroy(id).await.unwrap();
        let r = d.host_resources().await.unwrap();
        assert_eq!(
            (r.hypervisor_type.as_str(), r.numa_cells.len()),
            ("netns", 1)
        );
    }
}
