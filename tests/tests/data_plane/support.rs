//! What the data plane scenarios share: a control plane whose compute
//! hosts are namespaces of a [`NetBed`] on the `netns` driver, networks
//! and servers made through the API as users make them, and guests seen
//! from inside (`ip netns exec <guest> busybox ...`).

use cloud_dataplane::MetadataProxyConfig;
use cloud_driver_fake::FakeConfig;
use cloud_model::InstanceId;
use cloud_store::Backend;
use cloud_test_utils::netbed::{NetBed, in_guest, netbed_available};
use cloud_test_utils::{
    Account, ControlPlane, PlaneOptions, create_external_network, create_network, first_subnet,
    lift_compute_quotas, record_active_image, record_flavor, wait_for_status,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Building, deleting: the fake-fast control plane plus namespaces.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a change may take to show in the data plane before a test
/// gives up on it (the time itself is measured by `cloud-bench`).
pub const CONVERGE: Duration = Duration::from_secs(15);
/// The metadata secret of the test clouds.
pub const METADATA_SECRET: &str = "test-metadata-secret";

/// A cloud on a test bed.
pub struct Cloud {
    /// Control plane (API, conductor, scheduler).
    pub plane: ControlPlane,
    /// The namespace hosts.
    pub bed: NetBed,
    /// The bootstrap admin.
    pub admin: Account,
    /// An image anyone may boot.
    pub image: String,
    /// A 1-vCPU flavor.
    pub flavor: String,
}

impl Cloud {
    /// A cloud with `hosts` namespace hosts, on `backend` (SQLite with the
    /// in-process bus, or PostgreSQL with RabbitMQ). `None` when the
    /// machine cannot run namespaces outside CI (the bed says why).
    pub async fn start(backend: Backend, hosts: usize) -> Option<Cloud> {
        Self::start_bed(backend, hosts, false).await
    }

    /// [`Cloud::start`] with an external network on the physical network
    /// `public` (the bed's outside namespace beyond it) and host 1 (index
    /// 0) as the network node running routers.
    pub async fn start_with_external(backend: Backend, hosts: usize) -> Option<Cloud> {
        Self::start_bed(backend, hosts, true).await
    }

    async fn start_bed(backend: Backend, hosts: usize, external: bool) -> Option<Cloud> {
        if !netbed_available() {
            return None;
        }
        let mut options = PlaneOptions::hosts(backend, 0, FakeConfig::default());
        options.api = |c| {
            c.metadata.shared_secret = Some(METADATA_SECRET.to_owned());
            c.network
                .physical_networks
                .push(cloud_test_utils::netbed::EXTERNAL_PHYSNET.to_owned());
        };
        let mut plane = ControlPlane::start(options).await;
        let metadata = MetadataProxyConfig {
            api_url: format!("{}/metadata", plane.api.url),
            shared_secret: METADATA_SECRET.to_owned(),
        };
        let bed = if external {
            NetBed::with_external(hosts, Some(metadata)).await
        } else {
            NetBed::new(hosts, Some(metadata)).await
        };
        for (i, h) in bed.hosts.iter().enumerate() {
            plane
                .add_host_with(bed.agent_config(i), h.driver.clone())
                .await;
        }
        let admin = plane.api.admin().await;
        let store = &plane.api.db.store;
        let image = record_active_image(store, &admin.project_id, "nsguest")
            .await
            .unwrap()
            .to_string();
        record_flavor(store, "ns1", "ns.tiny", 1, 64, &[])
            .await
            .unwrap();
        Some(Cloud {
            plane,
            bed,
            admin,
            image,
            flavor: "ns1".to_owned(),
        })
    }

    /// A member of a new project `project`, with quotas out of the way.
    pub async fn member(&self, project: &str) -> Account {
        let a = self
            .plane
            .api
            .account(project, &format!("{project}-user"), "member")
            .await;
        lift_compute_quotas(&self.plane.api.db.store, &a.project_id)
            .await
            .unwrap();
        a
    }

    /// A network with one subnet `cidr` (gateway .1) in `who`'s project;
    /// returns the network id.
    pub async fn network(&self, who: &Account, name: &str, cidr: &str) -> String {
        create_network(&who.client, name, cidr, json!({})).await.0
    }

    /// The external network on the bed's outside (admin, `router:external`,
    /// flat on `public`), its subnet's gateway the outside namespace, no
    /// DHCP; returns its id.
    pub async fn external_network(&self) -> String {
        let ext = self
            .bed
            .external
            .as_ref()
            .expect("a bed with an external network");
        let base = ext.cidr.trim_end_matches(".0/24");
        create_external_network(
            &self.admin.client,
            "public",
            cloud_test_utils::netbed::EXTERNAL_PHYSNET,
            &ext.cidr,
            json!({"gateway_ip": ext.outside_ip.to_string(),
                "allocation_pools": [{"start": format!("{base}.10"), "end": format!("{base}.200")}]}),
        )
        .await
    }

    /// The id of the (first) subnet of `network`.
    pub async fn subnet_of(&self, network: &str) -> String {
        first_subnet(&self.admin.client, network).await
    }

    /// Boots a server on `network` as `who` (on `host` when given: the
    /// admin forces it there, as Nova's `zone:host` does), waits for
    /// ACTIVE and for its guest's DHCP lease; returns it.
    pub async fn boot(
        &self,
        who: &Account,
        name: &str,
        network: &str,
        host: Option<usize>,
        extra: Value,
    ) -> Server {
        let mut server = json!({"name": name, "flavorRef": self.flavor,
            "imageRef": self.image, "networks": [{"uuid": network}]});
        if let Some(h) = host {
            server["availability_zone"] = json!(format!("nova:{}", self.bed.hosts[h].name));
        }
        if let (Some(s), Some(e)) = (server.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        let r = who
            .client
            .post("/compute/v2.1/servers", json!({"server": server}))
            .await;
        assert_eq!(r.status, 202, "server create: {}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        self.server(&id).await
    }

    /// A server that exists: waits for ACTIVE and its guest's address.
    pub async fn server(&self, id: &str) -> Server {
        let s = wait_for_status(&self.admin.client, id, &["ACTIVE", "ERROR"], STATE_TIMEOUT).await;
        assert_eq!(s["status"], "ACTIVE", "server {id}: {s}");
        let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
        let ip = s["addresses"]
            .as_object()
            .and_then(|a| a.values().next())
            .and_then(|v| v[0]["addr"].as_str())
            .unwrap_or_default()
            .to_owned();
        let h = self
            .bed
            .hosts
            .iter()
            .position(|b| b.name == host)
            .unwrap_or_else(|| panic!("server {id} is on {host}, not a bed host"));
        let ns = self.bed.hosts[h]
            .driver
            .guest_ns(InstanceId::parse(id).unwrap());
        let server = Server {
            id: id.to_owned(),
            host: h,
            ip,
            ns,
        };
        server.wait_address().await;
        server
    }

    /// Deletes a server and waits until it is gone.
    pub async fn delete(&self, who: &Account, id: &str) {
        let r = who
            .client
            .delete(&format!("/compute/v2.1/servers/{id}"))
            .await;
        assert_eq!(r.status, 204, "delete: {}", r.body);
        wait_for_status(&self.admin.client, id, &["DELETED"], STATE_TIMEOUT).await;
    }

    /// Restarts the agent of host `h` (its guests and kernel state stay).
    pub async fn restart_agent(&mut self, h: usize) {
        let name = self.bed.hosts[h].name.clone();
        self.plane.stop_host(&name).await;
        let driver = self.bed.hosts[h].driver.clone();
        self.plane
            .add_host_with(self.bed.agent_config(h), driver)
            .await;
    }

    /// Stops everything (the bed is removed when dropped).
    pub async fn stop(self) {
        let Cloud { plane, bed, .. } = self;
        plane.shutdown().await;
        drop(bed);
    }
}

/// A server and where its guest is.
pub struct Server {
    /// Server id.
    pub id: String,
    /// Index of its host in the bed.
    pub host: usize,
    /// Its fixed address.
    pub ip: String,
    /// Its guest's namespace.
    pub ns: String,
}

impl Server {
    /// Waits until the guest's DHCP client configured its address.
    pub async fn wait_address(&self) {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let shown =
                cloud_dataplane::cmd::run("ip", ["-n", &self.ns, "-4", "addr", "show", "eth0"])
                    .await
                    .unwrap_or_default();
            if shown.contains(&format!("inet {}/", self.ip)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "guest {} did not get {} by DHCP: {shown}",
                self.ns,
                self.ip
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether it gets a ping answer from `ip`.
    pub async fn pings(&self, ip: &str) -> bool {
        cloud_test_utils::netbed::pings(&self.ns, ip).await
    }

    /// Busybox `args` inside the guest.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        in_guest(&self.ns, args).await
    }

    /// Serves one line on TCP `port` until the returned task is dropped.
    pub fn serve_tcp(&self, port: u16, line: &str) -> Listener {
        let ns = self.ns.clone();
        let line = line.to_owned();
        Listener(tokio::spawn(async move {
            loop {
                let _ = in_guest(
                    &ns,
                    &["nc", "-l", "-p", &port.to_string(), "-e", "echo", &line],
                )
                .await;
            }
        }))
    }

    /// What a TCP connection to `ip:port` reads (empty when refused,
    /// dropped or timed out).
    pub async fn tcp(&self, ip: &str, port: u16) -> String {
        self.run(&["nc", "-w", "2", ip, &port.to_string()])
            .await
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

/// A TCP server in a guest; stops with the value.
pub struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls `check` until it is true or `CONVERGE` passes; the message says
/// what did not happen.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + CONVERGE;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {CONVERGE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
