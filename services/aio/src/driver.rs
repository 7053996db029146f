//! Which hypervisor driver the all-in-one's compute host uses.
//!
//! `--driver auto` takes libvirt when `qemu:///system` answers and QEMU
//! could reach the data directory, and the fake driver otherwise; it says
//! which, and why, on standard output. `--driver libvirt` fails instead of
//! falling back. The libvirt driver keeps its files under
//! `DATA_DIR/libvirt/` and downloads images from this process's own image
//! API with the service account of [`crate::service_user`].

use clap::ValueEnum;
use cloud_compute::ImageApiConfig;
use cloud_driver::Driver;
use cloud_driver_fake::{FakeConfig, FakeDriver};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The libvirt URI of the local hypervisor.
pub const LIBVIRT_URI: &str = "qemu:///system";

/// Which hypervisor driver the local compute agent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DriverChoice {
    /// libvirt when `qemu:///system` answers, else fake.
    Auto,
    /// Real VMs through libvirt and QEMU.
    Libvirt,
    /// In-memory VMs.
    Fake,
}

/// The image API of this process as the agent reaches it: the listening
/// address, with a wildcard address replaced by loopback.
pub fn image_api(api_addr: SocketAddr, password: String) -> ImageApiConfig {
    let mut addr = api_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    ImageApiConfig {
        auth_url: format!("http://{addr}/identity/v3"),
        username: crate::service_user::USER.to_owned(),
        password: Some(password),
        user_domain_name: "Default".to_owned(),
        project_name: crate::service_user::PROJECT.to_owned(),
        project_domain_name: "Default".to_owned(),
    }
}

/// The metadata API of this process as the proxies reach it (loopback
/// for a wildcard listener), with the secret they share.
pub fn metadata_upstream(
    api_addr: SocketAddr,
    secret: &str,
) -> cloud_dataplane::MetadataProxyConfig {
    let base = image_api(api_addr, String::new()).auth_url;
    cloud_dataplane::MetadataProxyConfig {
        api_url: base.replace("/identity/v3", "/metadata"),
        shared_secret: secret.to_owned(),
    }
}

/// Builds the driver `choice` asks for; prints which one runs. Real
/// guests reach the metadata service through `metadata`.
pub async fn choose(
    choice: DriverChoice,
    data_dir: &Path,
    image_api: ImageApiConfig,
    metadata: cloud_dataplane::MetadataProxyConfig,
) -> anyhow::Result<Arc<dyn Driver>> {
    let fake = || -> Arc<dyn Driver> { Arc::new(FakeDriver::new(FakeConfig::default())) };
    match choice {
        DriverChoice::Fake => {
            println!("Compute driver: fake (in-memory VMs)");
            Ok(fake())
        }
        DriverChoice::Libvirt => libvirt(data_dir, image_api, metadata).await,
        DriverChoice::Auto => match usable(data_dir).await {
            Ok(()) => libvirt(data_dir, image_api, metadata).await,
            Err(why) => {
                println!("Compute driver: fake (in-memory VMs): libvirt is not usable: {why:#}");
                Ok(fake())
            }
        },
    }
}

/// Whether the libvirt driver can work here; the error says why not.
async fn usable(data_dir: &Path) -> anyhow::Result<()> {
    cloud_compute::driver_config::libvirt_available(LIBVIRT_URI).await?;
    #[cfg(feature = "libvirt")]
    if let Some(blocking) = cloud_compute::driver_config::unreachable_by_qemu(data_dir) {
        anyhow::bail!(
            "QEMU (user libvirt-qemu) cannot reach {}: {} is not searchable by others; \
             use a --data-dir elsewhere or chmod o+x {}",
            data_dir.display(),
            blocking.display(),
            blocking.display()
        );
    }
    let _ = data_dir;
    Ok(())
}

#[cfg(feature = "libvirt")]
async fn libvirt(
    data_dir: &Path,
    image_api: ImageApiConfig,
    metadata: cloud_dataplane::MetadataProxyConfig,
) -> anyhow::Result<Arc<dyn Driver>> {
    use anyhow::Context;
    use cloud_compute::driver_config::{LibvirtConfig, LibvirtDriver};
    usable(data_dir).await?;
    let root = std::fs::canonicalize(data_dir)
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?
        .join("libvirt");
    let config = LibvirtConfig {
        uri: LIBVIRT_URI.to_owned(),
        instances_path: root.join("instances"),
        image_cache_path: root.join("images"),
        state_path: root.join("state"),
        // A single-node cloud keeps the whole machine's memory for guests
        // except a little for itself.
        reserved_host_memory_mb: 256,
        ..LibvirtConfig::default()
    };
    let fetcher = Arc::new(cloud_compute::HttpImageFetcher::new(image_api)?);
    crate::public_net::uplink()
        .ensure()
        .await
        .context("cannot set up the uplink of the external network")?;
    let dataplane = Arc::new(cloud_dataplane::DataPlane::new(
        cloud_dataplane::DataPlaneConfig {
            state_dir: root.join("network"),
            metadata: Some(metadata),
            physical_interfaces: [(
                crate::public_net::PHYSNET.to_owned(),
                crate::public_net::PHYSICAL_INTERFACE.to_owned(),
            )]
            .into(),
            ..cloud_dataplane::DataPlaneConfig::default()
        },
    ));
    let driver = LibvirtDriver::new(config, fetcher, dataplane)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the libvirt driver: {}", e.full_message()))?;
    println!(
        "Compute driver: libvirt ({LIBVIRT_URI}, virt_type {}: {}; files in {})",
        driver.virt_type().as_str(),
        driver.virt_type_reason(),
        root.display()
    );
    Ok(Arc::new(driver))
}

#[cfg(not(feature = "libvirt"))]
async fn libvirt(
    data_dir: &Path,
    image_api: ImageApiConfig,
    metadata: cloud_dataplane::MetadataProxyConfig,
) -> anyhow::Result<Arc<dyn Driver>> {
    let _ = (data_dir, image_api, metadata);
    anyhow::bail!(
        "this cloud-aio was built without the libvirt driver; rebuild with the `libvirt` feature \
         (needs libvirt-dev, see scripts/aio) or use --driver fake"
    )
}
