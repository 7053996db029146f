//! A test bed for the data plane on one machine: hosts are network
//! namespaces with their own underlay address on an underlay bridge the
//! bed makes, each driven by a compute agent of this process on the
//! `netns` driver (whose guests are namespaces too) or, for the root
//! namespace, on the libvirt driver. Bridges, VXLAN, nftables, dnsmasq and
//! the metadata proxies are the kernel's and the product's own.
//!
//! Everything the bed makes carries its tag (namespaces, interfaces, the
//! state directory that dnsmasq and udhcpc run from) and is removed when
//! it is dropped, even after a failed assertion. Traffic stays inside the
//! namespaces it made (and the root namespace, when a root host is asked
//! for).

use cloud_compute::AgentConfig;
use cloud_dataplane::{DataPlane, DataPlaneConfig, MetadataProxyConfig, cmd, netns};
use cloud_driver_netns::{NetnsConfig, NetnsDriver};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

/// One simulated host.
pub struct BedHost {
    /// Its name in the cloud.
    pub name: String,
    /// The namespace that plays it.
    pub namespace: String,
    /// Its underlay address.
    pub underlay_ip: Ipv4Addr,
    /// Its driver (guests' namespaces: [`NetnsDriver::guest_ns`]).
    pub driver: Arc<NetnsDriver>,
    /// Its data plane settings.
    pub network: DataPlaneConfig,
}

/// The bed.
pub struct NetBed {
    /// Prefix of everything the bed makes.
    pub tag: String,
    /// The underlay bridge (root namespace).
    pub underlay: String,
    /// The underlay's first three octets: host `i` is `.i`.
    net: [u8; 3],
    /// The hosts, `h1..hN`.
    pub hosts: Vec<BedHost>,
    /// State of every host (dnsmasq, udhcpc and their pid files).
    pub dir: PathBuf,
}

/// Whether this process can build a bed: root, and the tools. Under
/// `CI=true` it panics saying what is missing; elsewhere it says so and
/// returns false (the caller skips).
pub fn netbed_available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let missing: Vec<&str> = ["ip", "bridge", "nft", "dnsmasq", "busybox", "sysctl"]
        .into_iter()
        .filter(|t| cmd::find_program(t).is_none())
        .collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = format!(
        "the data plane test bed needs root (have root: {root}) and ip, bridge, nft, dnsmasq, \
         busybox, sysctl (missing: {missing:?}); deploy/libvirt-host.sh installs them"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
    false
}

impl NetBed {
    /// A bed of `n` namespace hosts. `metadata` is the metadata proxies'
    /// upstream (the test API's), if the test uses it.
    pub async fn new(n: usize, metadata: Option<MetadataProxyConfig>) -> NetBed {
        let r = uuid::Uuid::new_v4().as_u128();
        let tag = format!("nb{:04x}", r % 0x10000);
        let net = [10, 200 + (r >> 16) as u8 % 50, (r >> 24) as u8];
        let underlay = format!("ul{tag}");
        let dir = std::env::temp_dir().join(format!("cloud-netbed-{tag}"));
        std::fs::create_dir_all(&dir).expect("bed directory");
        let mut bed = NetBed {
            tag: tag.clone(),
            underlay: underlay.clone(),
            net,
            hosts: Vec::new(),
            dir,
        };
        run(&["ip", "link", "add", &underlay, "type", "bridge"]).await;
        run(&["ip", "link", "set", &underlay, "up"]).await;
        for i in 1..=n {
            bed.add_host(i, metadata.clone()).await;
        }
        bed
    }

    async fn add_host(&mut self, i: usize, metadata: Option<MetadataProxyConfig>) {
        let ns = format!("{}h{i}", self.tag);
        netns::ensure(&ns).await.expect("host namespace");
        let outer = format!("{}{i}", self.underlay);
        run(&[
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", "ul0", "netns", &ns,
        ])
        .await;
        run(&["ip", "link", "set", &outer, "master", &self.underlay, "up"]).await;
        let ip = self.address(i as u8);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "ul0",
        ])
        .await;
        run(&["ip", "-n", &ns, "link", "set", "ul0", "up"]).await;
        let host_dir = self.dir.join(format!("h{i}"));
        let network = DataPlaneConfig {
            local_ip: Some(ip),
            host_namespace: Some(ns.clone()),
            namespace_prefix: format!("{ns}-"),
            state_dir: host_dir.join("network"),
            metadata,
            ..DataPlaneConfig::default()
        };
        let driver = Arc::new(NetnsDriver::new(
            NetnsConfig {
                state_dir: host_dir.join("guests"),
                guest_prefix: format!("{ns}-vm-"),
                ..NetnsConfig::default()
            },
            Arc::new(DataPlane::new(network.clone())),
        ));
        self.hosts.push(BedHost {
            name: format!("{}-h{i}", self.tag),
            namespace: ns,
            underlay_ip: ip,
            driver,
            network,
        });
    }

    /// Underlay address `.last` of the bed.
    pub fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], last)
    }

    /// Gives the root namespace an underlay address (`.254`), for a host
    /// that runs there (the libvirt driver's). Returns it.
    pub async fn root_underlay(&mut self) -> Ipv4Addr {
        let ip = self.address(254);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            &self.underlay,
        ])
        .await;
        ip
    }

    /// The agent settings of host `i` (0-based): its name and underlay
    /// address, quick test timings.
    pub fn agent_config(&self, i: usize) -> AgentConfig {
        let h = &self.hosts[i];
        let mut config = AgentConfig::for_host(&h.name);
        config.local_ip = Some(h.underlay_ip);
        config.heartbeat_secs = 0.5;
        config.power_sync_secs = 1.0;
        config.shutdown_timeout_secs = 5;
        config
    }
}

impl Drop for NetBed {
    fn drop(&mut self) {
        // Processes first (dnsmasq and udhcpc run from the bed's
        // directory), then namespaces, then the underlay.
        let dir = self.dir.display().to_string();
        let _ = std::process::Command::new("pkill")
            .args(["-f", &dir])
            .status();
        for ns in netns::list(&self.tag) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &ns])
                .status();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.underlay])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run(args: &[&str]) {
    if let Err(e) = cmd::run(args[0], &args[1..]).await {
        panic!("test bed: {e:#}");
    }
}

/// Runs busybox `args` inside namespace `ns` (a guest): Ok with its output
/// when it exits 0.
pub async fn in_guest(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    cmd::run_in(Some(ns), "busybox", args).await
}

/// Whether guest `ns` gets an answer to one ping of `ip`.
pub async fn pings(ns: &str, ip: &str) -> bool {
    in_guest(ns, &["ping", "-c", "1", "-W", "1", ip])
        .await
        .is_ok()
}
