//! Building a VM (image, overlay, config drive, network, domain) and
//! tearing it down again. A spawn that fails half-way removes what it
//! made, so a failed boot leaves nothing behind on the host.

use crate::LibvirtDriver;
use crate::config_drive;
use crate::connection::{is, lookup};
use crate::disks;
use crate::domain_xml::{BuildContext, DomainDef};
use crate::image_cache::CacheError;
use crate::instance_dir::{InstanceDir, InstanceRecord};
use anyhow::Context;
use cloud_driver::{DriverError, ImageSpec, Op, VmSpec};
use cloud_model::InstanceId;
use std::path::{Path, PathBuf};
use virt::error::ErrorNumber;
use virt::sys;

const GIB: u64 = 1 << 30;

/// Creates and starts `spec`'s VM; `Ok` at once if its domain exists.
pub async fn spawn(drv: &LibvirtDriver, spec: &VmSpec) -> Result<(), DriverError> {
    let id = spec.id;
    let exists = drv
        .virt
        .run(move |c| Ok(lookup(c, id)?.is_some()))
        .await
        .map_err(|e| DriverError::backend(Op::Spawn, id, e))?;
    if exists {
        return Ok(());
    }
    validate(spec).map_err(|e| DriverError::backend(Op::Spawn, id, e))?;
    match build(drv, spec).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(instance = %id, error = %e.full_message(), "spawn failed; cleaning up");
            if let Err(cleanup) = destroy(drv, id).await {
                tracing::error!(instance = %id, error = %cleanup.full_message(), "cleanup after a failed spawn failed");
            }
            Err(e)
        }
    }
}

/// What the conductor sends is trusted, but values that end up in host
/// commands and interface names are still checked.
fn validate(spec: &VmSpec) -> anyhow::Result<()> {
    anyhow::ensure!(spec.flavor.vcpus > 0, "the flavor has no vCPUs");
    anyhow::ensure!(spec.flavor.ram_mb > 0, "the flavor has no memory");
    for nic in &spec.nics {
        let ok = nic.mac.len() == 17
            && nic.mac.split(':').count() == 6
            && nic
                .mac
                .split(':')
                .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
        anyhow::ensure!(ok, "port {} has an invalid MAC {:?}", nic.port_id, nic.mac);
    }
    Ok(())
}

fn cache_err(op: Op, id: InstanceId) -> impl Fn(CacheError) -> DriverError {
    move |e| match e {
        CacheError::Image { image, message } => DriverError::Image { image, message },
        CacheError::Host(source) => DriverError::backend(op, id, source),
    }
}

async fn build(drv: &LibvirtDriver, spec: &VmSpec) -> Result<(), DriverError> {
    let id = spec.id;
    let host_err = |e: anyhow::Error| DriverError::backend(Op::Spawn, id, e);
    let base = drv
        .images
        .ensure(&spec.image)
        .await
        .map_err(cache_err(Op::Spawn, id))?;
    let mut image_ids = vec![spec.image.id.clone()];
    let mut kernel = None;
    if let Some(kernel_image) = direct_boot_image(spec, "kernel_id", spec.kernel.as_ref())? {
        let k = drv
            .images
            .ensure(kernel_image)
            .await
            .map_err(cache_err(Op::Spawn, id))?;
        image_ids.push(kernel_image.id.clone());
        let mut ramdisk = None;
        if let Some(r) = direct_boot_image(spec, "ramdisk_id", spec.ramdisk.as_ref())? {
            let cached = drv
                .images
                .ensure(r)
                .await
                .map_err(cache_err(Op::Spawn, id))?;
            image_ids.push(r.id.clone());
            ramdisk = Some(cached.path);
        }
        kernel = Some((k.path, ramdisk));
    }

    let dir = drv.dir(id);
    dir.create().map_err(host_err)?;
    dir.write_record(&InstanceRecord {
        spec: spec.clone(),
        image_ids,
    })
    .map_err(host_err)?;

    let size = match spec.flavor.disk_gb {
        0 => None,
        gb => {
            let bytes = gb * GIB;
            if bytes < base.virtual_size {
                return Err(DriverError::Image {
                    image: spec.image.id.clone(),
                    message: format!(
                        "the flavor's root disk ({gb} GiB) is smaller than the image ({} bytes)",
                        base.virtual_size
                    ),
                });
            }
            Some(bytes)
        }
    };
    disks::create_overlay(&base.path, base.format, &dir.disk(), size)
        .await
        .map_err(host_err)?;

    let kernel = match kernel {
        Some((k, r)) => {
            link_or_copy(&k, &dir.kernel()).map_err(host_err)?;
            let r = match r {
                Some(r) => {
                    link_or_copy(&r, &dir.ramdisk()).map_err(host_err)?;
                    Some(dir.ramdisk())
                }
                None => None,
            };
            Some((dir.kernel(), r))
        }
        None => None,
    };

    config_drive::build(spec, &dir.config_drive())
        .await
        .map_err(host_err)?;
    let nic_devices = drv.nic_devices(&spec.nics).await.map_err(host_err)?;

    let mut def = DomainDef::from_spec(
        spec,
        &BuildContext {
            virt_type: drv.virt_type,
            cpu_mode: drv.cpu_mode,
            root_disk: dir.disk(),
            config_drive: Some(dir.config_drive()),
            console_log: dir.console_log(),
            kernel,
            nic_devices,
            owner: drv.owner.clone(),
        },
    );
    crate::serial::assign(drv, &mut def)
        .await
        .map_err(host_err)?;
    let xml = def.to_xml();
    tracing::debug!(instance = %id, %xml, "defining domain");
    drv.virt
        .run(move |c| {
            let d = c.define_domain_xml(&xml)?;
            d.create()?;
            Ok(())
        })
        .await
        .map_err(host_err)?;
    tracing::info!(instance = %id, virt_type = drv.virt_type.as_str(), "VM spawned");
    Ok(())
}

/// The kernel (or ramdisk) image to boot directly: the one the conductor
/// sent, verified by its checksums like any image. An image whose
/// `kernel_id`/`ramdisk_id` property names an image the spec does not
/// carry (deleted, or never existed) fails the build with a clear fault
/// rather than booting the disk instead.
fn direct_boot_image<'a>(
    spec: &VmSpec,
    property: &str,
    given: Option<&'a ImageSpec>,
) -> Result<Option<&'a ImageSpec>, DriverError> {
    let named = spec
        .image
        .properties
        .get(property)
        .filter(|v| !v.is_empty());
    match (given, named) {
        (Some(image), _) => Ok(Some(image)),
        (None, None) => Ok(None),
        (None, Some(missing)) => Err(DriverError::Image {
            image: spec.image.id.clone(),
            message: format!("its {property} names image {missing}, which cannot be found"),
        }),
    }
}

/// Kernel and ramdisk are hard-linked from the cache (copied across
/// filesystems), so removing a cached image never breaks an instance.
fn link_or_copy(src: &Path, dest: &PathBuf) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(dest);
    if std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    std::fs::copy(src, dest)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} to {}", src.display(), dest.display()))
}

/// Removes the domain (running or not), the network ports and the
/// instance directory. `Ok` when nothing is left, including when nothing
/// was there.
pub async fn destroy(drv: &LibvirtDriver, id: InstanceId) -> Result<(), DriverError> {
    let fail = |e: anyhow::Error| DriverError::backend(Op::Destroy, id, e);
    drv.virt
        .run(move |c| {
            let Some(d) = lookup(c, id)? else {
                return Ok(());
            };
            if d.is_active()? {
                match d.destroy() {
                    // Stopped on its own meanwhile.
                    Err(e) if is(&e, ErrorNumber::OperationInvalid) => {}
                    other => other?,
                }
            }
            d.undefine_flags(
                sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                    | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                    | sys::VIR_DOMAIN_UNDEFINE_NVRAM
                    | sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
            )?;
            Ok(())
        })
        .await
        .map_err(fail)?;
    InstanceDir::remove(&drv.dir(id)).map_err(fail)?;
    tracing::info!(instance = %id, "VM destroyed");
    Ok(())
}
