//! Snapshots of simulated VMs.
//!
//! A fake VM has no disk, only the id of the image it was booted from.
//! Its snapshot is a small text file that names the VM and that image
//! (the "disk content"), deterministic for a given VM, so a server booted
//! from the snapshot can be told apart from one booted from the original
//! image: its root disk is the snapshot image, and its console says so.
//! Faults (fail the next N snapshots, slow snapshots) are injected like the
//! other operations' faults.

use crate::{FakeDriver, FakeVm};
use cloud_driver::{DiskSnapshot, DriverError, Op};
use cloud_model::InstanceId;
use std::path::Path;
use std::time::Duration;

/// Injected snapshot faults.
#[derive(Debug, Default)]
pub(crate) struct SnapshotFaults {
    /// Snapshots still to fail.
    fail: u32,
    /// Why they fail.
    message: String,
    /// How long a snapshot takes.
    delay: Duration,
}

/// The snapshot file of `vm`: what identifies it and its disk.
pub fn snapshot_content(id: InstanceId, name: &str, root_image: &str) -> String {
    format!(
        "cloud fake disk snapshot\ninstance {id}\nname {name}\nroot disk from image {root_image}\n"
    )
}

impl FakeDriver {
    /// Makes the next `n` snapshots fail with `message`.
    pub fn fail_next_snapshots(&self, n: u32, message: &str) {
        let mut f = self.faults.lock().expect("faults lock");
        f.snapshot.fail = n;
        f.snapshot.message = message.to_owned();
    }

    /// Makes every snapshot take `delay`.
    pub fn set_snapshot_delay(&self, delay: Duration) {
        self.faults.lock().expect("faults lock").snapshot.delay = delay;
    }

    /// The image VM `id`'s root disk came from (None: no such VM).
    pub fn root_image(&self, id: InstanceId) -> Option<String> {
        self.vms
            .lock()
            .expect("vms lock")
            .get(&id)
            .map(|vm| vm.root_image.clone())
    }

    /// Writes VM `id`'s snapshot file to `dest`; the VM keeps its state.
    pub(crate) async fn take_snapshot(
        &self,
        id: InstanceId,
        dest: &Path,
    ) -> Result<DiskSnapshot, DriverError> {
        let (fail, delay) = {
            let mut f = self.faults.lock().expect("faults lock");
            let s = &mut f.snapshot;
            let fail = (s.fail > 0).then(|| {
                s.fail -= 1;
                s.message.clone()
            });
            (fail, s.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let content = self.with_vm(id, |vm: &mut FakeVm| {
            Ok(snapshot_content(id, &vm.name, &vm.root_image))
        })?;
        if let Some(message) = fail {
            return Err(DriverError::backend(
                Op::Snapshot,
                id,
                std::io::Error::other(message),
            ));
        }
        tokio::fs::write(dest, content.as_bytes())
            .await
            .map_err(|e| DriverError::backend(Op::Snapshot, id, e))?;
        Ok(DiskSnapshot {
            disk_format: "raw".to_owned(),
            size: content.len() as u64,
        })
    }
}
