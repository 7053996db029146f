//! Pause and suspend, as Nova's libvirt driver does them.
//!
//! - pause: `virDomainSuspend` freezes the vCPUs; memory stays on the host
//!   and the domain shows as paused; unpause is `virDomainResume`;
//! - suspend: a managed save (`virDomainManagedSave`) writes the guest's
//!   memory and device state to libvirt's managed-save file and stops the
//!   domain, so it holds no CPU or memory until resumed; resume starts the
//!   domain, which libvirt restores from that file (the guest carries on,
//!   no reboot). The save asks libvirt to restore a running guest even when
//!   a paused one was saved, so a resume always ends running.
//!
//! A suspended domain is shut off with a managed-save image; it is reported
//! as SHUTDOWN, as Nova does. Destroying it removes the image with it
//! (`VIR_DOMAIN_UNDEFINE_MANAGED_SAVE`).

use crate::LibvirtDriver;
use crate::connection::{lookup, power_state};
use crate::power::start;
use cloud_driver::{DriverError, Op};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use virt::domain::Domain;
use virt::sys;

/// What a domain looks like to these operations.
struct Seen {
    power: PowerState,
    saved: bool,
}

/// Runs `f` on the domain of `id` with the state it is in; `f` answers
/// `Err(state)` when that state does not allow the operation.
async fn with_domain<T: Send + 'static>(
    drv: &LibvirtDriver,
    id: InstanceId,
    op: Op,
    f: impl FnOnce(&Domain, &Seen) -> Result<Result<T, PowerState>, virt::error::Error> + Send + 'static,
) -> Result<T, DriverError> {
    let done = drv
        .virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(None);
            };
            let seen = Seen {
                power: power_state(&d)?,
                saved: d.has_managed_save(0)?,
            };
            f(&d, &seen).map(Some)
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))?
        .ok_or(DriverError::NotFound(id))?;
    done.map_err(|current| DriverError::InvalidState {
        current,
        requested: op,
    })
}

/// Freezes a running guest; `Ok` if it is paused.
pub async fn pause(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    with_domain(drv, id, Op::Pause, |d, seen| match seen.power {
        PowerState::Paused => Ok(Ok(())),
        PowerState::Running => d.suspend().map(Ok),
        other => Ok(Err(other)),
    })
    .await
}

/// Lets a paused guest run; `Ok` if it runs.
pub async fn unpause(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    with_domain(drv, id, Op::Unpause, |d, seen| match seen.power {
        PowerState::Running => Ok(Ok(())),
        PowerState::Paused => d.resume().map(Ok),
        other => Ok(Err(other)),
    })
    .await
}

/// Saves a running or paused guest's memory to disk and stops it; `Ok` if
/// it is saved already.
pub async fn suspend(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    with_domain(drv, id, Op::Suspend, |d, seen| match seen.power {
        PowerState::Shutdown if seen.saved => Ok(Ok(())),
        PowerState::Running | PowerState::Paused => {
            d.managed_save(sys::VIR_DOMAIN_SAVE_RUNNING).map(Ok)
        }
        other => Ok(Err(other)),
    })
    .await
}

/// Restores a suspended guest from its managed save; `Ok` if it runs.
pub async fn resume(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    let saved = with_domain(drv, id, Op::Resume, |_, seen| match seen.power {
        PowerState::Running => Ok(Ok(false)),
        PowerState::Shutdown if seen.saved => Ok(Ok(true)),
        other => Ok(Err(other)),
    })
    .await?;
    if saved {
        // Starting a domain with a managed-save image restores it (after
        // its NICs' bridges are back, as for any start).
        start(drv, id, Op::Resume).await?;
    }
    Ok(())
}
