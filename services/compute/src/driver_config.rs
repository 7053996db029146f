//! Choosing and building the hypervisor driver from `[driver]`.
//!
//! The libvirt driver links libvirt, so it sits behind the `libvirt` cargo
//! feature (on by default). A binary built without it still reads
//! `kind = "libvirt"` configurations, and refuses them at start with a
//! message saying how to get the driver, rather than calling the key
//! unknown.

use cloud_dataplane::{DataPlane, DataPlaneConfig};
use cloud_driver::{Driver, ImageFetcher};
use cloud_driver_fake::{FakeConfig, FakeDriver};
use serde::Deserialize;
use std::sync::Arc;

#[cfg(feature = "libvirt")]
pub use cloud_driver_libvirt::{LibvirtConfig, LibvirtDriver, unreachable_by_qemu};

/// The `[driver]` section, tagged by `kind`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DriverConfig {
    /// In-memory VMs (simulation, scale tests, demos).
    Fake(FakeConfig),
    /// Guests that are network namespaces on the real data plane (network
    /// tests and demos; see `cloud-driver-netns`).
    Netns(cloud_driver_netns::NetnsConfig),
    /// Real QEMU/KVM guests through libvirt.
    #[cfg(feature = "libvirt")]
    Libvirt(LibvirtConfig),
    /// Real guests, but this binary was built without libvirt.
    #[cfg(not(feature = "libvirt"))]
    Libvirt(serde::de::IgnoredAny),
}

impl DriverConfig {
    /// `"fake"` or `"libvirt"`.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverConfig::Fake(_) => "fake",
            DriverConfig::Netns(_) => "netns",
            DriverConfig::Libvirt(_) => "libvirt",
        }
    }

    /// Whether the driver downloads images (and so needs `[image_api]`).
    pub fn needs_images(&self) -> bool {
        matches!(self, DriverConfig::Libvirt(_))
    }
}

/// Builds the configured driver; `fetcher` provides image bytes, and the
/// drivers that plug guests into real networks get a data plane wired as
/// `network` says.
pub async fn build_driver(
    config: DriverConfig,
    fetcher: Arc<dyn ImageFetcher>,
    network: DataPlaneConfig,
) -> anyhow::Result<Arc<dyn Driver>> {
    match config {
        DriverConfig::Fake(c) => {
            let _ = (fetcher, network);
            Ok(Arc::new(FakeDriver::new(c)))
        }
        DriverConfig::Netns(c) => {
            let _ = fetcher;
            let dataplane = Arc::new(DataPlane::new(network));
            Ok(Arc::new(cloud_driver_netns::NetnsDriver::new(c, dataplane)))
        }
        #[cfg(feature = "libvirt")]
        DriverConfig::Libvirt(c) => {
            let uri = c.uri.clone();
            if network.host_namespace.is_some() {
                anyhow::bail!(
                    "[network] host_namespace is for simulated hosts: libvirt plugs guests into \
                     this machine's own namespace"
                );
            }
            let dataplane = Arc::new(DataPlane::new(network));
            let driver = LibvirtDriver::new(c, fetcher, dataplane)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot start the libvirt driver on {uri}: {}",
                        e.full_message()
                    )
                })?;
            Ok(Arc::new(driver))
        }
        #[cfg(not(feature = "libvirt"))]
        DriverConfig::Libvirt(_) => {
            let _ = (fetcher, network);
            anyhow::bail!(
                "this binary was built without the libvirt driver; rebuild with the `libvirt` \
                 feature (needs libvirt-dev) or use kind = \"fake\""
            )
        }
    }
}

/// Whether libvirt answers at `uri`; the error says why not (also when
/// this binary was built without the libvirt driver).
pub async fn libvirt_available(uri: &str) -> anyhow::Result<()> {
    #[cfg(feature = "libvirt")]
    {
        cloud_driver_libvirt::check_connection(uri).await
    }
    #[cfg(not(feature = "libvirt"))]
    {
        anyhow::bail!("built without the libvirt driver (cannot use {uri})")
    }
}

/// A fetcher for drivers that never download (the fake driver).
pub struct NoImages;

#[async_trait::async_trait]
impl ImageFetcher for NoImages {
    async fn fetch(
        &self,
        image_id: &str,
        _dest: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> anyhow::Result<u64> {
        anyhow::bail!("no image API is configured to download image {image_id} from")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_selects_the_driver_and_unknown_keys_are_refused() {
        let fake: DriverConfig = toml::from_str("kind = \"fake\"\nvcpus = 4\n").unwrap();
        match fake {
            DriverConfig::Fake(c) => assert_eq!(c.vcpus, 4),
            other => panic!("{other:?}"),
        }
        let libvirt: DriverConfig =
            toml::from_str("kind = \"libvirt\"\nvirt_type = \"qemu\"\n").unwrap();
        assert_eq!(libvirt.kind(), "libvirt");
        assert!(libvirt.needs_images());
        let err = toml::from_str::<DriverConfig>("kind = \"fake\"\nvcpu = 4\n").unwrap_err();
        assert!(err.to_string().contains("vcpu"), "{err}");
        let err = toml::from_str::<DriverConfig>("kind = \"xen\"\n").unwrap_err();
        assert!(err.to_string().contains("xen"), "{err}");
    }

    #[cfg(feature = "libvirt")]
    #[test]
    fn libvirt_settings_are_read() {
        let c: DriverConfig = toml::from_str(
            "kind = \"libvirt\"\nvirt_type = \"qemu\"\ninstances_path = \"/srv/i\"\n",
        )
        .unwrap();
        match c {
            DriverConfig::Libvirt(c) => {
                assert_eq!(c.instances_path, std::path::Path::new("/srv/i"));
                assert_eq!(c.virt_type, cloud_driver_libvirt::VirtTypeSetting::Qemu);
            }
            other => panic!("{other:?}"),
        }
    }
}
