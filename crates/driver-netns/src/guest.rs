//! A guest's body: its network namespace and its NICs.
//!
//! A NIC is a veth pair. The host end is the port's tap
//! (`tap_name(port_id)`), in the host's namespace and enslaved to the
//! network's bridge, exactly where the data plane expects a VM's tap (its
//! nftables rules match on that name); the guest end is `eth<i>`, created
//! straight inside the guest's namespace with the port's MAC, so no
//! `eth0` ever appears, even briefly, in the host's namespace. Deleting
//! either end deletes the pair.

use anyhow::{Context, bail};
use cloud_dataplane::DataPlane;
use cloud_dataplane::cmd;
use cloud_dataplane::names::{bridge_name, tap_name};
use cloud_driver::NicSpec;
use std::path::Path;

/// Where `ip netns` keeps the namespaces' names.
const NETNS_DIR: &str = "/run/netns";

/// The guest's name for its `index`th NIC.
pub fn nic_iface(index: usize) -> String {
    format!("eth{index}")
}

/// Whether namespace `name` exists (without running anything).
pub fn ns_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// Creates namespace `name` unless it exists, with `lo` up (guests expect
/// a working loopback).
pub async fn ensure_namespace(name: &str) -> anyhow::Result<()> {
    if !ns_exists(name)
        && let Err(e) = cmd::run("ip", ["netns", "add", name]).await
        // Lost a race with another creator: fine if it is there now.
        && !ns_exists(name)
    {
        return Err(e);
    }
    cmd::run("ip", ["-n", name, "link", "set", "dev", "lo", "up"]).await?;
    Ok(())
}

/// Deletes namespace `name`; `Ok` if it does not exist.
pub async fn delete_namespace(name: &str) -> anyhow::Result<()> {
    if ns_exists(name)
        && let Err(e) = cmd::run("ip", ["netns", "delete", name]).await
        && ns_exists(name)
    {
        return Err(e);
    }
    Ok(())
}

/// Whether an `ip link show` failure means the device is absent.
fn is_absent(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("does not exist") || text.contains("Cannot find device")
}

/// Whether `dev` exists in the guest namespace `ns`.
async fn guest_link_exists(ns: &str, dev: &str) -> anyhow::Result<bool> {
    match cmd::run("ip", ["-n", ns, "link", "show", "dev", dev]).await {
        Ok(_) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `dev` exists in the host's namespace.
async fn host_link_exists(dp: &DataPlane, dev: &str) -> anyhow::Result<bool> {
    match dp.ip(["link", "show", "dev", dev]).await {
        Ok(_) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes NIC `index` of the guest in namespace `ns` exist and plugs its
/// host end into its network's bridge (both ends are left as they are, up
/// or down). A pair with either end missing is recreated.
pub async fn ensure_nic(
    dp: &DataPlane,
    ns: &str,
    index: usize,
    nic: &NicSpec,
) -> anyhow::Result<()> {
    let eth = nic_iface(index);
    let tap = tap_name(&nic.port_id);
    let bridge = bridge_name(&nic.network_id);
    if !host_link_exists(dp, &bridge).await? {
        bail!(
            "bridge {bridge} of network {} does not exist in the host's namespace{}: \
             the host network must be applied before a guest is spawned",
            nic.network_id,
            dp.host_namespace()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        );
    }
    let have_tap = host_link_exists(dp, &tap).await?;
    let have_eth = guest_link_exists(ns, &eth).await?;
    if !(have_tap && have_eth) {
        if have_tap {
            delete_tap(dp, &nic.port_id).await?;
        }
        if have_eth {
            cmd::run("ip", ["-n", ns, "link", "delete", "dev", &eth]).await?;
        }
        let mtu = nic.mtu.to_string();
        let mut args: Vec<&str> = vec!["link", "add", &tap];
        if nic.mtu > 0 {
            args.extend(["mtu", &mtu]);
        }
        args.extend(["type", "veth", "peer", "name", &eth, "address", &nic.mac]);
        if nic.mtu > 0 {
            args.extend(["mtu", &mtu]);
        }
        args.extend(["netns", ns]);
        dp.ip(&args)
            .await
            .with_context(|| format!("cannot create NIC {eth} (port {})", nic.port_id))?;
    }
    dp.ip(["link", "set", "dev", &tap, "master", &bridge, "up"])
        .await
        .with_context(|| format!("cannot plug {tap} into {bridge}"))?;
    Ok(())
}

/// Sets the guest ends `ifaces` up or down, as a VM's NICs lose carrier
/// when it is off.
pub async fn set_links(ns: &str, ifaces: &[String], up: bool) -> anyhow::Result<()> {
    for i in ifaces {
        cmd::run(
            "ip",
            [
                "-n",
                ns,
                "link",
                "set",
                "dev",
                i,
                if up { "up" } else { "down" },
            ],
        )
        .await?;
    }
    Ok(())
}

/// Deletes the host end of port `port_id`'s NIC (and with it the guest
/// end). `Ok` if it is gone, or if the host's namespace is (it took the
/// tap with it).
pub async fn delete_tap(dp: &DataPlane, port_id: &str) -> anyhow::Result<()> {
    if let Some(host) = dp.host_namespace()
        && !ns_exists(host)
    {
        return Ok(());
    }
    match dp.ip(["link", "delete", "dev", &tap_name(port_id)]).await {
        Err(e) if !is_absent(&e) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(nic_iface(0), "eth0");
        assert_eq!(nic_iface(12), "eth12");
        assert!(!ns_exists("no-such-namespace-of-cloud-driver-netns"));
    }
}
