//! Power operations with Nova's semantics, and reading state.
//!
//! - power off: ACPI power button (`virDomainShutdown`), poll until the
//!   domain is off or the timeout passes, then force it off (destroy);
//! - soft reboot: as Nova's libvirt driver does it, ACPI shutdown, wait for
//!   the guest to power off, start it again; a guest that ignores ACPI (or
//!   is not running) gets a hard reboot instead. A domain that stays
//!   running cannot tell whether an ACPI *reboot* happened, an ACPI
//!   power-off can be seen, so the fallback is reliable;
//! - hard reboot: force off (if running), drop a suspended guest's
//!   managed-save image (or the start would restore it: a resume, not a
//!   boot), re-plug the network, start;
//! - power on: re-plug the network (bridges vanish with a host reboot),
//!   start.

use crate::LibvirtDriver;
use crate::connection::{is, lookup, power_state};
use crate::metadata::{self, InstanceMetadata};
use cloud_driver::{DriverError, Op, RebootKind, VmInfo};
use cloud_model::InstanceId;
use std::time::{Duration, Instant};
use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber};
use virt::sys;

/// How often a shutting-down guest is polled.
const POLL: Duration = Duration::from_millis(250);

/// Whether the domain runs; `Err(NotFound)` when there is no domain.
async fn active(drv: &LibvirtDriver, id: InstanceId, op: Op) -> Result<bool, DriverError> {
    drv.virt
        .run(move |c| lookup(c, id)?.map(|d| d.is_active()).transpose())
        .await
        .map_err(|e| DriverError::backend(op, id, e))?
        .ok_or(DriverError::NotFound(id))
}

/// Starts the (defined, stopped) domain, once its NICs' bridges exist
/// (the data plane rebuilds them after a host reboot).
pub(crate) async fn start(drv: &LibvirtDriver, id: InstanceId, op: Op) -> Result<(), DriverError> {
    let fail = |e: anyhow::Error| DriverError::backend(op, id, e);
    if let Some(record) = drv.dir(id).read_record().map_err(fail)? {
        drv.nic_devices(&record.spec.nics).await.map_err(fail)?;
    }
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(false);
            };
            match d.create() {
                Ok(()) => Ok(true),
                // Started by someone else meanwhile: fine.
                Err(e) if is(&e, ErrorNumber::OperationInvalid) && d.is_active()? => Ok(true),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(fail)?
        .then_some(())
        .ok_or(DriverError::NotFound(id))
}

/// Forces the domain off; `Ok` if it already is.
async fn force_off(drv: &LibvirtDriver, id: InstanceId, op: Op) -> Result<(), DriverError> {
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(());
            };
            match d.destroy() {
                Ok(()) => Ok(()),
                Err(e) if is(&e, ErrorNumber::OperationInvalid) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))
}

/// Presses the ACPI power button and waits up to `timeout` for the guest
/// to turn off. Returns whether it did.
async fn acpi_shutdown(
    drv: &LibvirtDriver,
    id: InstanceId,
    timeout: Duration,
    op: Op,
) -> Result<bool, DriverError> {
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(());
            };
            match d.shutdown_flags(sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) {
                Ok(_) => Ok(()),
                // Went off meanwhile.
                Err(e) if is(&e, ErrorNumber::OperationInvalid) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))?;
    let deadline = Instant::now() + timeout;
    loop {
        if !active(drv, id, op).await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Starts a stopped VM; `Ok` if it runs.
pub async fn power_on(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    if active(drv, id, Op::PowerOn).await? {
        return Ok(());
    }
    start(drv, id, Op::PowerOn).await
}

/// Clean shutdown with a forced fallback; `Ok` if already off.
pub async fn power_off(
    drv: &LibvirtDriver,
    id: InstanceId,
    timeout: Duration,
    op: Op,
) -> Result<(), DriverError> {
    if !active(drv, id, op).await? {
        return Ok(());
    }
    if !acpi_shutdown(drv, id, timeout, op).await? {
        tracing::info!(instance = %id, ?timeout, "guest ignored ACPI shutdown; forcing it off");
        force_off(drv, id, op).await?;
    }
    Ok(())
}

/// Soft or hard reboot (see the module docs).
pub async fn reboot(
    drv: &LibvirtDriver,
    id: InstanceId,
    kind: RebootKind,
) -> Result<(), DriverError> {
    let op = Op::Reboot;
    let running = active(drv, id, op).await?;
    if kind == RebootKind::Soft && running {
        if acpi_shutdown(drv, id, drv.config.shutdown_timeout(), op).await? {
            return start(drv, id, op).await;
        }
        tracing::info!(instance = %id, "soft reboot timed out; rebooting hard");
    }
    force_off(drv, id, op).await?;
    discard_saved_memory(drv, id, op).await?;
    start(drv, id, op).await
}

/// Removes the managed-save image a suspend left (`virDomainManagedSaveRemove`),
/// so the next start boots the guest afresh instead of restoring it; `Ok`
/// when there is none.
async fn discard_saved_memory(
    drv: &LibvirtDriver,
    id: InstanceId,
    op: Op,
) -> Result<(), DriverError> {
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(());
            };
            if d.has_managed_save(0)? {
                d.managed_save_remove(0)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))
}

/// The power state of one of our domains.
pub async fn info(drv: &LibvirtDriver, id: InstanceId) -> Result<VmInfo, DriverError> {
    let owner = drv.owner.clone();
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(None);
            };
            if ours(&d, &owner)?.is_none() {
                return Ok(None);
            }
            Ok(Some(power_state(&d)?))
        })
        .await
        .map_err(|e| DriverError::backend(Op::Info, id, e))?
        .map(|power_state| VmInfo { id, power_state })
        .ok_or(DriverError::NotFound(id))
}

/// Every domain carrying our metadata with this driver as its owner.
pub async fn list(drv: &LibvirtDriver) -> Result<Vec<VmInfo>, DriverError> {
    let owner = drv.owner.clone();
    drv.virt
        .run(move |c| {
            let mut out = Vec::new();
            for d in c.list_all_domains(0)? {
                let meta = match ours(&d, &owner) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    // Undefined between listing and reading: skip it.
                    Err(e) if is(&e, ErrorNumber::NoDomain) => continue,
                    Err(e) => return Err(e),
                };
                let power_state = match power_state(&d) {
                    Ok(s) => s,
                    Err(e) if is(&e, ErrorNumber::NoDomain) => continue,
                    Err(e) => return Err(e),
                };
                out.push(VmInfo {
                    id: meta.uuid,
                    power_state,
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| DriverError::backend(Op::List, InstanceId::from_uuid(uuid::Uuid::nil()), e))
}

/// Our metadata element of `d`, `None` for domains that are not ours:
/// another program's, or built by another driver sharing this libvirtd
/// (a different `owner`).
fn ours(d: &Domain, owner: &str) -> Result<Option<InstanceMetadata>, VirtError> {
    match d.metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        Some(metadata::NAMESPACE),
        0,
    ) {
        Ok(xml) => Ok(InstanceMetadata::parse(&xml).filter(|m| m.owner == owner)),
        Err(e) if is(&e, ErrorNumber::NoDomainMetadata) => Ok(None),
        Err(e) => Err(e),
    }
}
