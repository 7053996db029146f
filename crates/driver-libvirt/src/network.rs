//! Host networking: one Linux bridge per network, created when its first
//! port arrives and removed when its last port leaves. The subnet gateway
//! address sits on the bridge so the host can serve DHCP there (see
//! [`crate::dhcp`]). Taps are created by libvirt (`<interface
//! type='bridge'>`), named from the port id as Nova names them.
//!
//! Which ports use a bridge is kept in `ports.json` in the bridge's state
//! directory, so membership survives agent restarts.

use crate::cmd;
use crate::dhcp::{self, Subnet};
use crate::locks::KeyedLocks;
use anyhow::Context;
use cloud_driver::NicSpec;
use cloud_model::InstanceId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Linux limits interface names to 15 characters.
const IFNAMSIZ_MAX: usize = 15;

/// The bridge of a network: `brq` + the first 11 characters of its id.
pub fn bridge_name(network_id: &str) -> String {
    iface_name("brq", network_id)
}

/// The tap of a port: `tap` + the first 11 characters of its id.
pub fn tap_name(port_id: &str) -> String {
    iface_name("tap", port_id)
}

/// `prefix` + as much of `id` as fits, keeping only characters that are
/// safe in interface names (ids are UUIDs; anything else is dropped).
fn iface_name(prefix: &str, id: &str) -> String {
    let room = IFNAMSIZ_MAX.min(prefix.len() + 11) - prefix.len();
    let tail: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(room)
        .collect();
    format!("{prefix}{tail}")
}

/// One port on a bridge, as recorded in `ports.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortEntry {
    /// The instance the port is plugged into.
    pub instance_id: InstanceId,
    /// The port.
    pub nic: NicSpec,
}

/// The bridges of this host and their state directories.
pub struct Networking {
    dir: PathBuf,
    locks: KeyedLocks<String>,
}

impl Networking {
    /// Keeps state under `state_path/networks`.
    pub fn new(state_path: &Path) -> Self {
        Networking {
            dir: state_path.join("networks"),
            locks: KeyedLocks::default(),
        }
    }

    fn bridge_dir(&self, bridge: &str) -> PathBuf {
        self.dir.join(bridge)
    }

    /// Makes sure every NIC's bridge exists with its gateway address and
    /// DHCP entry. Returns `(bridge, tap)` per NIC. Idempotent.
    pub async fn plug(
        &self,
        instance: InstanceId,
        nics: &[NicSpec],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut devices = Vec::new();
        for nic in nics {
            let bridge = bridge_name(&nic.network_id);
            let _guard = self.locks.lock(&bridge).await;
            let dir = self.bridge_dir(&bridge);
            let mut ports = load_ports(&dir)?;
            ports.retain(|p| p.nic.port_id != nic.port_id);
            ports.push(PortEntry {
                instance_id: instance,
                nic: nic.clone(),
            });
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            save_ports(&dir, &ports)?;
            ensure_bridge(&bridge, &subnets(&ports)).await?;
            dhcp::sync(&dir, &bridge, &ports, false).await?;
            devices.push((bridge, tap_name(&nic.port_id)));
        }
        Ok(devices)
    }

    /// Removes `instance`'s ports from every bridge; a bridge left without
    /// ports is deleted with its DHCP server. Idempotent.
    pub async fn unplug_instance(&self, instance: InstanceId) -> anyhow::Result<()> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        let bridges: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for bridge in bridges {
            let _guard = self.locks.lock(&bridge).await;
            let dir = self.bridge_dir(&bridge);
            let mut ports = load_ports(&dir)?;
            let before = ports.len();
            let removed_macs: Vec<String> = ports
                .iter()
                .filter(|p| p.instance_id == instance)
                .map(|p| p.nic.mac.to_ascii_lowercase())
                .collect();
            ports.retain(|p| p.instance_id != instance);
            if ports.is_empty() {
                dhcp::stop(&dir).await?;
                delete_bridge(&bridge).await?;
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
                tracing::info!(bridge, "last port left; bridge removed");
            } else if ports.len() != before {
                save_ports(&dir, &ports)?;
                dhcp::forget_leases(&dir, &removed_macs)?;
                dhcp::sync(&dir, &bridge, &ports, true).await?;
            }
        }
        Ok(())
    }
}

fn load_ports(dir: &Path) -> anyhow::Result<Vec<PortEntry>> {
    let path = dir.join("ports.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save_ports(dir: &Path, ports: &[PortEntry]) -> anyhow::Result<()> {
    let path = dir.join("ports.json");
    let tmp = dir.join("ports.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(ports)?)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The distinct subnets (gateway + prefix) of the ports on a bridge.
pub fn subnets(ports: &[PortEntry]) -> Vec<Subnet> {
    let mut out: Vec<Subnet> = Vec::new();
    for p in ports {
        let (Some(gateway), Some(prefix)) = (p.nic.gateway, p.nic.prefix) else {
            continue;
        };
        if out
            .iter()
            .any(|s| s.gateway == gateway && s.prefix == prefix)
        {
            continue;
        }
        out.push(Subnet {
            gateway,
            prefix,
            dns: p.nic.dns.clone(),
            mtu: p.nic.mtu,
        });
    }
    out
}

async fn link_exists(name: &str) -> bool {
    cmd::run("ip", ["link", "show", "dev", name]).await.is_ok()
}

/// Creates the bridge if missing, brings it up, and puts each subnet's
/// gateway address on it.
async fn ensure_bridge(bridge: &str, subnets: &[Subnet]) -> anyhow::Result<()> {
    if !link_exists(bridge).await {
        // Another task (or a previous run) may have created it in between.
        if let Err(e) = cmd::run("ip", ["link", "add", "name", bridge, "type", "bridge"]).await
            && !link_exists(bridge).await
        {
            return Err(e);
        }
        tracing::info!(bridge, "bridge created");
    }
    cmd::run("ip", ["link", "set", "dev", bridge, "up"]).await?;
    for s in subnets {
        let addr = format!("{}/{}", s.gateway, s.prefix);
        cmd::run("ip", ["addr", "replace", &addr, "dev", bridge]).await?;
    }
    Ok(())
}

async fn delete_bridge(bridge: &str) -> anyhow::Result<()> {
    if link_exists(bridge).await {
        cmd::run("ip", ["link", "del", "dev", bridge]).await?;
    }
    Ok(())
}

/// Whether a network interface exists (for tests and destroy checks).
pub async fn interface_exists(name: &str) -> bool {
    link_exists(name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::nic;

    #[test]
    fn names_fit_linux_interface_names() {
        let net = "9f8e7d6c-5b4a-4321-8765-43210fedcba0";
        assert_eq!(bridge_name(net), "brq9f8e7d6c-5b");
        assert_eq!(tap_name("a0b2c3d4-e5f6-4a7b"), "tapa0b2c3d4-e5");
        assert!(bridge_name(net).len() <= IFNAMSIZ_MAX);
        // Nothing from an odd id can break out of the name.
        assert_eq!(bridge_name("a b/c;d"), "brqabcd");
    }

    #[test]
    fn subnets_are_deduplicated() {
        let a = PortEntry {
            instance_id: InstanceId::new(),
            nic: nic(0),
        };
        let mut b = a.clone();
        b.nic.port_id = "other".into();
        let mut c = a.clone();
        c.nic.gateway = None;
        let s = subnets(&[a, b, c]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].gateway.to_string(), "10.0.0.1");
        assert_eq!(s[0].prefix, 24);
    }
}
