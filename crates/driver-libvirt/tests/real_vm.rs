//! Real VMs through libvirt: boots the shared test guest
//! (`shared/images/`) on `qemu:///system` and checks, from its console
//! markers, what a user of the cloud would notice: the flavor's CPUs and
//! RAM, the config drive (hostname, uuid, user data), the port's IP from our
//! DHCP server, and Nova's power semantics. Needs libvirtd
//! (`deploy/libvirt-host.sh`); fails, never skips, when it is unreachable.
//!
//! The image directory is `$CLOUD_TEST_IMAGES_DIR` or `shared/images` beside
//! the repository.

use async_trait::async_trait;
use cloud_dataplane::names::{bridge_name, tap_name};
use cloud_dataplane::{DataPlane, DataPlaneConfig};
use cloud_driver::HostNetwork;
use cloud_driver::network::{NetworkSpec, PortSpec, SegmentSpec, SubnetSpec};
use cloud_driver::{
    Driver, DriverError, FlavorSpec, ImageFetcher, ImageSpec, NicSpec, RebootKind, VmSpec,
};
use cloud_driver_libvirt::{LibvirtConfig, LibvirtDriver, VirtTypeSetting};
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use md5::{Digest, Md5};
use sha2::Sha512;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;

/// Boot-to-READY under TCG on a busy 2-core host is 10-20 s; leave room.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Serves images from files, as the image API would.
struct FileFetcher {
    files: HashMap<String, PathBuf>,
}

#[async_trait]
impl ImageFetcher for FileFetcher {
    async fn fetch(
        &self,
        image_id: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> anyhow::Result<u64> {
        let path = self
            .files
            .get(image_id)
            .ok_or_else(|| anyhow::anyhow!("no image {image_id}"))?;
        let mut f = tokio::fs::File::open(path).await?;
        Ok(tokio::io::copy(&mut f, dest).await?)
    }
}

fn images_script() -> PathBuf {
    let dir = std::env::var_os("CLOUD_TEST_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/images"));
    let script = dir.join("build-test-image.sh");
    assert!(
        script.is_file(),
        "{} not found; set CLOUD_TEST_IMAGES_DIR to the test image directory",
        script.display()
    );
    script
}

/// Builds the test guest into `out` (~8 s once the tools are installed).
fn build_guest(out: &Path) -> PathBuf {
    let started = Instant::now();
    let status = std::process::Command::new(images_script())
        .arg("-o")
        .arg(out)
        .status()
        .expect("cannot run build-test-image.sh");
    assert!(status.success(), "build-test-image.sh failed: {status}");
    eprintln!("test guest built in {:.1?}", started.elapsed());
    out.join("testguest.qcow2")
}

fn image_spec(id: &str, path: &Path, disk_format: &str) -> ImageSpec {
    let data = std::fs::read(path).unwrap();
    ImageSpec {
        id: id.into(),
        disk_format: disk_format.into(),
        size: data.len() as u64,
        checksum: hex::encode(Md5::digest(&data)),
        sha512: Some(hex::encode(Sha512::digest(&data))),
        properties: BTreeMap::new(),
    }
}

fn random_byte() -> u8 {
    (uuid::Uuid::new_v4().as_u128() % 250) as u8 + 2
}

fn spec(image: ImageSpec) -> (VmSpec, NicSpec) {
    let id = InstanceId::new();
    // A subnet unlikely to collide with another run's leftovers.
    let (a, b) = (random_byte(), random_byte());
    let nic = NicSpec {
        port_id: uuid::Uuid::new_v4().to_string(),
        network_id: uuid::Uuid::new_v4().to_string(),
        mac: format!("fa:16:3e:{a:02x}:{b:02x}:05"),
        ip: Some(format!("10.{a}.{b}.5").parse().unwrap()),
        prefix: Some(24),
        gateway: Some(format!("10.{a}.{b}.1").parse().unwrap()),
        dns: vec![format!("10.{a}.{b}.1").parse().unwrap()],
        dhcp: true,
        mtu: 1500,
    };
    let spec = VmSpec {
        id,
        name: "real vm <1>".into(),
        hostname: "real-vm-1".into(),
        project_id: "proj-real".into(),
        user_id: "user-real".into(),
        flavor: FlavorSpec {
            id: "t1".into(),
            name: "test.tiny".into(),
            vcpus: 1,
            ram_mb: 256,
            disk_gb: 1,
            swap_mb: 0,
            ephemeral_gb: 0,
            extra_specs: BTreeMap::new(),
        },
        image,
        kernel: None,
        ramdisk: None,
        nics: vec![nic.clone()],
        user_data: Some(b"#!/bin/sh\necho hello-from-user-data\n".to_vec()),
        metadata: BTreeMap::new(),
        key: Some((
            "k".into(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE test".into(),
        )),
        availability_zone: "nova".into(),
        launch_index: 0,
        numa: None,
    };
    (spec, nic)
}

/// The `TESTGUEST ...` lines of a console log, `\r` stripped.
fn markers(console: &str) -> Vec<String> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.strip_prefix("TESTGUEST "))
        .map(str::to_string)
        .collect()
}

fn count(console: &str, marker: &str) -> usize {
    markers(console).iter().filter(|m| *m == marker).count()
}

/// Waits until the console shows `marker` `n` times; returns the console.
async fn wait_for(drv: &LibvirtDriver, id: InstanceId, marker: &str, n: usize) -> String {
    let start = Instant::now();
    loop {
        let console = drv.console_output(id, 4 << 20).await.unwrap();
        if count(&console, marker) >= n {
            eprintln!("{marker} #{n} after {:.1?}", start.elapsed());
            return console;
        }
        assert!(
            start.elapsed() < BOOT_TIMEOUT,
            "no {marker} #{n} within {BOOT_TIMEOUT:?}; console:\n{console}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The value of the last `KEY=...` marker (the current boot's).
fn value(console: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    markers(console)
        .iter()
        .rev()
        .find_map(|m| m.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key}= marker in:\n{console}"))
}

fn link_exists(name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn domain_exists(id: InstanceId) -> bool {
    let conn = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
    conn.lookup_domain_by_uuid_string(&id.to_string()).is_ok()
}

struct Env {
    _tmp: tempfile::TempDir,
    driver: Arc<LibvirtDriver>,
    /// The bootable disk.
    image: ImageSpec,
    /// The guest's kernel (AKI) and initramfs (ARI) images.
    kernel: ImageSpec,
    ramdisk: ImageSpec,
}

async fn env() -> Env {
    // FAIL (not skip) without libvirtd.
    virt::connect::Connect::open(Some("qemu:///system")).unwrap_or_else(|e| {
        panic!("qemu:///system is unreachable ({e}); run deploy/libvirt-host.sh")
    });
    let tmp = tempfile::tempdir().unwrap();
    // QEMU runs as libvirt-qemu: it must reach the files below.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let out = tmp.path().join("guest");
    let qcow2 = tokio::task::spawn_blocking({
        let out = out.clone();
        move || build_guest(&out)
    })
    .await
    .unwrap();
    let image_id = uuid::Uuid::new_v4().to_string();
    let kernel_id = uuid::Uuid::new_v4().to_string();
    let ramdisk_id = uuid::Uuid::new_v4().to_string();
    let image = image_spec(&image_id, &qcow2, "qcow2");
    let kernel = image_spec(&kernel_id, &out.join("testguest-vmlinuz"), "aki");
    let ramdisk = image_spec(&ramdisk_id, &out.join("testguest-initrd.img"), "ari");
    let fetcher = FileFetcher {
        files: HashMap::from([
            (image_id, qcow2),
            (kernel_id.clone(), out.join("testguest-vmlinuz")),
            (ramdisk_id.clone(), out.join("testguest-initrd.img")),
        ]),
    };
    // The state directory is shared by the tests (and runs) so the
    // virt-type probe, cached there per host boot, runs once; bridges are
    // per network and networks are random, so tests do not collide.
    let state_path = std::env::temp_dir().join("cloud-driver-libvirt-tests");
    let config = LibvirtConfig {
        virt_type: VirtTypeSetting::Auto,
        instances_path: tmp.path().join("instances"),
        image_cache_path: tmp.path().join("images"),
        state_path,
        shutdown_timeout_secs: 60,
        ..LibvirtConfig::default()
    };
    let started = Instant::now();
    let dataplane = Arc::new(DataPlane::new(DataPlaneConfig {
        state_dir: tmp.path().join("network"),
        ..DataPlaneConfig::default()
    }));
    let driver = LibvirtDriver::new(config, Arc::new(fetcher), dataplane)
        .await
        .unwrap();
    eprintln!(
        "driver ready in {:.1?}: virt_type {} ({})",
        started.elapsed(),
        driver.virt_type().as_str(),
        driver.virt_type_reason()
    );
    Env {
        _tmp: tmp,
        driver: Arc::new(driver),
        image,
        kernel,
        ramdisk,
    }
}

/// The host network the agent would apply for `spec`: its NICs' networks
/// (VXLAN, no peers) with DHCP, its ports unfiltered (filtering is the
/// data plane's own tests' business).
fn network_for(spec: &VmSpec) -> HostNetwork {
    let vni = 900_000 + (uuid::Uuid::new_v4().as_u128() % 90_000) as u32;
    HostNetwork {
        revision: 1,
        networks: spec
            .nics
            .iter()
            .map(|n| NetworkSpec {
                id: n.network_id.clone(),
                segment: SegmentSpec::Vxlan { vni },
                mtu: n.mtu,
                subnets: vec![SubnetSpec {
                    id: format!("{}-subnet", n.network_id),
                    cidr: cloud_model::network::Ipv4Cidr::parse(&format!(
                        "{}/{}",
                        Ipv4Addr::from(
                            u32::from(n.ip.unwrap()) & (u32::MAX << (32 - n.prefix.unwrap()))
                        ),
                        n.prefix.unwrap()
                    ))
                    .unwrap(),
                    gateway: n.gateway,
                    dhcp: n.dhcp,
                    dns: n.dns.clone(),
                    host_routes: Vec::new(),
                    dhcp_address: None,
                    gateway_elsewhere: false,
                }],
                peers: Vec::new(),
                remote_ports: Vec::new(),
            })
            .collect(),
        ports: spec
            .nics
            .iter()
            .map(|n| PortSpec {
                id: n.port_id.clone(),
                network_id: n.network_id.clone(),
                instance_id: Some(spec.id),
                mac: n.mac.clone(),
                fixed_ips: n.ip.into_iter().collect(),
                allowed_address_pairs: Vec::new(),
                port_security: false,
                security_groups: Vec::new(),
            })
            .collect(),
        security_groups: Vec::new(),
        routers: Vec::new(),
    }
}

/// Runs `body`, then destroys the VM and its networks whatever happened,
/// then re-raises a failure (so a failing test leaves no domain or bridge
/// behind).
async fn with_cleanup<F>(driver: &Arc<LibvirtDriver>, id: InstanceId, body: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(body).await;
    let _ = driver.destroy(id).await;
    let _ = driver.apply_network(&HostNetwork::default()).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_the_test_guest_with_network_config_drive_and_power_ops() {
    let env = env().await;
    let drv = env.driver.clone();
    let (spec, nic) = spec(env.image.clone());
    let id = spec.id;
    with_cleanup(&env.driver, id, async move {
        // A corrupt download fails the spawn and leaves nothing behind.
        let mut bad = spec.clone();
        bad.image.checksum = "0".repeat(32);
        let err = drv.spawn(&bad).await.unwrap_err();
        assert!(
            matches!(&err, DriverError::Image { message, .. } if message.contains("checksum mismatch")),
            "{err:?}"
        );
        assert!(!domain_exists(id));
        assert!(!drv.instance_path(id).exists());
        assert!(drv.cached_images().is_empty());

        // The agent applies the host's network before it spawns.
        drv.apply_network(&network_for(&spec)).await.unwrap();
        let started = Instant::now();
        drv.spawn(&spec).await.unwrap();
        eprintln!("spawn returned after {:.1?}", started.elapsed());
        // A redelivered spawn is a no-op.
        drv.spawn(&spec).await.unwrap();
        let console = wait_for(&drv, id, "READY", 1).await;
        eprintln!("boot to READY: {:.1?} (uptime in guest: {}s)", started.elapsed(), value(&console, "UPTIME"));
        assert_eq!(value(&console, "CPUS"), "1");
        assert_eq!(value(&console, "RAM_MB"), "256");
        assert_eq!(value(&console, "HOSTNAME"), "real-vm-1");
        assert_eq!(value(&console, "UUID"), id.to_string());
        assert_eq!(value(&console, "NAME"), "real vm <1>");
        assert_eq!(value(&console, "PUBLIC_KEYS"), "1");
        assert_eq!(value(&console, "NETWORK_DATA"), "present");
        assert_eq!(value(&console, "IP"), nic.ip.unwrap().to_string(), "DHCP from our dnsmasq");
        assert_eq!(value(&console, "GATEWAY"), nic.gateway.unwrap().to_string());
        assert_eq!(value(&console, "USERDATA_OUT"), "hello-from-user-data");
        assert_eq!(value(&console, "USERDATA_RC"), "0");
        // Root disk grown to the flavor's 1 GiB.
        assert!(markers(&console).iter().any(|m| m.starts_with("DISK=vda SIZE_MB=1024 ")), "{console}");

        assert_eq!(drv.info(id).await.unwrap().power_state, PowerState::Running);
        let listed = drv.list().await.unwrap();
        assert!(listed.iter().any(|vm| vm.id == id && vm.power_state == PowerState::Running));
        assert_eq!(drv.orphans(&[]).await.unwrap().iter().filter(|v| v.id == id).count(), 1);
        assert!(drv.orphans(&[id]).await.unwrap().iter().all(|v| v.id != id));
        // Another driver on the same libvirtd (another cloud, a test
        // control plane) neither lists nor reports it, so it never reaps it.
        let other = LibvirtDriver::new(
            LibvirtConfig {
                instances_path: drv.config().instances_path.with_file_name("other-instances"),
                ..drv.config().clone()
            },
            Arc::new(FileFetcher { files: HashMap::new() }),
            Arc::new(DataPlane::new(DataPlaneConfig {
                state_dir: drv.config().instances_path.with_file_name("other-network"),
                ..DataPlaneConfig::default()
            })),
        )
        .await
        .unwrap();
        assert!(other.list().await.unwrap().iter().all(|vm| vm.id != id));
        assert!(matches!(other.info(id).await, Err(DriverError::NotFound(_))));
        assert!(link_exists(&tap_name(&nic.port_id)));
        assert!(link_exists(&bridge_name(&nic.network_id)));
        let tail = drv.console_output(id, 100).await.unwrap();
        assert!(tail.len() <= 100);
        let res = drv.host_resources().await.unwrap();
        assert!(res.vcpus > 0 && res.memory_mb > 0 && !res.numa_cells.is_empty());
        assert_eq!(res.hypervisor_type, drv.virt_type().hypervisor_type());

        // Stop: ACPI, the guest powers itself off.
        let t = Instant::now();
        drv.power_off(id, Duration::from_secs(60)).await.unwrap();
        eprintln!("power_off took {:.1?}", t.elapsed());
        let console = drv.console_output(id, 4 << 20).await.unwrap();
        assert_eq!(count(&console, "ACPI_POWER_BUTTON"), 1, "{console}");
        assert_eq!(count(&console, "POWEROFF"), 1, "{console}");
        assert_eq!(drv.info(id).await.unwrap().power_state, PowerState::Shutdown);
        drv.power_off(id, Duration::from_secs(1)).await.unwrap();

        // Start again.
        drv.power_on(id).await.unwrap();
        drv.power_on(id).await.unwrap();
        let console = wait_for(&drv, id, "READY", 2).await;
        assert_eq!(value(&console, "IP"), nic.ip.unwrap().to_string());
        assert_eq!(drv.info(id).await.unwrap().power_state, PowerState::Running);

        // Soft reboot: through ACPI, the guest goes down cleanly.
        drv.reboot(id, RebootKind::Soft).await.unwrap();
        let console = wait_for(&drv, id, "READY", 3).await;
        assert_eq!(count(&console, "POWEROFF"), 2, "soft reboot goes through ACPI");

        // Hard reboot: no ACPI, just a new boot.
        drv.reboot(id, RebootKind::Hard).await.unwrap();
        let console = wait_for(&drv, id, "READY", 4).await;
        assert_eq!(count(&console, "POWEROFF"), 2, "hard reboot does not ask the guest");

        // Destroy removes everything, and is idempotent.
        let dir = drv.instance_path(id);
        drv.destroy(id).await.unwrap();
        assert!(!domain_exists(id), "domain left behind");
        assert!(!dir.exists(), "instance directory left behind");
        assert!(!link_exists(&tap_name(&nic.port_id)), "tap left behind");
        drv.destroy(id).await.unwrap();
        // The bridge goes with the network, when the port leaves the host.
        drv.apply_network(&HostNetwork::default()).await.unwrap();
        assert!(!link_exists(&bridge_name(&nic.network_id)), "bridge left behind");
        assert!(matches!(drv.info(id).await, Err(DriverError::NotFound(_))));
        assert!(matches!(drv.power_on(id).await, Err(DriverError::NotFound(_))));
        assert!(drv.list().await.unwrap().iter().all(|vm| vm.id != id));
        // The base image stays cached for the next spawn.
        assert_eq!(drv.cached_images().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_a_kernel_and_ramdisk_directly() {
    let env = env().await;
    let drv = env.driver.clone();
    let mut image = env.image.clone();
    image
        .properties
        .insert("kernel_id".into(), env.kernel.id.clone());
    image
        .properties
        .insert("ramdisk_id".into(), env.ramdisk.id.clone());
    let (mut spec, _) = spec(image);
    // A kernel named by the image but not sent with its checksums is refused.
    let err = drv.spawn(&spec).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Image { message, .. } if message.contains("kernel_id")),
        "{err:?}"
    );
    assert!(!domain_exists(spec.id));
    spec.kernel = Some(env.kernel.clone());
    spec.ramdisk = Some(env.ramdisk.clone());
    // No NIC: nothing to wait for DHCP on.
    spec.nics.clear();
    spec.flavor.ram_mb = 192;
    let id = spec.id;
    with_cleanup(&env.driver, id, async move {
        let started = Instant::now();
        drv.spawn(&spec).await.unwrap();
        let console = wait_for(&drv, id, "READY", 1).await;
        eprintln!("direct kernel boot to READY: {:.1?}", started.elapsed());
        // Nova's default command line, since the image sets none.
        assert_eq!(
            value(&console, "CMDLINE"),
            "root=/dev/vda console=tty0 console=ttyS0"
        );
        assert_eq!(value(&console, "RAM_MB"), "192");
        assert_eq!(value(&console, "UUID"), id.to_string());
        assert_eq!(value(&console, "IP"), "none");
        assert!(drv.instance_path(id).join("kernel").is_file());
        let mut cached = drv.cached_images();
        cached.sort();
        let mut want = env_ids(&spec);
        want.push(spec.image.id.clone());
        want.sort();
        assert_eq!(cached, want);
        drv.destroy(id).await.unwrap();
        assert!(!domain_exists(id));
        assert!(!drv.instance_path(id).exists());
    })
    .await;
}

/// The kernel and ramdisk ids a spec's image points at.
fn env_ids(spec: &VmSpec) -> Vec<String> {
    ["kernel_id", "ramdisk_id"]
        .iter()
        .map(|k| spec.image.properties[*k].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_a_numa_pinned_guest() {
    let env = env().await;
    let drv = env.driver.clone();
    let (mut spec, _) = spec(env.image.clone());
    spec.nics.clear();
    spec.flavor.vcpus = 2;
    spec.flavor.ram_mb = 256;
    spec.flavor
        .extra_specs
        .insert("hw:cpu_policy".into(), "dedicated".into());
    // Two guest cells on host cell 0, each vCPU pinned to a host CPU.
    spec.numa = Some(cloud_driver::NumaPlacement {
        cells: (0..2)
            .map(|i| cloud_driver::NumaCellPlacement {
                guest_cell: i,
                host_cell: 0,
                guest_cpus: vec![i],
                host_cpus: vec![i % 2],
                memory_mb: 128,
            })
            .collect(),
        page_size_kb: None,
    });
    let id = spec.id;
    with_cleanup(&env.driver, id, async move {
        drv.spawn(&spec).await.unwrap();
        let console = wait_for(&drv, id, "READY", 1).await;
        assert_eq!(value(&console, "CPUS"), "2");
        assert_eq!(value(&console, "RAM_MB"), "256");
        // libvirt applied the pinning and the guest cells.
        let live = virt::connect::Connect::open(Some("qemu:///system"))
            .unwrap()
            .lookup_domain_by_uuid_string(&id.to_string())
            .unwrap()
            .xml_desc(0)
            .unwrap();
        assert!(live.contains("<vcpupin vcpu='1' cpuset='1'/>"), "{live}");
        assert!(
            live.contains("<cell id='1' cpus='1' memory='131072' unit='KiB'/>"),
            "{live}"
        );
        drv.destroy(id).await.unwrap();
    })
    .await;
}
