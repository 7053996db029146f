//! Snapshots of a guest's root disk (createImage, and shelve's capture).
//!
//! The root disk is a qcow2 overlay over a cached base image; the snapshot
//! is `qemu-img convert -O qcow2` of the overlay, which flattens the
//! backing chain into one self-contained qcow2 file the image API can
//! store and any host can boot.
//!
//! Consistency without a guest agent (no filesystem freeze inside the
//! guest): the disk must not change while it is read, and QEMU must have
//! written out everything it caches. So:
//!
//! - a running guest gets a managed save (`virDomainManagedSave`, the same
//!   save suspend uses): QEMU flushes the disk, writes the guest's memory
//!   to libvirt's managed-save file and exits; the overlay is converted;
//!   then the domain is started, which restores it from the save: the
//!   guest carries on where it was, without a reboot (its clock jumps by
//!   the pause, as after a suspend). The disk captured is exactly the one
//!   that goes with the saved memory, i.e. what a crash at that instant
//!   would leave, which is what a guest's filesystem journal recovers from.
//! - a paused guest is saved the same way with `VIR_DOMAIN_SAVE_PAUSED`,
//!   so the restore leaves it paused, as it was: only freezing the vCPUs
//!   would leave QEMU holding the image open (locked) with writes it has
//!   not flushed;
//! - a stopped guest, or a suspended one (already saved: its disk is
//!   quiescent), is just converted.
//!
//! We prefer this to a live block copy (`virDomainBlockCopy` to a new
//! file, then abort the job): that needs the guest's cooperation to be
//! consistent anyway (a freeze through the QEMU guest agent, which our
//! images need not run), and the managed save pauses the guest only for
//! the save and the conversion of one disk. If the conversion fails, the
//! guest is still restored before the error is returned.

use crate::LibvirtDriver;
use crate::connection::{lookup, power_state};
use crate::disks;
use crate::power::start;
use cloud_driver::{DiskSnapshot, DriverError, Op};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use std::path::Path;
use virt::sys;

/// What the guest was doing when the snapshot began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Before {
    /// Running or paused: saved for the capture, restored after it.
    Saved,
    /// Stopped or suspended: nothing to do around the capture.
    Quiet,
}

/// Captures guest `id`'s root disk into `dest` (qcow2, flattened) and
/// leaves the guest in the state it was in.
pub async fn snapshot(
    drv: &LibvirtDriver,
    id: InstanceId,
    dest: &Path,
) -> Result<DiskSnapshot, DriverError> {
    let disk = drv.dir(id).disk();
    if !disk.exists() {
        return Err(DriverError::NotFound(id));
    }
    let before = quiesce(drv, id).await?;
    let converted = disks::convert_to_qcow2(&disk, "qcow2", dest).await;
    if before == Before::Saved {
        // Restore from the managed save whatever the conversion did.
        start(drv, id, Op::Snapshot).await?;
    }
    converted.map_err(|e| DriverError::backend(Op::Snapshot, id, e))?;
    let size = tokio::fs::metadata(dest)
        .await
        .map_err(|e| DriverError::backend(Op::Snapshot, id, e))?
        .len();
    tracing::info!(instance = %id, ?before, bytes = size, "root disk captured");
    Ok(DiskSnapshot {
        disk_format: "qcow2".to_owned(),
        size,
    })
}

/// Makes the disk quiescent: a managed save of a running or paused guest
/// (restored paused if it was paused); nothing for a stopped one.
async fn quiesce(drv: &LibvirtDriver, id: InstanceId) -> Result<Before, DriverError> {
    let before = drv
        .virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(None);
            };
            let before = match power_state(&d)? {
                PowerState::Running => {
                    d.managed_save(sys::VIR_DOMAIN_SAVE_RUNNING)?;
                    Before::Saved
                }
                PowerState::Paused => {
                    d.managed_save(sys::VIR_DOMAIN_SAVE_PAUSED)?;
                    Before::Saved
                }
                _ => Before::Quiet,
            };
            Ok(Some(before))
        })
        .await
        .map_err(|e| DriverError::backend(Op::Snapshot, id, e))?
        .ok_or(DriverError::NotFound(id))?;
    Ok(before)
}
