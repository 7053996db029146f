//! The config drive: an ISO 9660 image labelled `config-2` in OpenStack's
//! layout (`openstack/latest/` and `openstack/2012-08-10/`), read by
//! cloud-init and by the test guest.

use crate::cmd;
use anyhow::{Context, bail};
use cloud_dataplane::names::tap_name;
use cloud_driver::VmSpec;
use cloud_driver::metadata;
use serde_json::Value;
use std::path::Path;

/// The version directories written (Nova writes several; these two are
/// what cloud-init and older guests look for).
const VERSIONS: [&str; 2] = ["latest", "2012-08-10"];

/// `meta_data.json`, with Nova's keys (built by the shared
/// [`cloud_driver::metadata`], so the API's metadata endpoint serves the
/// same document).
pub fn meta_data(spec: &VmSpec) -> Value {
    metadata::meta_data(&spec.into())
}

/// `network_data.json`: one `phy` link per NIC (named after its tap), its
/// IPv4 network (static or DHCP), and the DNS servers.
pub fn network_data(spec: &VmSpec) -> Value {
    metadata::network_data(&spec.nics, |nic| tap_name(&nic.port_id))
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
    use serde_json::json;

    /// The exact bytes written, pinned: the builders moved to
    /// `cloud_driver::metadata` (shared with the API's metadata endpoint)
    /// and guests must keep reading the same files.
    #[test]
    fn files_are_byte_identical_to_before_the_move() {
        let s = spec();
        assert_eq!(
            serde_json::to_string(&meta_data(&s)).unwrap(),
            r#"{"availability_zone":"nova","devices":[],"hostname":"web-1","keys":[{"data":"ssh-ed25519 AAAAC3Nza test@host","name":"k1","type":"ssh"}],"launch_index":0,"meta":{"role":"web"},"name":"web-1","project_id":"proj1","public_keys":{"k1":"ssh-ed25519 AAAAC3Nza test@host"},"uuid":"6d1f6a43-4c43-4b1e-9c0e-0e5e3b7c8a10"}"#
        );
        assert_eq!(
            serde_json::to_string(&network_data(&s)).unwrap(),
            r#"{"links":[{"ethernet_mac_address":"fa:16:3e:00:00:00","id":"tapa0b2c3d4-e5","mtu":1450,"type":"phy","vif_id":"a0b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"}],"networks":[{"id":"network0","ip_address":"10.0.0.5","link":"tapa0b2c3d4-e5","netmask":"255.255.255.0","network_id":"9f8e7d6c-5b4a-4321-8765-43210fedcba0","routes":[{"gateway":"10.0.0.1","netmask":"0.0.0.0","network":"0.0.0.0"}],"type":"ipv4_dhcp"}],"services":[{"address":"10.0.0.2","type":"dns"}]}"#
        );
    }

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
