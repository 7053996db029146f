//! The config drive: an ISO 9660 image labelled `config-2` in OpenStack's
//! layout (`openstack/latest/` and `openstack/2012-08-10/`), read by
//! cloud-init and by the test guest.

use crate::cmd;
use crate::network::tap_name;
use anyhow::{Context, bail};
use cloud_driver::VmSpec;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::Path;

/// The version directories written (Nova writes several; these two are
/// what cloud-init and older guests look for).
const VERSIONS: [&str; 2] = ["latest", "2012-08-10"];

/// `meta_data.json`, with Nova's keys.
pub fn meta_data(spec: &VmSpec) -> Value {
    let (public_keys, keys) = match &spec.key {
        Some((name, key)) => (
            json!({ name: key }),
            json!([{ "name": name, "type": "ssh", "data": key }]),
        ),
        None => (json!({}), json!([])),
    };
    json!({
        "uuid": spec.id.to_string(),
        "name": spec.name,
        "hostname": spec.hostname,
        "availability_zone": spec.availability_zone,
        "launch_index": spec.launch_index,
        "project_id": spec.project_id,
        "public_keys": public_keys,
        "keys": keys,
        "meta": spec.metadata,
        "devices": [],
    })
}

/// `network_data.json`: one `phy` link per NIC, its IPv4 network (static
/// or DHCP), and the DNS servers.
pub fn network_data(spec: &VmSpec) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut dns: Vec<Ipv4Addr> = Vec::new();
    for (i, nic) in spec.nics.iter().enumerate() {
        let link = tap_name(&nic.port_id);
        links.push(json!({
            "id": link,
            "vif_id": nic.port_id,
            "type": "phy",
            "ethernet_mac_address": nic.mac.to_ascii_lowercase(),
            "mtu": nic.mtu,
        }));
        if let Some(ip) = nic.ip {
            let mut net = json!({
                "id": format!("network{i}"),
                "type": if nic.dhcp { "ipv4_dhcp" } else { "ipv4" },
                "link": link,
                "ip_address": ip.to_string(),
                "network_id": nic.network_id,
            });
            if let Some(prefix) = nic.prefix {
                net["netmask"] = json!(netmask(prefix).to_string());
            }
            net["routes"] = match nic.gateway {
                Some(gw) => json!([{
                    "network": "0.0.0.0",
                    "netmask": "0.0.0.0",
                    "gateway": gw.to_string(),
                }]),
                None => json!([]),
            };
            networks.push(net);
        }
        for d in &nic.dns {
            if !dns.contains(d) {
                dns.push(*d);
            }
        }
    }
    let services: Vec<Value> = dns
        .iter()
        .map(|d| json!({ "type": "dns", "address": d.to_string() }))
        .collect();
    json!({ "links": links, "networks": networks, "services": services })
}

/// The netmask of a prefix length.
pub fn netmask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

/// Writes the ISO for `spec` to `dest`, building the tree in a temporary
/// directory beside it.
pub async fn build(spec: &VmSpec, dest: &Path) -> anyhow::Result<()> {
    let parent = dest
        .parent()
        .context("config drive path has no directory")?;
    let tree = tempfile::Builder::new()
        .prefix(".configdrive")
        .tempdir_in(parent)
        .context("cannot create the config drive staging directory")?;
    let meta = serde_json::to_vec(&meta_data(spec))?;
    let net = serde_json::to_vec(&network_data(spec))?;
    for version in VERSIONS {
        let dir = tree.path().join("openstack").join(version);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("meta_data.json"), &meta)?;
        std::fs::write(dir.join("network_data.json"), &net)?;
        std::fs::write(dir.join("vendor_data.json"), b"{}")?;
        if let Some(ud) = &spec.user_data {
            std::fs::write(dir.join("user_data"), ud)?;
        }
    }
    let tool = ["genisoimage", "mkisofs", "xorriso"]
        .into_iter()
        .find_map(|t| cmd::find_program(t).map(|p| (t, p)));
    let Some((name, program)) = tool else {
        bail!("no ISO tool found: install genisoimage (or xorriso)");
    };
    let program = program.to_string_lossy().into_owned();
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if name == "xorriso" {
        args.extend(["-as".into(), "mkisofs".into()]);
    } else {
        args.extend(
            ["-ldots", "-allow-lowercase", "-allow-multidot", "-l"]
                .into_iter()
                .map(Into::into),
        );
    }
    args.extend(
        ["-o".into(), dest.into()]
            .into_iter()
            .chain(
                [
                    "-publisher",
                    "cloud",
                    "-quiet",
                    "-J",
                    "-r",
                    "-V",
                    "config-2",
                ]
                .map(Into::into),
            )
            .chain([tree.path().into()]),
    );
    cmd::run(&program, &args).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{nic, spec};

    #[test]
    fn meta_data_has_novas_keys() {
        let s = spec();
        let m = meta_data(&s);
        assert_eq!(m["uuid"], s.id.to_string());
        assert_eq!(m["name"], "web-1");
        assert_eq!(m["hostname"], "web-1");
        assert_eq!(m["availability_zone"], "nova");
        assert_eq!(m["launch_index"], 0);
        assert_eq!(m["project_id"], "proj1");
        assert_eq!(m["public_keys"]["k1"], "ssh-ed25519 AAAAC3Nza test@host");
        assert_eq!(m["keys"][0]["name"], "k1");
        assert_eq!(m["keys"][0]["type"], "ssh");
        assert_eq!(m["meta"]["role"], "web");
        assert_eq!(m["devices"], json!([]));

        let mut no_key = s.clone();
        no_key.key = None;
        assert_eq!(meta_data(&no_key)["public_keys"], json!({}));
    }

    #[test]
    fn network_data_describes_each_nic() {
        let mut s = spec();
        let mut second = nic(1);
        second.dhcp = false;
        second.gateway = None;
        second.dns = vec!["10.0.0.2".parse().unwrap(), "1.1.1.1".parse().unwrap()];
        s.nics.push(second);
        let n = network_data(&s);
        let tap0 = tap_name(&s.nics[0].port_id);
        assert_eq!(n["links"][0]["id"], tap0.as_str());
        assert_eq!(n["links"][0]["type"], "phy");
        assert_eq!(n["links"][0]["ethernet_mac_address"], "fa:16:3e:00:00:00");
        assert_eq!(n["links"][0]["mtu"], 1450);
        assert_eq!(n["links"][1]["vif_id"], s.nics[1].port_id.as_str());
        let net0 = &n["networks"][0];
        assert_eq!(net0["type"], "ipv4_dhcp");
        assert_eq!(net0["link"], tap0.as_str());
        assert_eq!(net0["ip_address"], "10.0.0.5");
        assert_eq!(net0["netmask"], "255.255.255.0");
        assert_eq!(net0["network_id"], s.nics[0].network_id.as_str());
        assert_eq!(net0["routes"][0]["gateway"], "10.0.0.1");
        assert_eq!(net0["routes"][0]["network"], "0.0.0.0");
        let net1 = &n["networks"][1];
        assert_eq!(net1["type"], "ipv4");
        assert_eq!(net1["routes"], json!([]));
        assert_eq!(
            n["services"],
            json!([{"type": "dns", "address": "10.0.0.2"}, {"type": "dns", "address": "1.1.1.1"}])
        );
        assert_eq!(netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(netmask(20), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(netmask(32), Ipv4Addr::new(255, 255, 255, 255));
    }

    #[tokio::test]
    async fn builds_an_iso_labelled_config_2() {
        let dir = tempfile::tempdir().unwrap();
        let iso = dir.path().join("disk.config");
        build(&spec(), &iso).await.unwrap();
        let bytes = std::fs::read(&iso).unwrap();
        // ISO 9660 primary volume descriptor at sector 16: "CD001", then
        // the volume id at offset 40.
        let pvd = &bytes[16 * 2048..17 * 2048];
        assert_eq!(&pvd[1..6], b"CD001");
        assert_eq!(std::str::from_utf8(&pvd[40..48]).unwrap(), "config-2");
        // The files are in it (Rock Ridge names appear in the directory
        // records; the user data is stored verbatim).
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("meta_data.json"));
        assert!(text.contains("network_data.json"));
        assert!(text.contains("#!/bin/sh\necho hi\n"));
        assert!(text.contains("\"hostname\":\"web-1\""));
        // Only the ISO is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
