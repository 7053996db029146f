//! A cloud whose compute hosts are namespaces of a [`NetBed`]: the real
//! API, conductor and scheduler, one agent per namespace host on the
//! `netns` driver (guests are namespaces running busybox), with the
//! services' default timings. Networks, groups and servers are made
//! through the API as a user makes them.

use super::observe::{CountingBus, ObservedDriver};
use crate::env::Target;
use anyhow::{Context, bail};
use cloud_bus::{Bus, InProcBus};
use cloud_compute::AgentConfig;
use cloud_conductor::ConductorConfig;
use cloud_driver::Driver;
use cloud_driver_fake::FakeConfig;
use cloud_model::InstanceId;
use cloud_scheduler::SchedulerConfig;
use cloud_store::Backend;
use cloud_test_utils::netbed::{NetBed, netbed_available};
use cloud_test_utils::{Account, ControlPlane, PlaneOptions, amqp_test_bus};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a server may take to become ACTIVE (or go) before the run
/// fails: builds queue behind every host's data plane applies.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(300);
/// The flavor of every guest.
const FLAVOR: &str = "bench.ns";

/// The cloud.
pub struct DpCloud {
    /// API, conductor, scheduler.
    pub plane: ControlPlane,
    /// The namespace hosts (removed when dropped).
    pub bed: NetBed,
    /// Every agent's driver, by host index.
    pub drivers: Vec<Arc<ObservedDriver>>,
    /// The bus every service uses.
    pub bus: Arc<CountingBus>,
    /// The bootstrap admin (forces hosts, sees ports).
    pub admin: Account,
    image: String,
}

/// A server and where its guest is.
#[derive(Clone, Debug)]
pub struct Guest {
    /// Server id.
    pub id: String,
    /// Index of its host in the bed.
    pub host: usize,
    /// Its fixed address.
    pub ip: String,
    /// Its port.
    pub port: String,
    /// Its namespace.
    pub ns: String,
}

impl DpCloud {
    /// A cloud of `hosts` namespace hosts on `target`. Fails when this
    /// process cannot make namespaces (not root, tools missing).
    pub async fn start(target: Target, hosts: usize) -> anyhow::Result<DpCloud> {
        if !netbed_available() {
            bail!(
                "the dataplane scenario needs root and ip, bridge, nft, dnsmasq, busybox and \
                 sysctl (deploy/libvirt-host.sh installs them)"
            );
        }
        let inner: Arc<dyn Bus> = match target.backend {
            Backend::Sqlite => Arc::new(InProcBus::new()),
            Backend::Postgres => Arc::new(amqp_test_bus().await),
        };
        let bus = CountingBus::new(inner);
        let mut options = PlaneOptions::hosts(target.backend, 0, FakeConfig::default());
        options.bus = Some(bus.clone());
        options.conductor = ConductorConfig::default();
        options.scheduler = SchedulerConfig::default();
        options.agent = |_| {};
        let mut plane = ControlPlane::start(options).await;
        let bed = NetBed::new(hosts, None).await;
        let mut drivers = Vec::new();
        for (i, h) in bed.hosts.iter().enumerate() {
            // The services' default timings (heartbeats every 5 s, power
            // syncs every 30 s, a full resync every 60 s), not the bed's
            // quick test ones.
            let mut config = AgentConfig::for_host(&h.name);
            config.local_ip = Some(h.underlay_ip);
            let inner: Arc<dyn Driver> = h.driver.clone();
            let driver = ObservedDriver::new(inner);
            plane.add_host_with(config, driver.clone()).await;
            drivers.push(driver);
            if (i + 1) % 10 == 0 || i + 1 == hosts {
                eprintln!("  {}/{hosts} namespace hosts up", i + 1);
            }
        }
        let admin = plane.api.admin().await;
        let store = &plane.api.db.store;
        cloud_test_utils::lift_compute_quotas(store, &admin.project_id).await?;
        let image = cloud_test_utils::record_active_image(store, &admin.project_id, "nsguest")
            .await?
            .to_string();
        cloud_test_utils::record_flavor(store, FLAVOR, FLAVOR, 1, 64, &[]).await?;
        Ok(DpCloud {
            plane,
            bed,
            drivers,
            bus,
            admin,
            image,
        })
    }

    /// A network with one subnet `cidr`; returns its id.
    pub async fn network(&self, name: &str, cidr: &str) -> anyhow::Result<String> {
        let c = &self.admin.client;
        let r = c
            .post("/network/v2.0/networks", json!({"network": {"name": name}}))
            .await;
        let id = created(&r.body, r.status, "network")?;
        let r = c
            .post(
                "/network/v2.0/subnets",
                json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4}}),
            )
            .await;
        created(&r.body, r.status, "subnet")?;
        Ok(id)
    }

    /// A security group (with Neutron's default egress rules); its id.
    pub async fn group(&self, name: &str) -> anyhow::Result<String> {
        let r = self
            .admin
            .client
            .post(
                "/network/v2.0/security-groups",
                json!({"security_group": {"name": name}}),
            )
            .await;
        created(&r.body, r.status, "security_group")
    }

    /// An ingress TCP rule for `port` from anywhere on `group`; its id.
    pub async fn tcp_rule(&self, group: &str, port: u16) -> anyhow::Result<String> {
        let r = self
            .admin
            .client
            .post(
                "/network/v2.0/security-group-rules",
                json!({"security_group_rule": {"security_group_id": group,
                    "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                    "port_range_min": port, "port_range_max": port,
                    "remote_ip_prefix": "0.0.0.0/0"}}),
            )
            .await;
        created(&r.body, r.status, "security_group_rule")
    }

    /// `POST /servers` on `network`, forced onto host `host`, in `groups`
    /// (names); returns the server id without waiting.
    pub async fn post_server(
        &self,
        name: &str,
        network: &str,
        host: usize,
        groups: &[&str],
    ) -> anyhow::Result<String> {
        let mut server = json!({"name": name, "flavorRef": FLAVOR, "imageRef": self.image,
            "networks": [{"uuid": network}],
            "availability_zone": format!("nova:{}", self.bed.hosts[host].name)});
        if !groups.is_empty() {
            server["security_groups"] = groups.iter().map(|g| json!({"name": g})).collect();
        }
        let r = self
            .admin
            .client
            .post("/compute/v2.1/servers", json!({"server": server}))
            .await;
        if r.status != 202 {
            bail!("server create refused ({}): {}", r.status, r.body);
        }
        r.body["server"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("server id")
    }

    /// Waits until server `id` is ACTIVE; returns its guest.
    pub async fn guest(&self, id: &str) -> anyhow::Result<Guest> {
        let server = self.wait_server(id, Some("ACTIVE")).await?;
        let host_name = server["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default();
        let host = self
            .bed
            .hosts
            .iter()
            .position(|h| h.name == host_name)
            .with_context(|| format!("server {id} is on {host_name}, not a bed host"))?;
        let port = self.port_of(id).await?.context("the server has no port")?;
        let ns = self.bed.hosts[host]
            .driver
            .guest_ns(InstanceId::parse(id).context("server id")?);
        Ok(Guest {
            id: id.to_owned(),
            host,
            ip: port["fixed_ips"][0]["ip_address"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            port: port["id"].as_str().unwrap_or_default().to_owned(),
            ns,
        })
    }

    /// The port of server `id`, once it has one.
    pub async fn port_of(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let r = self
            .admin
            .client
            .get(&format!("/network/v2.0/ports?device_id={id}"))
            .await;
        if r.status != 200 {
            bail!("port list ({}): {}", r.status, r.body);
        }
        Ok(r.body["ports"].as_array().and_then(|a| a.first()).cloned())
    }

    /// Waits until server `id` has `status` (`None`: until it is gone);
    /// fails on ERROR or after [`SERVER_TIMEOUT`]. Returns the server.
    pub async fn wait_server(&self, id: &str, status: Option<&str>) -> anyhow::Result<Value> {
        let deadline = Instant::now() + SERVER_TIMEOUT;
        loop {
            let r = self
                .admin
                .client
                .get(&format!("/compute/v2.1/servers/{id}"))
                .await;
            let now = r.body["server"]["status"].as_str().unwrap_or_default();
            match status {
                None if r.status == 404 => return Ok(Value::Null),
                Some(s) if now == s => return Ok(r.body["server"].clone()),
                _ if now == "ERROR" => bail!("server {id} failed: {}", r.body["server"]["fault"]),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!(
                    "server {id} not {status:?} after {SERVER_TIMEOUT:?}: {}",
                    r.body
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes server `id` and waits until it is gone.
    pub async fn delete_server(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .admin
            .client
            .delete(&format!("/compute/v2.1/servers/{id}"))
            .await;
        if r.status != 204 {
            bail!("server delete ({}): {}", r.status, r.body);
        }
        self.wait_server(id, None).await.map(|_| ())
    }

    /// Waits until the guest's DHCP client configured its address.
    pub async fn wait_address(&self, g: &Guest) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let shown = cloud_dataplane::cmd::run("ip", ["-n", &g.ns, "-4", "addr", "show"])
                .await
                .unwrap_or_default();
            if shown.contains(&format!("inet {}/", g.ip)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("guest {} did not get {} by DHCP: {shown}", g.ns, g.ip);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the services, then removes the namespaces.
    pub async fn stop(self) {
        let DpCloud { plane, bed, .. } = self;
        plane.shutdown().await;
        drop(bed);
    }
}

/// The id of a created resource (`kind` in the body), or why not.
fn created(body: &Value, status: u16, kind: &str) -> anyhow::Result<String> {
    if status != 201 {
        bail!("{kind} create refused ({status}): {body}");
    }
    body[kind]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{kind} id in {body}"))
}
