//! The libvirt hypervisor driver: real QEMU guests (KVM, or TCG where KVM
//! cannot run guests) through libvirt.
//!
//! One [`LibvirtDriver`] per compute host. For each instance it keeps a
//! directory under `instances_path` (qcow2 overlay over a cached base
//! image, config drive ISO, console log, `instance.json`), a persistent
//! libvirt domain named `instance-<uuid>` carrying our metadata element,
//! and one tap per NIC on its network's bridge. The bridges, DHCP and
//! filtering belong to the host's data plane ([`cloud_dataplane`]), which
//! the agent applies before it spawns a guest.
//! Every operation is idempotent, as the [`Driver`] contract asks.
//!
//! Modules: [`config`] (TOML), [`domain_xml`] (typed domain definition),
//! `image_cache` + `disks` (base images, overlays), `config_drive`,
//! `power` (Nova's power semantics), `probe` (`virt_type = "auto"`),
//! `host` (inventory).

pub(crate) use cloud_dataplane::cmd;
pub mod config;
mod config_drive;
mod connection;
mod crash_dump;
mod disks;
mod domain_build;
pub mod domain_xml;
mod host;
mod image_cache;
mod instance_dir;
mod interfaces;
mod locks;
pub mod metadata;
mod pause;
mod power;
mod probe;
mod rescue;
mod serial;
mod snapshot;
mod spawn;
mod verify;
mod xml;

#[cfg(test)]
mod testutil;

pub use config::{CpuMode, LibvirtConfig, VirtType, VirtTypeSetting};
pub use image_cache::CacheError;
pub use serial::SerialConsoleConfig;

use async_trait::async_trait;
use cloud_dataplane::DataPlane;
use cloud_driver::{
    Driver, DriverError, HostNetwork, HostResources, ImageFetcher, Op, RebootKind, VmInfo, VmSpec,
};
use cloud_model::InstanceId;
use connection::Libvirt;
use image_cache::ImageCache;
use instance_dir::InstanceDir;
use locks::KeyedLocks;
use std::sync::Arc;
use std::time::Duration;

/// The driver for one compute host.
pub struct LibvirtDriver {
    config: LibvirtConfig,
    virt: Arc<Libvirt>,
    virt_type: VirtType,
    /// Why `virt_type` was chosen (probe result or configuration).
    virt_type_reason: String,
    cpu_mode: CpuMode,
    images: ImageCache,
    /// The host's data plane: bridges the guests' taps go on.
    dataplane: Arc<DataPlane>,
    /// One operation at a time per instance.
    locks: KeyedLocks<InstanceId>,
    /// The mark on our domains: the canonical instances directory (see
    /// [`metadata`]).
    owner: String,
}

/// The id used in errors of host-wide operations.
fn host_id() -> InstanceId {
    InstanceId::from_uuid(uuid::Uuid::nil())
}

impl LibvirtDriver {
    /// `(bridge, tap)` of each NIC, once every bridge exists: the agent
    /// applies the host's data plane before it asks for a guest, so a
    /// missing bridge means the network is not set up here.
    pub(crate) async fn nic_devices(
        &self,
        nics: &[cloud_driver::NicSpec],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for nic in nics {
            let bridge = cloud_dataplane::names::bridge_name(&nic.network_id);
            if !self.dataplane.link_exists(&bridge).await {
                anyhow::bail!(
                    "network {} is not set up on this host (no bridge {bridge})",
                    nic.network_id
                );
            }
            out.push((bridge, cloud_dataplane::names::tap_name(&nic.port_id)));
        }
        Ok(out)
    }

    /// Connects to libvirt, creates the driver's directories and settles
    /// the virt type (probing once when it is `auto`). Guests are plugged
    /// into the bridges of `dataplane`, whose host must be this machine's
    /// own namespace (libvirt creates taps there).
    pub async fn new(
        config: LibvirtConfig,
        fetcher: Arc<dyn ImageFetcher>,
        dataplane: Arc<DataPlane>,
    ) -> Result<Self, DriverError> {
        let fail = |e: anyhow::Error| DriverError::backend(Op::HostResources, host_id(), e);
        let virt = Arc::new(Libvirt::open(&config.uri).await.map_err(fail)?);
        for dir in [
            &config.instances_path,
            &config.image_cache_path,
            &config.state_path,
        ] {
            create_traversable_dir(dir).map_err(fail)?;
        }
        for dir in [&config.instances_path, &config.image_cache_path] {
            if let Some(blocking) = unreachable_by_qemu(dir) {
                tracing::warn!(
                    path = %dir.display(),
                    blocking = %blocking.display(),
                    "QEMU, when it runs as an unprivileged user (libvirt-qemu), cannot reach \
                     this directory because a parent is not searchable by others; guests \
                     will fail to start (chmod o+x the parent or choose another path)"
                );
            }
        }
        let owner = std::fs::canonicalize(&config.instances_path)
            .map_err(|e| fail(anyhow::anyhow!("cannot resolve instances_path: {e}")))?
            .display()
            .to_string();
        let caps_xml = virt.run(|c| c.capabilities()).await.map_err(fail)?;
        let caps = host::parse_capabilities(&caps_xml).map_err(fail)?;
        let (virt_type, virt_type_reason) = match config.virt_type {
            VirtTypeSetting::Kvm => (VirtType::Kvm, "configured".to_string()),
            VirtTypeSetting::Qemu => (VirtType::Qemu, "configured".to_string()),
            VirtTypeSetting::Auto => {
                let emulator = caps
                    .emulator
                    .clone()
                    .unwrap_or_else(|| "qemu-system-x86_64".into());
                let r = probe::detect(&config.state_path, &emulator, caps.kvm_offered).await;
                (r.virt_type, r.reason)
            }
        };
        tracing::info!(
            virt_type = virt_type.as_str(),
            reason = %virt_type_reason,
            uri = %config.uri,
            "libvirt driver ready"
        );
        Ok(LibvirtDriver {
            cpu_mode: config.cpu_mode.unwrap_or(CpuMode::default_for(virt_type)),
            images: ImageCache::new(config.image_cache_path.clone(), fetcher),
            dataplane,
            virt,
            virt_type,
            virt_type_reason,
            locks: KeyedLocks::default(),
            owner,
            config,
        })
    }

    /// The virt type in use (`kvm` or `qemu`).
    pub fn virt_type(&self) -> VirtType {
        self.virt_type
    }

    /// Why that virt type was chosen.
    pub fn virt_type_reason(&self) -> &str {
        &self.virt_type_reason
    }

    /// The configuration the driver runs with.
    pub fn config(&self) -> &LibvirtConfig {
        &self.config
    }

    /// Our domains whose instance is not in `known`: after a restart, the
    /// compute agent compares them with its records and removes leftovers.
    pub async fn orphans(&self, known: &[InstanceId]) -> Result<Vec<VmInfo>, DriverError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|vm| !known.contains(&vm.id))
            .collect())
    }

    /// Removes cached base images no instance on this host uses and that
    /// were unused for `image_cache_max_unused_age_secs`. Returns their ids.
    pub async fn cleanup_unused_images(&self) -> Result<Vec<String>, DriverError> {
        let in_use = instance_dir::images_in_use(&self.config.instances_path);
        let max_age = Duration::from_secs(self.config.image_cache_max_unused_age_secs);
        self.images
            .cleanup_unused(max_age, &in_use)
            .await
            .map_err(|e| DriverError::backend(Op::HostResources, host_id(), e))
    }

    /// Image ids in the local cache.
    pub fn cached_images(&self) -> Vec<String> {
        self.images.cached_ids()
    }

    /// The directory holding instance `id`'s disk, config drive and log.
    pub fn instance_path(&self, id: InstanceId) -> std::path::PathBuf {
        self.dir(id).path().to_path_buf()
    }

    fn dir(&self, id: InstanceId) -> InstanceDir {
        InstanceDir::new(&self.config.instances_path, id)
    }
}

/// Whether libvirt answers at `uri`: connects, reads the hypervisor
/// version and disconnects. The all-in-one binary uses it to choose
/// between this driver and the fake one; the error says why not.
pub async fn check_connection(uri: &str) -> anyhow::Result<()> {
    let virt = Arc::new(Libvirt::open(uri).await?);
    virt.run(|c| c.hyp_version()).await?;
    Ok(())
}

/// The first directory on the way to `path` (an ancestor, or `path`
/// itself) that users other than its owner cannot search, if any. QEMU
/// runs as `libvirt-qemu` under libvirtd's defaults, so it needs search
/// permission on every directory above a disk; a data directory under
/// `/root` (mode 0700) is the usual trap. `None` also when `path` cannot
/// be resolved (it is reported when it is used).
pub fn unreachable_by_qemu(path: &std::path::Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::fs::canonicalize(path).ok()?;
    path.ancestors()
        .filter(|dir| {
            std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 == 0)
        })
        .last()
        .map(std::path::Path::to_path_buf)
}

/// Creates `dir` (and parents) so QEMU, running as another user, can
/// reach files below it.
fn create_traversable_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o011 != 0o011 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711))
            .with_context(|| format!("cannot make {} traversable", dir.display()))?;
    }
    Ok(())
}

#[async_trait]
impl Driver for LibvirtDriver {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    async fn host_resources(&self) -> Result<HostResources, DriverError> {
        let fail = |e: anyhow::Error| DriverError::backend(Op::HostResources, host_id(), e);
        let (caps_xml, node, version) = self
            .virt
            .run(|c| Ok((c.capabilities()?, c.node_info()?, c.hyp_version()?)))
            .await
            .map_err(fail)?;
        let caps = host::parse_capabilities(&caps_xml).map_err(fail)?;
        let memory_mb = node.memory / 1024;
        let disk_gb = host::disk_total_gb(&self.config.instances_path).map_err(fail)?;
        Ok(HostResources {
            vcpus: node.cpus.saturating_sub(self.config.reserved_host_cpus),
            memory_mb: memory_mb.saturating_sub(self.config.reserved_host_memory_mb),
            disk_gb: disk_gb.saturating_sub(self.config.reserved_host_disk_gb),
            numa_cells: host::cells_or_single(caps.cells, node.cpus, memory_mb),
            hypervisor_type: self.virt_type.hypervisor_type().to_string(),
            hypervisor_version: u64::from(version),
            cpu_arch: caps.arch,
        })
    }

    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&spec.id).await;
        spawn::spawn(self, spec).await
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        spawn::destroy(self, id).await
    }

    async fn power_on(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        power::power_on(self, id).await
    }

    async fn power_off(&self, id: InstanceId, timeout: Duration) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        power::power_off(self, id, timeout, Op::PowerOff).await
    }

    async fn reboot(&self, id: InstanceId, kind: RebootKind) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        power::reboot(self, id, kind).await
    }

    async fn pause(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        pause::pause(self, id).await
    }

    async fn unpause(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        pause::unpause(self, id).await
    }

    async fn suspend(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        pause::suspend(self, id).await
    }

    async fn resume(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        pause::resume(self, id).await
    }

    async fn inject_nmi(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        crash_dump::inject_nmi(self, id).await
    }

    async fn snapshot(
        &self,
        id: InstanceId,
        dest: &std::path::Path,
    ) -> Result<cloud_driver::DiskSnapshot, DriverError> {
        let _guard = self.locks.lock(&id).await;
        snapshot::snapshot(self, id, dest).await
    }

    async fn rescue(
        &self,
        spec: &VmSpec,
        rescue_image: &cloud_driver::ImageSpec,
    ) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&spec.id).await;
        rescue::rescue(self, spec, rescue_image).await
    }

    async fn unrescue(&self, id: InstanceId) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        rescue::unrescue(self, id).await
    }

    async fn attach_interface(
        &self,
        id: InstanceId,
        nic: &cloud_driver::NicSpec,
    ) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        interfaces::attach(self, id, nic).await
    }

    async fn detach_interface(
        &self,
        id: InstanceId,
        nic: &cloud_driver::NicSpec,
    ) -> Result<(), DriverError> {
        let _guard = self.locks.lock(&id).await;
        interfaces::detach(self, id, nic).await
    }

    async fn info(&self, id: InstanceId) -> Result<VmInfo, DriverError> {
        power::info(self, id).await
    }

    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        power::list(self).await
    }

    async fn apply_network(
        &self,
        desired: &HostNetwork,
    ) -> Result<cloud_driver::NetworkApplied, DriverError> {
        self.dataplane
            .apply(desired)
            .await
            .map(|failed| cloud_driver::NetworkApplied { failed })
            .map_err(|e| DriverError::backend(Op::Network, host_id(), e))
    }

    async fn serial_console(
        &self,
        id: InstanceId,
    ) -> Result<cloud_driver::SerialEndpoint, DriverError> {
        serial::endpoint(self, id).await
    }

    async fn console_output(
        &self,
        id: InstanceId,
        max_bytes: usize,
    ) -> Result<String, DriverError> {
        let dir = self.dir(id);
        if !dir.exists() {
            // No directory: either no such VM, or one we did not build.
            power::info(self, id).await?;
            return Ok(String::new());
        }
        dir.console_tail(max_bytes)
            .map_err(|e| DriverError::backend(Op::Console, id, e))
    }

    /// Removes base images unused for `image_cache_max_unused_age_secs`.
    async fn periodic_maintenance(&self) {
        match self.cleanup_unused_images().await {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(images = ?removed, "image cache cleaned");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.full_message(), "image cache cleanup failed");
            }
        }
    }
}
