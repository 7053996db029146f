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
    /// The external network, when the bed has one.
    pub external: Option<External>,
}

/// The physical network the bed's external networks ride on: a bridge in
/// the root namespace joining every host's `ext0` (mapped to physical
/// network [`EXTERNAL_PHYSNET`]) and an "outside" namespace standing for
/// the world beyond the cloud.
pub struct External {
    /// The bridge (root namespace).
    pub bridge: String,
    /// The outside namespace.
    pub outside: String,
    /// The subnet, `/24`.
    pub cidr: String,
    /// The outside namespace's address (the external subnet's gateway).
    pub outside_ip: Ipv4Addr,
}

/// The physical network name the bed's hosts map their `ext0` to.
pub const EXTERNAL_PHYSNET: &str = "public";

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
        Self::build(n, metadata, false).await
    }

    /// [`NetBed::new`] plus an external network ([`External`]): every host
    /// has a leg on it, and host 1 (index 0) has the network role, so
    /// routers run there.
    pub async fn with_external(n: usize, metadata: Option<MetadataProxyConfig>) -> NetBed {
        Self::build(n, metadata, true).await
    }

    async fn build(n: usize, metadata: Option<MetadataProxyConfig>, external: bool) -> NetBed {
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
            external: None,
        };
        run(&["ip", "link", "add", &underlay, "type", "bridge"]).await;
        run(&["ip", "link", "set", &underlay, "up"]).await;
        if external {
            bed.add_external(r).await;
        }
        for i in 1..=n {
            bed.add_host(i, metadata.clone()).await;
        }
        bed
    }

    async fn add_external(&mut self, r: u128) {
        let bridge = format!("ex{}", self.tag);
        run(&["ip", "link", "add", &bridge, "type", "bridge"]).await;
        run(&["ip", "link", "set", &bridge, "up"]).await;
        let outside = format!("{}out", self.tag);
        netns::ensure(&outside).await.expect("outside namespace");
        let leg = format!("{bridge}o");
        run(&[
            "ip", "link", "add", &leg, "type", "veth", "peer", "name", "eth0", "netns", &outside,
        ])
        .await;
        run(&["ip", "link", "set", &leg, "master", &bridge, "up"]).await;
        let net = [172, 16 + ((r >> 40) % 16) as u8, (r >> 48) as u8];
        let outside_ip = Ipv4Addr::new(net[0], net[1], net[2], 1);
        let cidr = format!("{}.{}.{}.0/24", net[0], net[1], net[2]);
        run(&[
            "ip",
            "-n",
            &outside,
            "addr",
            "add",
            &format!("{outside_ip}/24"),
            "dev",
            "eth0",
        ])
        .await;
        run(&["ip", "-n", &outside, "link", "set", "eth0", "up"]).await;
        self.external = Some(External {
            bridge,
            outside,
            cidr,
            outside_ip,
        });
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
        let mut physical_interfaces = std::collections::BTreeMap::new();
        if let Some(ext) = &self.external {
            let leg = format!("{}{i}", ext.bridge);
            run(&[
                "ip", "link", "add", &leg, "type", "veth", "peer", "name", "ext0", "netns", &ns,
            ])
            .await;
            run(&["ip", "link", "set", &leg, "master", &ext.bridge, "up"]).await;
            run(&["ip", "-n", &ns, "link", "set", "ext0", "up"]).await;
            physical_interfaces.insert(EXTERNAL_PHYSNET.to_owned(), "ext0".to_owned());
        }
        let host_dir = self.dir.join(format!("h{i}"));
        let network = DataPlaneConfig {
            physical_interfaces,
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
        config.network_node = self.external.is_some() && i == 0;
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
        if let Some(ext) = &self.external {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &ext.bridge])
                .status();
        }
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
