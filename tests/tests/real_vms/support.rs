//! What the real-VM scenarios share: the test guest (built once per set of
//! inputs and shared by every test process of a run), a control plane
//! with one compute host on the libvirt driver, networks, servers, and
//! reading the guest's `TESTGUEST` console markers through the API.

use base64::Engine;
use cloud_compute::{AgentConfig, HttpImageFetcher};
use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_driver_libvirt::{LibvirtConfig, LibvirtDriver, VirtTypeSetting};
use cloud_model::network::{AllocationPool, Ipv4Cidr, Network};
use cloud_model::{InstanceId, NetworkId, ProjectId, Timestamp};
use cloud_store::{Backend, NewSubnet};
use cloud_test_utils::netbed::{NetBed, netbed_available};
use cloud_test_utils::{Account, ControlPlane, PlaneOptions, upload_image, wait_for_status};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Boot-to-READY under TCG is 10-20 s on a busy 2-core host; leave room
/// for tests running side by side.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// Reaching ACTIVE/SHUTOFF/deleted through the control plane.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(180);
/// The compute host's name.
pub const HOST: &str = "real-1";
/// The libvirt URI the tests use.
pub const URI: &str = "qemu:///system";

/// The directory with the test guest's build script and guest files.
pub fn images_dir() -> PathBuf {
    cloud_test_utils::guest::images_dir()
}

/// The built test guest, cached in this workspace's target directory.
pub fn guest() -> PathBuf {
    cloud_test_utils::guest::test_guest(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// A control plane (API, conductor, scheduler) with one compute host,
/// [`HOST`], on the libvirt driver, downloading images from the plane's
/// image API over HTTP.
pub struct RealCloud {
    /// The control plane.
    pub plane: ControlPlane,
    /// The bootstrap admin.
    pub admin: Account,
    /// The driver's configuration (a restarted agent gets a new driver
    /// with the same configuration).
    pub config: LibvirtConfig,
    /// The running driver (to look at its files).
    pub driver: Arc<LibvirtDriver>,
    /// The built guest.
    pub guest: PathBuf,
    /// Namespace hosts beside the libvirt host, when asked for.
    pub bed: Option<NetBed>,
    /// The libvirt host's underlay address (with a bed).
    local_ip: Option<Ipv4Addr>,
    _dir: tempfile::TempDir,
}

impl RealCloud {
    /// Starts everything. Fails (never skips) when libvirt is unreachable.
    pub async fn start() -> RealCloud {
        Self::start_with_bed(0).await
    }

    /// [`RealCloud::start`] plus `n` namespace hosts of a [`NetBed`] on the
    /// `netns` driver, the libvirt host being the root namespace on the
    /// same underlay (`n` = 0: no bed).
    pub async fn start_with_bed(n: usize) -> RealCloud {
        if let Err(e) = cloud_driver_libvirt::check_connection(URI).await {
            panic!("{URI} is unreachable ({e:#}); run deploy/libvirt-host.sh");
        }
        let guest = tokio::task::spawn_blocking(guest).await.unwrap();
        let mut options = PlaneOptions::hosts(Backend::Sqlite, 0, FakeConfig::default());
        options.conductor.spawn_timeout_secs = 180;
        options.conductor.action_timeout_secs = 180;
        options.conductor.delete_timeout_secs = 120;
        options.agent = |a| {
            a.heartbeat_secs = 0.5;
            a.power_sync_secs = 1.0;
            a.maintenance_secs = 1.0;
            a.shutdown_timeout_secs = 60;
            a.inventory.cpu_allocation_ratio = 4.0;
        };
        options.api = |c| c.network.physical_networks.push(PUBLIC_PHYSNET.to_owned());
        let mut plane = ControlPlane::start(options).await;
        // The host's way to floating IPs: an uplink holding the external
        // subnet's gateway, without NAT (the host itself is the outside).
        test_uplink().ensure().await.expect("test uplink");
        let admin = plane.api.admin().await;
        let dir = tempfile::tempdir().unwrap();
        // QEMU runs as libvirt-qemu: it must reach the files below.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let config = LibvirtConfig {
            uri: URI.to_owned(),
            virt_type: VirtTypeSetting::Auto,
            instances_path: dir.path().join("instances"),
            image_cache_path: dir.path().join("images"),
            // Shared with the driver's own tests: the virt-type probe is
            // cached there once per host boot. Bridges are per network and
            // networks are random, so tests do not collide.
            state_path: std::env::temp_dir().join("cloud-driver-libvirt-tests"),
            // Unused base images leave the cache within seconds.
            image_cache_max_unused_age_secs: 5,
            shutdown_timeout_secs: 60,
            reserved_host_memory_mb: 0,
            ..LibvirtConfig::default()
        };
        let (bed, local_ip) = if n > 0 {
            assert!(netbed_available(), "the namespace test bed cannot run here");
            let mut bed = NetBed::new(n, None).await;
            let ip = bed.root_underlay().await;
            for (i, h) in bed.hosts.iter().enumerate() {
                plane
                    .add_host_with(bed.agent_config(i), h.driver.clone())
                    .await;
            }
            (Some(bed), Some(ip))
        } else {
            (None, None)
        };
        let driver = new_driver(&plane, &config, local_ip).await;
        plane
            .add_host_with(agent_config(local_ip), driver.clone())
            .await;
        RealCloud {
            plane,
            admin,
            config,
            driver,
            guest,
            bed,
            local_ip,
            _dir: dir,
        }
    }

    /// Restarts the compute agent, as a restarted `cloud-compute` process
    /// would: the old agent is killed, a new driver connects to libvirt.
    pub async fn restart_agent(&mut self) {
        self.plane.stop_host(HOST).await;
        self.driver = new_driver(&self.plane, &self.config, self.local_ip).await;
        self.plane
            .add_host_with(agent_config(self.local_ip), self.driver.clone())
            .await;
    }

    /// The admin's HTTP client.
    pub fn client(&self) -> &cloud_test_utils::Client {
        &self.admin.client
    }

    /// Uploads a file of the guest through the image API.
    pub async fn upload(&self, name: &str, file: &str, disk_format: &str, extra: Value) -> String {
        let data = std::fs::read(self.guest.join(file)).unwrap();
        upload_image(self.client(), name, disk_format, data, extra).await
    }

    /// A flavor through the store (`disk` 1 GiB).
    pub async fn flavor(&self, id: &str, vcpus: i64, ram_mb: i64) -> String {
        cloud_e2e::flavor(&self.plane.api.db.store, id, vcpus, ram_mb, &[]).await;
        id.to_owned()
    }

    /// A shared network with one DHCP subnet in a random 10.x.y.0/24 (no
    /// clash with other tests' bridges), through the network API; through
    /// the store while the API does not serve `/network/v2.0` yet.
    pub async fn network(&self) -> (String, Ipv4Cidr) {
        let rand = uuid::Uuid::new_v4().as_u128();
        let (a, b) = ((rand % 250) as u8 + 2, ((rand >> 8) % 250) as u8 + 2);
        let cidr = Ipv4Cidr::parse(&format!("10.{a}.{b}.0/24")).unwrap();
        let gateway = Ipv4Addr::new(10, a, b, 1);
        let name = format!("net-{}", uuid_tail());
        let r = self
            .client()
            .post(
                "/network/v2.0/networks",
                json!({"network": {"name": name, "shared": true}}),
            )
            .await;
        if r.status != 404 {
            assert_eq!(r.status, 201, "network create: {}", r.body);
            let id = r.body["network"]["id"].as_str().unwrap().to_owned();
            let r = self
                .client()
                .post(
                    "/network/v2.0/subnets",
                    json!({"subnet": {
                        "network_id": id, "ip_version": 4, "cidr": cidr.to_string(),
                        "gateway_ip": gateway.to_string(), "enable_dhcp": true,
                    }}),
                )
                .await;
            assert_eq!(r.status, 201, "subnet create: {}", r.body);
            eprintln!("network {id} ({cidr}) created through the network API");
            return (id, cidr);
        }
        let store = &self.plane.api.db.store;
        let project = ProjectId::from_string(&self.admin.project_id);
        let now = Timestamp::now();
        let net = store
            .network_create(
                &Network {
                    id: NetworkId::new(),
                    project_id: project.clone(),
                    name,
                    description: String::new(),
                    admin_state_up: true,
                    shared: true,
                    external: false,
                    mtu: 1450,
                    segment: cloud_model::network::Segment {
                        network_type: cloud_model::network::NetworkType::Vxlan,
                        physical_network: None,
                        segmentation_id: None,
                    },
                    port_security_enabled: true,
                    subnet_ids: Vec::new(),
                    created_at: now,
                    updated_at: now,
                    revision: 1,
                },
                cloud_store::VniRange::default(),
            )
            .await
            .unwrap();
        store
            .subnet_create(&NewSubnet {
                network_id: net.id,
                project_id: project,
                name: "subnet".to_owned(),
                description: String::new(),
                cidr,
                gateway_ip: Some(gateway),
                enable_dhcp: true,
                dns_nameservers: Vec::new(),
                allocation_pools: vec![AllocationPool {
                    start: Ipv4Addr::new(10, a, b, 2),
                    end: Ipv4Addr::new(10, a, b, 254),
                }],
                host_routes: Vec::new(),
            })
            .await
            .unwrap();
        eprintln!(
            "network {} ({cidr}) created in the store (no network API)",
            net.id
        );
        (net.id.to_string(), cidr)
    }

    /// Boots a server on `network` (optionally at `fixed_ip`) with a
    /// user-data script; returns its id once the API accepted it.
    pub async fn boot(
        &self,
        name: &str,
        flavor: &str,
        image: &str,
        network: &str,
        fixed_ip: Option<Ipv4Addr>,
        user_data: Option<&str>,
    ) -> String {
        let mut net = json!({"uuid": network});
        if let Some(ip) = fixed_ip {
            net["fixed_ip"] = json!(ip.to_string());
        }
        let mut server = json!({
            "name": name, "flavorRef": flavor, "imageRef": image, "networks": [net],
        });
        if let Some(script) = user_data {
            server["user_data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(script.as_bytes()));
        }
        let r = self
            .client()
            .post("/compute/v2.1/servers", json!({ "server": server }))
            .await;
        assert_eq!(r.status, 202, "boot {name}: {}", r.body);
        r.body["server"]["id"].as_str().unwrap().to_owned()
    }

    /// Uploads the test guest, boots one server of it (1 vCPU, 128 MiB) on
    /// a network of its own with `user_data`, and waits until it is ACTIVE
    /// and its console shows the first READY: where the server-action
    /// tests (pause, suspend, reboots, NMIs) start. Returns its id.
    pub async fn boot_ready_guest(&self, name: &str, user_data: Option<&str>) -> String {
        let image = self
            .upload("testguest", "testguest.qcow2", "qcow2", json!({}))
            .await;
        let flavor = self.flavor("real.1c128", 1, 128).await;
        let (net, _) = self.network().await;
        let id = self
            .boot(name, &flavor, &image, &net, None, user_data)
            .await;
        let server = self.wait(&id, &["ACTIVE", "ERROR"]).await;
        assert_eq!(server["status"], "ACTIVE", "{server}");
        self.wait_marker(&id, "READY", 1).await;
        id
    }

    /// Waits for one of `statuses`; returns the server.
    pub async fn wait(&self, id: &str, statuses: &[&str]) -> Value {
        wait_for_status(self.client(), id, statuses, STATE_TIMEOUT).await
    }

    /// Posts a server action and expects 202.
    pub async fn action(&self, id: &str, body: Value) {
        let r = self
            .client()
            .post(&format!("/compute/v2.1/servers/{id}/action"), body.clone())
            .await;
        assert_eq!(r.status, 202, "{body}: {}", r.body);
    }

    /// The console log, through the API (`os-getConsoleOutput`).
    pub async fn console(&self, id: &str) -> String {
        let r = self
            .client()
            .post(
                &format!("/compute/v2.1/servers/{id}/action"),
                json!({"os-getConsoleOutput": {}}),
            )
            .await;
        assert_eq!(r.status, 200, "console of {id}: {}", r.body);
        r.body["output"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the console shows `marker` at least `n` times.
    pub async fn wait_marker(&self, id: &str, marker: &str, n: usize) -> String {
        let started = Instant::now();
        loop {
            let console = self.console(id).await;
            if count(&console, marker) >= n {
                eprintln!("{id}: {marker} #{n} after {:.1?}", started.elapsed());
                return console;
            }
            assert!(
                started.elapsed() < BOOT_TIMEOUT,
                "{id}: no {marker} #{n} within {BOOT_TIMEOUT:?}; console:\n{console}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Deletes a server and waits until it is gone.
    pub async fn delete(&self, id: &str) {
        let r = self
            .client()
            .delete(&format!("/compute/v2.1/servers/{id}"))
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        self.wait(id, &["DELETED"]).await;
    }
}

/// A test that fails half-way leaves nothing running: every domain of
/// this cloud's driver is destroyed with its disks, taps and bridges.
impl Drop for RealCloud {
    fn drop(&mut self) {
        let driver = self.driver.clone();
        // Drop may run on a runtime thread (unwinding a failed test), where
        // no runtime can be blocked on: clean up from a thread of our own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                for vm in driver.list().await.unwrap_or_default() {
                    eprintln!("cleaning up VM {} left by the test", vm.id);
                    let _ = driver.destroy(vm.id).await;
                }
                // And the networks its agent set up on this machine.
                let _ = driver
                    .apply_network(&cloud_driver::HostNetwork::default())
                    .await;
                let _ = cloud_dataplane::cmd::run("ip", ["link", "del", UPLINK_HOST]).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The physical network of the tests' external network.
pub const PUBLIC_PHYSNET: &str = "public";
/// The uplink's ends: the host's, and the one on the external bridge.
const UPLINK_HOST: &str = "ctpub0";
const UPLINK_PHYS: &str = "ctpub1";
/// The external subnet; the host is its gateway (.1).
pub const PUBLIC_CIDR: &str = "172.29.251.0/24";

fn test_uplink() -> cloud_dataplane::uplink::HostUplink {
    cloud_dataplane::uplink::HostUplink {
        host_interface: UPLINK_HOST.to_owned(),
        physical_interface: UPLINK_PHYS.to_owned(),
        cidr: cloud_model::network::Ipv4Cidr::parse(PUBLIC_CIDR).unwrap(),
        gateway: Ipv4Addr::new(172, 29, 251, 1),
        nat: false,
    }
}

/// The libvirt host's agent settings (the plane's `agent` tweak is not
/// used: hosts added whole take these).
fn agent_config(local_ip: Option<Ipv4Addr>) -> AgentConfig {
    let mut a = AgentConfig::for_host(HOST);
    // Routers run here, with the external network on the test uplink.
    a.network_node = true;
    a.heartbeat_secs = 0.5;
    a.power_sync_secs = 1.0;
    a.maintenance_secs = 1.0;
    a.shutdown_timeout_secs = 60;
    a.inventory.cpu_allocation_ratio = 4.0;
    a.local_ip = local_ip;
    a
}

async fn new_driver(
    plane: &ControlPlane,
    config: &LibvirtConfig,
    local_ip: Option<Ipv4Addr>,
) -> Arc<LibvirtDriver> {
    let fetcher = HttpImageFetcher::new(plane.image_api()).unwrap();
    let started = Instant::now();
    // The data plane's files live beside the driver's state.
    let dataplane = Arc::new(cloud_dataplane::DataPlane::new(
        cloud_dataplane::DataPlaneConfig {
            local_ip,
            state_dir: config.state_path.join("network"),
            physical_interfaces: [(PUBLIC_PHYSNET.to_owned(), UPLINK_PHYS.to_owned())].into(),
            ..cloud_dataplane::DataPlaneConfig::default()
        },
    ));
    let driver = LibvirtDriver::new(config.clone(), Arc::new(fetcher), dataplane)
        .await
        .unwrap_or_else(|e| panic!("libvirt driver: {}", e.full_message()));
    eprintln!(
        "libvirt driver ready in {:.1?}: virt_type {} ({})",
        started.elapsed(),
        driver.virt_type().as_str(),
        driver.virt_type_reason()
    );
    Arc::new(driver)
}

fn uuid_tail() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The `TESTGUEST ...` lines of a console log, `\r` stripped.
pub fn markers(console: &str) -> Vec<String> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.strip_prefix("TESTGUEST "))
        .map(str::to_owned)
        .collect()
}

/// How many times `marker` was printed.
pub fn count(console: &str, marker: &str) -> usize {
    markers(console).iter().filter(|m| *m == marker).count()
}

/// The value of the last `KEY=...` marker (the current boot's).
pub fn value(console: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    markers(console)
        .iter()
        .rev()
        .find_map(|m| m.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {key}= marker in:\n{console}"))
}

/// The server's only fixed IP as the API shows it.
pub fn fixed_ip(server: &Value) -> String {
    let addresses = server["addresses"].as_object().expect("addresses");
    let ips: Vec<&str> = addresses
        .values()
        .flat_map(|v| v.as_array().into_iter().flatten())
        .filter_map(|a| a["addr"].as_str())
        .collect();
    assert_eq!(ips.len(), 1, "{server}");
    ips[0].to_owned()
}

/// Whether libvirt knows a domain with the instance's uuid.
pub fn domain_exists(id: &str) -> bool {
    let conn = virt::connect::Connect::open(Some(URI)).unwrap();
    conn.lookup_domain_by_uuid_string(id).is_ok()
}

/// The instance's libvirt domain (it must exist).
pub fn domain(id: &str) -> virt::domain::Domain {
    let conn = virt::connect::Connect::open(Some(URI)).unwrap();
    conn.lookup_domain_by_uuid_string(id).unwrap()
}

/// Whether libvirt runs the instance's domain.
pub fn domain_running(id: &str) -> bool {
    let conn = virt::connect::Connect::open(Some(URI)).unwrap();
    conn.lookup_domain_by_uuid_string(id)
        .and_then(|d| d.is_active())
        .unwrap_or(false)
}

/// Whether a network interface exists on the host.
pub fn link_exists(name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The ids of the server's ports, from the store.
pub async fn port_ids(cloud: &RealCloud, server: &str) -> Vec<String> {
    let id = InstanceId::parse(server).unwrap();
    cloud
        .plane
        .api
        .db
        .store
        .port_list(&cloud_store::PortFilter {
            device_id: Some(id.to_string()),
            ..cloud_store::PortFilter::all(cloud_store::Scope::All)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id.to_string())
        .collect()
}
