//! The fake driver: VMs that live in memory.
//!
//! It is a product feature, not a test double: `driver = "fake"` runs a
//! compute agent that simulates a host of any size, so one machine can
//! simulate thousands of hosts for scale tests, benchmarks and demos. Its
//! host resources and NUMA layout are configurable, and so are faults
//! (fail the next N spawns, slow spawns) for exercising rescheduling and
//! timeouts.

mod interfaces;
mod rescue;
mod serial;
mod snapshot;

pub use snapshot::snapshot_content;

use async_trait::async_trait;
use cloud_driver::{
    DiskSnapshot, Driver, DriverError, HostNetwork, HostResources, ImageSpec, NumaCell, Op,
    RebootKind, VmInfo, VmSpec,
};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The simulated host.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FakeConfig {
    /// Logical CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Disk in GiB.
    pub disk_gb: u64,
    /// NUMA cells; CPUs and memory are split evenly over them.
    pub numa_cells: u32,
    /// 2 MiB huge pages per cell.
    pub hugepages_2m_per_cell: u64,
    /// How long a spawn takes.
    pub spawn_delay_ms: u64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            vcpus: 16,
            memory_mb: 32768,
            disk_gb: 1000,
            numa_cells: 1,
            hugepages_2m_per_cell: 0,
            spawn_delay_ms: 0,
        }
    }
}

#[derive(Clone, Debug)]
struct FakeVm {
    name: String,
    power: PowerState,
    console: Vec<String>,
    /// Suspended: its memory is "on disk" (it shows as shut off, as a
    /// libvirt domain with a managed-save image does).
    saved: bool,
    /// NMIs received (crash dumps asked for): a simulated guest has no
    /// kernel to dump, so tests read this count instead.
    nmis: u32,
    /// The image its root disk came from (its "disk content").
    root_image: String,
    /// The rescue image it runs from while rescued.
    rescue: Option<String>,
    /// Its NICs in device order (spawned with, then attached).
    nics: Vec<cloud_driver::NicSpec>,
}

#[derive(Debug, Default)]
struct Faults {
    fail_spawns: u32,
    fail_message: String,
    spawn_delay: Option<Duration>,
    /// Why network applies fail, while they do.
    network_failure: Option<String>,
    /// Behave as a driver that cannot inject NMIs.
    no_nmi: bool,
    /// Snapshot failures and delay.
    snapshot: snapshot::SnapshotFaults,
    /// Rescue and unrescue failures.
    rescue: rescue::RescueFaults,
    /// Interface attach failures.
    interfaces: interfaces::InterfaceFaults,
}

/// The in-memory driver.
#[derive(Debug)]
pub struct FakeDriver {
    config: FakeConfig,
    vms: Mutex<HashMap<InstanceId, FakeVm>>,
    faults: Mutex<Faults>,
    /// The data plane this host would have: the last state applied, and
    /// how many states were applied (a simulated host carries no traffic,
    /// but what it was told to carry is what scale tests check).
    network: Mutex<(HostNetwork, u64)>,
    /// The VMs' simulated serial consoles (TCP listeners).
    serial: serial::SerialPorts,
}

impl FakeDriver {
    /// A host as configured.
    pub fn new(config: FakeConfig) -> Self {
        FakeDriver {
            config,
            vms: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            network: Mutex::new((HostNetwork::default(), 0)),
            serial: serial::SerialPorts::default(),
        }
    }

    /// Makes the next `n` spawns fail with `message`.
    pub fn fail_next_spawns(&self, n: u32, message: &str) {
        let mut f = self.faults.lock().expect("faults lock");
        f.fail_spawns = n;
        f.fail_message = message.to_owned();
    }

    /// Makes every network apply fail with `message` (None: they work
    /// again), as a host whose kernel lacks a feature would.
    pub fn fail_network_applies(&self, message: Option<&str>) {
        self.faults.lock().expect("faults lock").network_failure = message.map(str::to_owned);
    }

    /// Makes every spawn take `delay` (None: the configured delay).
    pub fn set_spawn_delay(&self, delay: Option<Duration>) {
        self.faults.lock().expect("faults lock").spawn_delay = delay;
    }

    /// Changes a VM's power state behind the control plane's back (as a
    /// guest shutting itself down would), for power-sync tests and demos.
    pub fn set_power_state(&self, id: InstanceId, power: PowerState) -> bool {
        match self.vms.lock().expect("vms lock").get_mut(&id) {
            Some(vm) => {
                vm.power = power;
                true
            }
            None => false,
        }
    }

    /// The data plane last applied, and how many times one was applied.
    pub fn network(&self) -> (HostNetwork, u64) {
        self.network.lock().expect("network lock").clone()
    }

    /// Makes this host behave as a driver without NMI support (`true`) or
    /// with it again, so the API's answer for such hosts can be tested.
    pub fn set_nmi_unsupported(&self, unsupported: bool) {
        self.faults.lock().expect("faults lock").no_nmi = unsupported;
    }

    /// How many NMIs VM `id` received (None: no such VM).
    pub fn nmi_count(&self, id: InstanceId) -> Option<u32> {
        self.vms
            .lock()
            .expect("vms lock")
            .get(&id)
            .map(|vm| vm.nmis)
    }

    /// How many VMs exist.
    pub fn vm_count(&self) -> usize {
        self.vms.lock().expect("vms lock").len()
    }

    fn with_vm<T>(
        &self,
        id: InstanceId,
        f: impl FnOnce(&mut FakeVm) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let mut vms = self.vms.lock().expect("vms lock");
        let vm = vms.get_mut(&id).ok_or(DriverError::NotFound(id))?;
        f(vm)
    }
}

#[async_trait]
impl Driver for FakeDriver {
    fn kind(&self) -> &'static str {
        "fake"
    }

    async fn host_resources(&self) -> Result<HostResources, DriverError> {
        let c = &self.config;
        let cells = c.numa_cells.max(1);
        let per_cell = c.vcpus / cells;
        let numa_cells = (0..cells)
            .map(|i| NumaCell {
                id: i,
                cpus: (i * per_cell..(i + 1) * per_cell).collect(),
                memory_mb: c.memory_mb / u64::from(cells),
                hugepages: if c.hugepages_2m_per_cell > 0 {
                    vec![(2048, c.hugepages_2m_per_cell)]
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok(HostResources {
            vcpus: c.vcpus,
            memory_mb: c.memory_mb,
            disk_gb: c.disk_gb,
            numa_cells,
            hypervisor_type: "fake".to_owned(),
            hypervisor_version: 1_000_000,
            cpu_arch: "x86_64".to_owned(),
        })
    }

    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        if self.vms.lock().expect("vms lock").contains_key(&spec.id) {
            return Ok(());
        }
        let (fail, delay) = {
            let mut f = self.faults.lock().expect("faults lock");
            let fail = if f.fail_spawns > 0 {
                f.fail_spawns -= 1;
                Some(f.fail_message.clone())
            } else {
                None
            };
            (
                fail,
                f.spawn_delay
                    .unwrap_or(Duration::from_millis(self.config.spawn_delay_ms)),
            )
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(message) = fail {
            return Err(DriverError::backend(
                Op::Spawn,
                spec.id,
                std::io::Error::other(message),
            ));
        }
        let console = vec![
            format!("fake hypervisor: defining {} ({})", spec.name, spec.id),
            format!(
                "fake hypervisor: {} vCPU, {} MiB RAM, {} NIC(s)",
                spec.flavor.vcpus,
                spec.flavor.ram_mb,
                spec.nics.len()
            ),
            format!("fake hypervisor: root disk from image {}", spec.image.id),
            format!("{} login: booted", spec.hostname),
            "TESTGUEST READY".to_owned(),
        ];
        self.vms.lock().expect("vms lock").insert(
            spec.id,
            FakeVm {
                name: spec.name.clone(),
                power: PowerState::Running,
                console,
                saved: false,
                nmis: 0,
                root_image: spec.image.id.clone(),
                rescue: None,
                nics: spec.nics.clone(),
            },
        );
        Ok(())
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), DriverError> {
        self.vms.lock().expect("vms lock").remove(&id);
        self.serial.close(id);
        Ok(())
    }

    async fn power_on(&self, id: InstanceId) -> Result<(), DriverError> {
        self.with_vm(id, |vm| {
            if vm.power != PowerState::Running {
                vm.power = PowerState::Running;
                if std::mem::take(&mut vm.saved) {
                    // As libvirt does: starting a saved domain restores it.
                    vm.console.push("TESTGUEST RESUMED".to_owned());
                } else {
                    vm.console.push(format!("{} login: booted", vm.name));
                }
            }
            Ok(())
        })
    }

    async fn power_off(&self, id: InstanceId, _timeout: Duration) -> Result<(), DriverError> {
        self.with_vm(id, |vm| {
            if vm.power != PowerState::Shutdown {
                vm.power = PowerState::Shutdown;
                vm.console.push("TESTGUEST POWEROFF".to_owned());
            }
            // Stopping a saved domain throws its saved memory away.
            vm.saved = false;
            Ok(())
        })
    }

    async fn reboot(&self, id: InstanceId, kind: RebootKind) -> Result<(), DriverError> {
        self.with_vm(id, |vm| {
            if kind == RebootKind::Soft && vm.power != PowerState::Running {
                return Err(DriverError::InvalidState {
                    current: vm.power,
                    requested: Op::Reboot,
                });
            }
            vm.power = PowerState::Running;
            vm.saved = false;
            vm.console.push(format!("reboot ({kind:?})"));
            vm.console.push(format!("{} login: booted", vm.name));
            Ok(())
        })
    }

    async fn pause(&self, id: InstanceId) -> Result<(), DriverError> {
        self.with_vm(id, |vm| match vm.power {
            PowerState::Paused => Ok(()),
            PowerState::Running => {
                vm.power = PowerState::Paused;
                Ok(())
            }
            current => Err(DriverError::InvalidState {
                current,
                requested: Op::Pause,
            }),
        })
    }

    async fn unpause(&self, id: InstanceId) -> Result<(), DriverError> {
        self.with_vm(id, |vm| match vm.power {
            PowerState::Running => Ok(()),
            PowerState::Paused => {
                vm.power = PowerState::Running;
                Ok(())
            }
            current => Err(DriverError::InvalidState {
                current,
                requested: Op::Unpause,
            }),
        })
    }

    async fn suspend(&self, id: InstanceId) -> Result<(), DriverError> {
        self.with_vm(id, |vm| match vm.power {
            PowerState::Shutdown if vm.saved => Ok(()),
            PowerState::Running | PowerState::Paused => {
                vm.power = PowerState::Shutdown;
                vm.saved = true;
                Ok(())
            }
            current => Err(DriverError::InvalidState {
                current,
                requested: Op::Suspend,
            }),
        })
    }

    async fn resume(&self, id: InstanceId) -> Result<(), DriverError> {
        self.with_vm(id, |vm| match vm.power {
            PowerState::Running => Ok(()),
            PowerState::Shutdown if vm.saved => {
                vm.power = PowerState::Running;
                vm.saved = false;
                vm.console.push("TESTGUEST RESUMED".to_owned());
                Ok(())
            }
            current => Err(DriverError::InvalidState {
                current,
                requested: Op::Resume,
            }),
        })
    }

    async fn inject_nmi(&self, id: InstanceId) -> Result<(), DriverError> {
        if self.faults.lock().expect("faults lock").no_nmi {
            return Err(DriverError::Unsupported {
                driver: self.kind(),
                op: Op::InjectNmi,
            });
        }
        self.with_vm(id, |vm| match vm.power {
            PowerState::Running | PowerState::Paused => {
                vm.nmis += 1;
                Ok(())
            }
            current => Err(DriverError::InvalidState {
                current,
                requested: Op::InjectNmi,
            }),
        })
    }

    async fn snapshot(
        &self,
        id: InstanceId,
        dest: &std::path::Path,
    ) -> Result<DiskSnapshot, DriverError> {
        self.take_snapshot(id, dest).await
    }

    async fn rescue(&self, spec: &VmSpec, rescue_image: &ImageSpec) -> Result<(), DriverError> {
        self.rescue_vm(spec.id, &rescue_image.id)
    }

    async fn unrescue(&self, id: InstanceId) -> Result<(), DriverError> {
        self.unrescue_vm(id)
    }

    async fn attach_interface(
        &self,
        id: InstanceId,
        nic: &cloud_driver::NicSpec,
    ) -> Result<(), DriverError> {
        self.attach_nic(id, nic)
    }

    async fn detach_interface(
        &self,
        id: InstanceId,
        nic: &cloud_driver::NicSpec,
    ) -> Result<(), DriverError> {
        self.detach_nic(id, nic)
    }

    async fn info(&self, id: InstanceId) -> Result<VmInfo, DriverError> {
        self.with_vm(id, |vm| {
            Ok(VmInfo {
                id,
                power_state: vm.power,
            })
        })
    }

    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        Ok(self
            .vms
            .lock()
            .expect("vms lock")
            .iter()
            .map(|(id, vm)| VmInfo {
                id: *id,
                power_state: vm.power,
            })
            .collect())
    }

    async fn apply_network(
        &self,
        desired: &HostNetwork,
    ) -> Result<cloud_driver::NetworkApplied, DriverError> {
        let failure = self
            .faults
            .lock()
            .expect("faults lock")
            .network_failure
            .clone();
        if let Some(why) = failure {
            return Err(DriverError::backend(
                Op::Network,
                InstanceId::from_uuid(uuid::Uuid::nil()),
                anyhow::anyhow!(why),
            ));
        }
        let mut n = self.network.lock().expect("network lock");
        n.0 = desired.clone();
        n.1 += 1;
        Ok(cloud_driver::NetworkApplied::default())
    }

    async fn serial_console(
        &self,
        id: InstanceId,
    ) -> Result<cloud_driver::SerialEndpoint, DriverError> {
        let name = self.with_vm(id, |vm| match vm.power {
            PowerState::Shutdown => Err(DriverError::InvalidState {
                current: vm.power,
                requested: Op::SerialConsole,
            }),
            _ => Ok(vm.name.clone()),
        })?;
        self.serial
            .endpoint(id, &name)
            .await
            .map_err(|e| DriverError::backend(Op::SerialConsole, id, e))
    }

    async fn console_output(
        &self,
        id: InstanceId,
        max_bytes: usize,
    ) -> Result<String, DriverError> {
        self.with_vm(id, |vm| {
            let mut text = vm.console.join("\n");
            text.push('\n');
            if text.len() > max_bytes {
                let mut cut = text.len() - max_bytes;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                text = text[cut..].to_owned();
            }
            Ok(text)
        })
    }
}
