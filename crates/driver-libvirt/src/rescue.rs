//! Rescue and unrescue, as Nova's libvirt driver does them.
//!
//! - rescue: the guest is shut down (cleanly, forced after the shutdown
//!   timeout), its inactive domain definition is saved in the instance
//!   directory (`unrescue.xml`), and the domain is redefined from the spec
//!   with a fresh rescue disk (`disk.rescue`, a qcow2 overlay of the rescue
//!   image) as the first disk (`vda`) and the instance's own root disk as
//!   the second (`vdb`), keeping its NICs and config drive; then it starts;
//! - unrescue: the rescue guest is forced off (its disk is thrown away),
//!   the saved definition is defined again, the rescue disk is removed and
//!   the guest boots its own disk.
//!
//! Both survive an agent restart: whether the domain runs the rescue disk
//! is read from libvirt, and the original definition from the instance
//! directory. Each step is safe to repeat, so a redelivered message or a
//! retry after a crash half-way finishes the job. A rescue that fails
//! after the guest was stopped puts the original definition back and
//! starts the guest again if it was running, so the server is what it was.
//! While rescued, the rescue image is recorded among the instance's images
//! (`instance.json`), so the image cache keeps its base.

use crate::LibvirtDriver;
use crate::connection::{is, lookup};
use crate::disks;
use crate::domain_xml::{BuildContext, DiskDef, DomainDef};
use crate::image_cache::CacheError;
use crate::instance_dir::InstanceDir;
use crate::power;
use anyhow::Context;
use cloud_driver::{DriverError, ImageSpec, Op, VmSpec};
use cloud_model::InstanceId;
use std::path::PathBuf;
use virt::error::ErrorNumber;
use virt::sys;

/// The rescue disk in the instance directory.
fn rescue_disk(dir: &InstanceDir) -> PathBuf {
    dir.path().join("disk.rescue")
}

/// The domain definition to go back to, saved by a rescue.
fn unrescue_xml(dir: &InstanceDir) -> PathBuf {
    dir.path().join("unrescue.xml")
}

/// The rescue image, when the rescue added it to `instance.json`'s images
/// (so unrescue knows to take it out again).
fn rescue_image_note(dir: &InstanceDir) -> PathBuf {
    dir.path().join("rescue.image")
}

/// What libvirt says about the domain: its inactive definition and
/// whether it runs. `NotFound` without a domain.
async fn domain_now(
    drv: &LibvirtDriver,
    id: InstanceId,
    op: Op,
) -> Result<(String, bool), DriverError> {
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(None);
            };
            Ok(Some((
                d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)?,
                d.is_active()?,
            )))
        })
        .await
        .map_err(|e| DriverError::backend(op, id, e))?
        .ok_or(DriverError::NotFound(id))
}

/// Whether a domain definition boots the rescue disk.
fn boots_rescue_disk(xml: &str, dir: &InstanceDir) -> bool {
    xml.contains(&*rescue_disk(dir).to_string_lossy())
}

/// Boots `spec`'s VM from `rescue_image` with its own root disk second;
/// `Ok` if it does already.
pub async fn rescue(
    drv: &LibvirtDriver,
    spec: &VmSpec,
    rescue_image: &ImageSpec,
) -> Result<(), DriverError> {
    let id = spec.id;
    let dir = drv.dir(id);
    let (xml, running) = domain_now(drv, id, Op::Rescue).await?;
    if boots_rescue_disk(&xml, &dir) {
        if !running {
            power::start(drv, id, Op::Rescue).await?;
        }
        return Ok(());
    }
    // The download (the slow part) while the guest still runs.
    let base = drv.images.ensure(rescue_image).await.map_err(|e| match e {
        CacheError::Image { image, message } => DriverError::Image { image, message },
        CacheError::Host(source) => DriverError::backend(Op::Rescue, id, source),
    })?;
    power::power_off(drv, id, drv.config.shutdown_timeout(), Op::Rescue).await?;
    let saved = unrescue_xml(&dir);
    if !saved.exists() {
        // An earlier rescue that stopped half-way saved the original.
        std::fs::write(&saved, &xml)
            .with_context(|| format!("cannot write {}", saved.display()))
            .map_err(|e| DriverError::backend(Op::Rescue, id, e))?;
    }
    match boot_rescue(drv, spec, rescue_image, &base.path, base.format).await {
        Ok(()) => {
            tracing::info!(instance = %id, image = %rescue_image.id, "VM rescued");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "rescue failed; restoring the VM");
            if let Err(undo) = restore(drv, id, running, Op::Rescue).await {
                tracing::error!(instance = %id, error = %undo.full_message(), "cannot restore the VM after a failed rescue");
            }
            Err(DriverError::backend(Op::Rescue, id, e))
        }
    }
}

/// The rescue disk, the record of its image, the rescue definition, and
/// the start.
async fn boot_rescue(
    drv: &LibvirtDriver,
    spec: &VmSpec,
    rescue_image: &ImageSpec,
    base: &std::path::Path,
    base_format: &str,
) -> anyhow::Result<()> {
    let id = spec.id;
    let dir = drv.dir(id);
    let disk = rescue_disk(&dir);
    let _ = std::fs::remove_file(&disk);
    disks::create_overlay(base, base_format, &disk, None).await?;
    note_rescue_image(&dir, &rescue_image.id)?;
    let nic_devices = drv.nic_devices(&spec.nics).await?;
    let mut def = rescue_definition(
        spec,
        rescue_image,
        &BuildContext {
            virt_type: drv.virt_type,
            cpu_mode: drv.cpu_mode,
            root_disk: disk,
            config_drive: Some(dir.config_drive()).filter(|p| p.exists()),
            console_log: dir.console_log(),
            kernel: None,
            nic_devices,
            owner: drv.owner.clone(),
        },
        &dir,
    );
    // The rescued guest keeps its serial console (and its port: the
    // domain still holds it).
    crate::serial::assign(drv, &mut def).await?;
    let xml = def.to_xml();
    tracing::debug!(instance = %id, %xml, "defining the rescue domain");
    drv.virt
        .run(move |c| {
            c.define_domain_xml(&xml)?.create()?;
            Ok(())
        })
        .await
}

/// The domain of `spec` booting `ctx.root_disk` (the rescue disk) as
/// `vda`, with the instance's own disk as `vdb`. An instance that boots
/// its kernel directly keeps doing so when it is rescued with its own
/// image (whose disk has no bootloader).
pub fn rescue_definition(
    spec: &VmSpec,
    rescue_image: &ImageSpec,
    ctx: &BuildContext,
    dir: &InstanceDir,
) -> DomainDef {
    let mut ctx = ctx.clone();
    if rescue_image.id == spec.image.id && dir.kernel().exists() {
        let ramdisk = Some(dir.ramdisk()).filter(|p| p.exists());
        ctx.kernel = Some((dir.kernel(), ramdisk));
    }
    let mut def = DomainDef::from_spec(spec, &ctx);
    def.disks.insert(
        1,
        DiskDef {
            source: dir.disk(),
            format: "qcow2",
            device: "disk",
            target: "vdb",
            bus: "virtio",
            readonly: false,
        },
    );
    def
}

/// Records the rescue image among the instance's images while it is in
/// use (unless it is one of them already).
fn note_rescue_image(dir: &InstanceDir, image: &str) -> anyhow::Result<()> {
    let Some(mut record) = dir.read_record()? else {
        return Ok(());
    };
    if record.image_ids.iter().any(|i| i == image) {
        return Ok(());
    }
    std::fs::write(rescue_image_note(dir), image)?;
    record.image_ids.push(image.to_owned());
    dir.write_record(&record)
}

/// Takes the rescue image out of the instance's images again, if the
/// rescue put it there.
fn forget_rescue_image(dir: &InstanceDir) -> anyhow::Result<()> {
    let note = rescue_image_note(dir);
    let image = match std::fs::read_to_string(&note) {
        Ok(i) => i,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", note.display())),
    };
    if let Some(mut record) = dir.read_record()? {
        record.image_ids.retain(|i| *i != image);
        dir.write_record(&record)?;
    }
    remove(&note)
}

fn remove(path: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Boots a rescued VM from its own disk again; `Ok` if it is not rescued.
pub async fn unrescue(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    let dir = drv.dir(id);
    let (xml, _) = domain_now(drv, id, Op::Unrescue).await?;
    let saved = unrescue_xml(&dir);
    if !boots_rescue_disk(&xml, &dir) && !saved.exists() {
        return Ok(());
    }
    restore(drv, id, true, Op::Unrescue).await?;
    tracing::info!(instance = %id, "VM unrescued");
    Ok(())
}

/// Forces the rescue guest off, defines the saved definition again (when
/// the domain still boots the rescue disk), drops the rescue disk and its
/// files, and starts the guest if `start`.
async fn restore(
    drv: &LibvirtDriver,
    id: InstanceId,
    start: bool,
    op: Op,
) -> Result<(), DriverError> {
    let fail = |e: anyhow::Error| DriverError::backend(op, id, e);
    let dir = drv.dir(id);
    let (xml, _) = domain_now(drv, id, op).await?;
    if boots_rescue_disk(&xml, &dir) {
        let saved = unrescue_xml(&dir);
        let original = std::fs::read_to_string(&saved)
            .with_context(|| {
                format!(
                    "the domain boots its rescue disk but its own definition ({}) is gone",
                    saved.display()
                )
            })
            .map_err(fail)?;
        drv.virt
            .run(move |c| {
                if let Some(d) = lookup(c, id)? {
                    match d.destroy() {
                        Err(e) if !is(&e, ErrorNumber::OperationInvalid) => return Err(e),
                        _ => {}
                    }
                }
                c.define_domain_xml(&original)?;
                Ok(())
            })
            .await
            .map_err(fail)?;
    }
    remove(&rescue_disk(&dir)).map_err(fail)?;
    forget_rescue_image(&dir).map_err(fail)?;
    remove(&unrescue_xml(&dir)).map_err(fail)?;
    if start {
        let (_, running) = domain_now(drv, id, op).await?;
        if !running {
            power::start(drv, id, op).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CpuMode, VirtType};
    use crate::testutil::spec;

    fn ctx(dir: &InstanceDir) -> BuildContext {
        BuildContext {
            virt_type: VirtType::Qemu,
            cpu_mode: CpuMode::default_for(VirtType::Qemu),
            root_disk: rescue_disk(dir),
            config_drive: Some(dir.config_drive()),
            console_log: dir.console_log(),
            kernel: None,
            nic_devices: vec![("brq1".into(), "tap1".into())],
            owner: "/srv/instances".into(),
        }
    }

    #[test]
    fn the_rescue_domain_boots_the_rescue_disk_with_the_own_disk_second() {
        let root = tempfile::tempdir().unwrap();
        let s = spec();
        let dir = InstanceDir::new(root.path(), s.id);
        let def = rescue_definition(&s, &s.image, &ctx(&dir), &dir);
        let disks: Vec<_> = def
            .disks
            .iter()
            .map(|d| (d.source.clone(), d.target, d.device))
            .collect();
        assert_eq!(
            disks,
            vec![
                (rescue_disk(&dir), "vda", "disk"),
                (dir.disk(), "vdb", "disk"),
                (dir.config_drive(), "hda", "cdrom"),
            ]
        );
        assert_eq!(def.interfaces.len(), 1, "the NIC is kept");
        assert!(def.os.direct_boot.is_none());
        let xml = def.to_xml();
        assert!(boots_rescue_disk(&xml, &dir), "{xml}");
        assert!(!boots_rescue_disk(
            &DomainDef::from_spec(
                &s,
                &BuildContext {
                    root_disk: dir.disk(),
                    ..ctx(&dir)
                }
            )
            .to_xml(),
            &dir
        ));
    }

    #[test]
    fn a_direct_boot_instance_rescued_with_its_own_image_keeps_its_kernel() {
        let root = tempfile::tempdir().unwrap();
        let s = spec();
        let dir = InstanceDir::new(root.path(), s.id);
        dir.create().unwrap();
        std::fs::write(dir.kernel(), b"k").unwrap();
        let def = rescue_definition(&s, &s.image, &ctx(&dir), &dir);
        let boot = def.os.direct_boot.expect("direct boot");
        assert_eq!(boot.kernel, dir.kernel());
        assert_eq!(boot.initrd, None);
        let other = ImageSpec {
            id: "another".into(),
            ..s.image.clone()
        };
        assert!(
            rescue_definition(&s, &other, &ctx(&dir), &dir)
                .os
                .direct_boot
                .is_none()
        );
    }

    #[test]
    fn the_rescue_image_is_in_use_while_rescued_only() {
        use crate::instance_dir::{InstanceRecord, images_in_use};
        let root = tempfile::tempdir().unwrap();
        let s = spec();
        let dir = InstanceDir::new(root.path(), s.id);
        dir.create().unwrap();
        dir.write_record(&InstanceRecord {
            spec: s.clone(),
            image_ids: vec![s.image.id.clone()],
        })
        .unwrap();
        note_rescue_image(&dir, &s.image.id).unwrap();
        assert_eq!(images_in_use(root.path()).len(), 1);
        forget_rescue_image(&dir).unwrap();
        assert!(
            images_in_use(root.path()).contains(&s.image.id),
            "own image kept"
        );

        note_rescue_image(&dir, "rescue-img").unwrap();
        assert!(images_in_use(root.path()).contains("rescue-img"));
        forget_rescue_image(&dir).unwrap();
        let used = images_in_use(root.path());
        assert!(!used.contains("rescue-img") && used.contains(&s.image.id));
        forget_rescue_image(&dir).unwrap();
    }
}
