//! Rescue and unrescue of simulated VMs.
//!
//! A rescued fake VM runs (it "boots" the rescue image with its own root
//! disk second, which its console says, as a real guest's would list two
//! disks), and remembers the rescue image until it is unrescued, which
//! boots its own root disk again. Both are idempotent, as the driver
//! contract asks. Failures are injected like the other operations' faults.

use crate::{FakeDriver, FakeVm};
use cloud_driver::{DriverError, Op};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;

/// Injected rescue and unrescue faults.
#[derive(Debug, Default)]
pub(crate) struct RescueFaults {
    /// Rescues or unrescues still to fail.
    fail: u32,
    /// Why they fail.
    message: String,
}

impl FakeDriver {
    /// Makes the next `n` rescues or unrescues fail with `message` (the VM
    /// is left as it was).
    pub fn fail_next_rescues(&self, n: u32, message: &str) {
        let mut f = self.faults.lock().expect("faults lock");
        f.rescue.fail = n;
        f.rescue.message = message.to_owned();
    }

    /// The rescue image VM `id` runs from (None: not rescued, or no such
    /// VM).
    pub fn rescue_image(&self, id: InstanceId) -> Option<String> {
        self.vms
            .lock()
            .expect("vms lock")
            .get(&id)
            .and_then(|vm| vm.rescue.clone())
    }

    /// Boots VM `id` from `image` with its root disk second; `Ok` if it is
    /// rescued already.
    pub(crate) fn rescue_vm(&self, id: InstanceId, image: &str) -> Result<(), DriverError> {
        let fault = self.next_rescue_fault();
        self.with_vm(id, |vm: &mut FakeVm| {
            if vm.rescue.is_some() {
                return Ok(());
            }
            if let Some(message) = fault {
                return Err(DriverError::backend(
                    Op::Rescue,
                    id,
                    std::io::Error::other(message),
                ));
            }
            vm.rescue = Some(image.to_owned());
            vm.console.extend([
                format!("fake hypervisor: rescue boot from image {image}"),
                format!(
                    "fake hypervisor: disks vda (rescue image {image}), vdb (root disk from image {})",
                    vm.root_image
                ),
            ]);
            boot(vm);
            Ok(())
        })
    }

    /// Boots a rescued VM `id` from its own root disk again and drops the
    /// rescue disk; `Ok` if it is not rescued.
    pub(crate) fn unrescue_vm(&self, id: InstanceId) -> Result<(), DriverError> {
        let fault = self.next_rescue_fault();
        self.with_vm(id, |vm: &mut FakeVm| {
            if vm.rescue.is_none() {
                return Ok(());
            }
            if let Some(message) = fault {
                return Err(DriverError::backend(
                    Op::Unrescue,
                    id,
                    std::io::Error::other(message),
                ));
            }
            vm.rescue = None;
            vm.console.push(format!(
                "fake hypervisor: boot from the root disk (image {})",
                vm.root_image
            ));
            boot(vm);
            Ok(())
        })
    }

    fn next_rescue_fault(&self) -> Option<String> {
        let mut f = self.faults.lock().expect("faults lock");
        let r = &mut f.rescue;
        (r.fail > 0).then(|| {
            r.fail -= 1;
            r.message.clone()
        })
    }
}

/// A fresh boot: running, no saved memory (a suspended guest's is thrown
/// away, as a hard power-off does).
fn boot(vm: &mut FakeVm) {
    vm.power = PowerState::Running;
    vm.saved = false;
    vm.console.push(format!("{} login: booted", vm.name));
    vm.console.push("TESTGUEST READY".to_owned());
}

#[cfg(test)]
mod tests {
    use crate::{FakeConfig, FakeDriver};
    use cloud_driver::{Driver, FlavorSpec, ImageSpec, VmSpec};
    use cloud_model::InstanceId;
    use cloud_model::instance::PowerState;
    use std::time::Duration;

    fn image(id: &str) -> ImageSpec {
        ImageSpec {
            id: id.to_owned(),
            disk_format: "raw".to_owned(),
            size: 1,
            checksum: String::new(),
            sha512: None,
            properties: Default::default(),
        }
    }

    fn spec() -> VmSpec {
        VmSpec {
            id: InstanceId::new(),
            name: "vm".to_owned(),
            hostname: "vm".to_owned(),
            project_id: "p".to_owned(),
            user_id: "u".to_owned(),
            flavor: FlavorSpec {
                id: "1".to_owned(),
                name: "tiny".to_owned(),
                vcpus: 1,
                ram_mb: 64,
                disk_gb: 1,
                swap_mb: 0,
                ephemeral_gb: 0,
                extra_specs: Default::default(),
            },
            image: image("root-img"),
            kernel: None,
            ramdisk: None,
            nics: Vec::new(),
            user_data: None,
            metadata: Default::default(),
            key: None,
            availability_zone: "nova".to_owned(),
            launch_index: 0,
            numa: None,
        }
    }

    #[tokio::test]
    async fn a_stopped_vm_is_rescued_running_and_unrescued_idempotently() {
        let d = FakeDriver::new(FakeConfig::default());
        let s = spec();
        d.spawn(&s).await.unwrap();
        d.power_off(s.id, Duration::ZERO).await.unwrap();
        d.fail_next_rescues(1, "no rescue today");
        let e = d.rescue(&s, &image("rescue-img")).await.unwrap_err();
        assert!(e.full_message().contains("no rescue today"), "{e}");
        assert_eq!(d.rescue_image(s.id), None);
        assert_eq!(
            d.info(s.id).await.unwrap().power_state,
            PowerState::Shutdown
        );

        for _ in 0..2 {
            d.rescue(&s, &image("rescue-img")).await.unwrap();
        }
        assert_eq!(d.rescue_image(s.id).as_deref(), Some("rescue-img"));
        assert_eq!(d.info(s.id).await.unwrap().power_state, PowerState::Running);
        let console = d.console_output(s.id, 1 << 20).await.unwrap();
        assert!(
            console.contains("vdb (root disk from image root-img)"),
            "{console}"
        );
        assert_eq!(
            console.matches("login: booted").count(),
            2,
            "one rescue boot"
        );

        for _ in 0..2 {
            d.unrescue(s.id).await.unwrap();
        }
        assert_eq!(d.rescue_image(s.id), None);
        let console = d.console_output(s.id, 1 << 20).await.unwrap();
        assert_eq!(console.matches("login: booted").count(), 3, "one more boot");
    }
}
