//! Interface attach and detach on simulated VMs.
//!
//! A fake VM keeps the NICs it was spawned with and those attached later,
//! in order, as a libvirt domain keeps its `<interface>` devices. A
//! running guest "sees" a hotplugged NIC on its console the way the test
//! guest reports one (`HOTPLUG=add NIC=ethN MAC=...`), so tests read the
//! same markers on both drivers. Both operations are idempotent (found by
//! the port's MAC), and failures can be injected: a failed attach leaves
//! the VM without the NIC.

use crate::{FakeDriver, FakeVm};
use cloud_driver::{DriverError, NicSpec, Op};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;

/// Injected attach faults.
#[derive(Debug, Default)]
pub(crate) struct InterfaceFaults {
    /// Attaches still to fail.
    fail: u32,
    /// Why they fail.
    message: String,
}

impl FakeDriver {
    /// Makes the next `n` interface attaches fail with `message` (the VM
    /// is left without the NIC), as a guest without a free PCI slot would.
    pub fn fail_next_attaches(&self, n: u32, message: &str) {
        let mut f = self.faults.lock().expect("faults lock");
        f.interfaces.fail = n;
        f.interfaces.message = message.to_owned();
    }

    /// The MACs of VM `id`'s NICs in device order (None: no such VM).
    pub fn nic_macs(&self, id: InstanceId) -> Option<Vec<String>> {
        self.vms
            .lock()
            .expect("vms lock")
            .get(&id)
            .map(|vm| vm.nics.iter().map(|n| n.mac.clone()).collect())
    }

    /// Plugs `nic` into VM `id`; `Ok` if it has a NIC with that MAC.
    pub(crate) fn attach_nic(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        let fault = {
            let mut f = self.faults.lock().expect("faults lock");
            (f.interfaces.fail > 0).then(|| {
                f.interfaces.fail -= 1;
                f.interfaces.message.clone()
            })
        };
        self.with_vm(id, |vm: &mut FakeVm| {
            if position(vm, &nic.mac).is_some() {
                return Ok(());
            }
            if let Some(message) = fault {
                return Err(DriverError::backend(
                    Op::AttachInterface,
                    id,
                    std::io::Error::other(message),
                ));
            }
            vm.nics.push(nic.clone());
            if vm.power != PowerState::Shutdown {
                let dev = vm.nics.len() - 1;
                vm.console
                    .push(format!("HOTPLUG=add NIC=eth{dev} MAC={}", nic.mac));
            }
            Ok(())
        })
    }

    /// Unplugs the NIC with `nic`'s MAC from VM `id`; `Ok` if it has none.
    pub(crate) fn detach_nic(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        self.with_vm(id, |vm: &mut FakeVm| {
            let Some(i) = position(vm, &nic.mac) else {
                return Ok(());
            };
            vm.nics.remove(i);
            if vm.power != PowerState::Shutdown {
                vm.console.push(format!("HOTPLUG=remove NIC=eth{i}"));
            }
            Ok(())
        })
    }
}

/// Where VM `vm` has a NIC with MAC `mac`.
fn position(vm: &FakeVm, mac: &str) -> Option<usize> {
    vm.nics.iter().position(|n| n.mac.eq_ignore_ascii_case(mac))
}
