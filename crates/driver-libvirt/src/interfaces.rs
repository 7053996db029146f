//! Interface hotplug, as Nova's libvirt driver does it.
//!
//! - attach: `virDomainAttachDeviceFlags` of the same `<interface>` the
//!   domain builder writes for a NIC (a tap on the network's bridge, found
//!   by [`LibvirtDriver::nic_devices`] once the data plane made it), with
//!   `AFFECT_LIVE` for a running or paused guest and `AFFECT_CONFIG` so the
//!   NIC stays across stops and reboots; a stopped domain only gets the
//!   definition change;
//! - detach: `virDomainDetachDeviceFlags` matched by MAC, first from the
//!   running guest (which must acknowledge the unplug: we wait until the
//!   device is gone from the live definition, as Nova does), then from the
//!   persistent definition.
//!
//! Both look at where the NIC already is first, so a repeated call does
//! only what is missing; `instance.json` follows, so a later start checks
//! the new NIC's bridge and a rescue keeps the NIC.

use crate::LibvirtDriver;
use crate::connection::lookup;
use crate::domain_xml::InterfaceDef;
use cloud_driver::{DriverError, NicSpec, Op};
use cloud_model::InstanceId;
use std::time::{Duration, Instant};
use virt::sys;

/// How long a guest may take to release an unplugged NIC (TCG guests on
/// a busy host are slow to answer the ACPI eject).
const UNPLUG_WAIT: Duration = Duration::from_secs(60);
/// How often the live definition is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// Where a domain has the NIC of a MAC.
#[derive(Clone, Copy, Debug)]
struct Presence {
    /// The domain runs (or is paused).
    active: bool,
    /// The running guest has the NIC.
    live: bool,
    /// The persistent definition has it.
    config: bool,
}

/// Whether a domain XML has an interface with `mac` (libvirt writes
/// single quotes, we write double ones).
fn has_mac(xml: &str, mac: &str) -> bool {
    let xml = xml.to_ascii_lowercase();
    let mac = mac.to_ascii_lowercase();
    xml.contains(&format!("<mac address='{mac}'"))
        || xml.contains(&format!("<mac address=\"{mac}\""))
}

/// Where domain `id` has the NIC of `mac`.
async fn presence(
    drv: &LibvirtDriver,
    id: InstanceId,
    mac: &str,
    op: Op,
) -> Result<Presence, DriverError> {
    let mac = mac.to_owned();
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(None);
            };
            let active = d.is_active()?;
            let live = active && has_mac(&d.xml_desc(0)?, &mac);
            let config = has_mac(&d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)?, &mac);
            Ok(Some(Presence {
                active,
                live,
                config,
            }))
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))?
        .ok_or(DriverError::NotFound(id))
}

/// Runs a device change of `flags` with `xml` on domain `id`.
async fn change_device(
    drv: &LibvirtDriver,
    id: InstanceId,
    op: Op,
    xml: String,
    flags: u32,
) -> Result<(), DriverError> {
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(false);
            };
            match op {
                Op::DetachInterface => d.detach_device_flags(&xml, flags)?,
                _ => d.attach_device_flags(&xml, flags)?,
            }
            Ok(true)
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))?
        .then_some(())
        .ok_or(DriverError::NotFound(id))
}

/// The `<interface>` of `nic` on `bridge` with tap `tap`.
fn interface_xml(nic: &NicSpec, bridge: String, tap: String) -> String {
    InterfaceDef {
        mac: nic.mac.to_ascii_lowercase(),
        bridge,
        tap,
        mtu: nic.mtu,
    }
    .to_element()
    .render()
}

/// Plugs `nic` into domain `id` where it is missing (the running guest,
/// the definition).
pub async fn attach(drv: &LibvirtDriver, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
    let op = Op::AttachInterface;
    let fail = |e: anyhow::Error| DriverError::backend(op, id, e);
    let (bridge, tap) = drv
        .nic_devices(std::slice::from_ref(nic))
        .await
        .map_err(fail)?
        .pop()
        .ok_or_else(|| fail(anyhow::anyhow!("no device for the NIC")))?;
    let xml = interface_xml(nic, bridge, tap);
    let seen = presence(drv, id, &nic.mac, op).await?;
    let mut flags = 0;
    if seen.active && !seen.live {
        flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
    }
    if !seen.config {
        flags |= sys::VIR_DOMAIN_AFFECT_CONFIG;
    }
    if flags != 0 {
        change_device(drv, id, op, xml, flags).await?;
    }
    record_nics(drv, id, op, |nics| {
        if !nics.iter().any(|n| n.mac.eq_ignore_ascii_case(&nic.mac)) {
            nics.push(nic.clone());
        }
    })
}

/// Unplugs the NIC of `nic`'s MAC from domain `id`: from the running guest
/// (waiting until it let go), then from the definition.
pub async fn detach(drv: &LibvirtDriver, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
    let op = Op::DetachInterface;
    let xml = interface_xml(
        nic,
        cloud_dataplane::names::bridge_name(&nic.network_id),
        cloud_dataplane::names::tap_name(&nic.port_id),
    );
    let seen = presence(drv, id, &nic.mac, op).await?;
    if seen.live {
        change_device(drv, id, op, xml.clone(), sys::VIR_DOMAIN_AFFECT_LIVE).await?;
        wait_unplugged(drv, id, &nic.mac).await?;
    }
    if seen.config {
        change_device(drv, id, op, xml, sys::VIR_DOMAIN_AFFECT_CONFIG).await?;
    }
    record_nics(drv, id, op, |nics| {
        nics.retain(|n| !n.mac.eq_ignore_ascii_case(&nic.mac));
    })
}

/// Waits until the running guest of `id` no longer has the NIC of `mac`.
async fn wait_unplugged(drv: &LibvirtDriver, id: InstanceId, mac: &str) -> Result<(), DriverError> {
    let op = Op::DetachInterface;
    let deadline = Instant::now() + UNPLUG_WAIT;
    loop {
        if !presence(drv, id, mac, op).await?.live {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DriverError::backend(
                op,
                id,
                anyhow::anyhow!(
                    "the guest did not release the NIC {mac} within {UNPLUG_WAIT:?} (it \
                     ignores PCI unplug requests, or is paused)"
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Changes the NIC list of `instance.json` (absent for a domain we did
/// not spawn: nothing to change).
fn record_nics(
    drv: &LibvirtDriver,
    id: InstanceId,
    op: Op,
    change: impl FnOnce(&mut Vec<NicSpec>),
) -> Result<(), DriverError> {
    let dir = drv.dir(id);
    let fail = |e: anyhow::Error| DriverError::backend(op, id, e);
    if let Some(mut record) = dir.read_record().map_err(fail)? {
        change(&mut record.spec.nics);
        dir.write_record(&record).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_found_in_both_quotings() {
        let ours = interface_xml(
            &NicSpec {
                port_id: "p".into(),
                network_id: "n".into(),
                mac: "FA:16:3E:00:00:01".into(),
                ip: None,
                prefix: None,
                gateway: None,
                dns: Vec::new(),
                dhcp: true,
                mtu: 1450,
            },
            "brq1".into(),
            "tap1".into(),
        );
        assert!(has_mac(&ours, "fa:16:3e:00:00:01"), "{ours}");
        assert!(ours.contains("<mtu size=\"1450\"/>"), "{ours}");
        let libvirts = "<interface type='bridge'><mac address='fa:16:3e:00:00:01'/></interface>";
        assert!(has_mac(libvirts, "FA:16:3E:00:00:01"));
        assert!(!has_mac(libvirts, "fa:16:3e:00:00:02"));
    }
}
