//! What a guest learns about itself, in OpenStack's formats, and how the
//! metadata proxy proves which guest is asking.
//!
//! Two places serve this to guests: the config drive the libvirt driver
//! writes (`openstack/latest/meta_data.json`, `network_data.json`) and the
//! API's metadata endpoint behind the host data plane's proxy (what
//! `http://169.254.169.254/openstack/latest/...` answers). A guest must see
//! the same document from either source, so both build it here, from
//! plain values rather than from either side's records.
//!
//! The proxy and the API share a secret. The proxy, which knows the guest
//! from its (network, source IP) — the host's anti-spoofing guarantees the
//! source IP — signs the instance id with it; the API serves only requests
//! whose signature verifies. This is Nova's contract between neutron's
//! metadata agent and nova-api-metadata (`metadata_proxy_shared_secret`):
//! `X-Instance-ID-Signature` is the lowercase hex HMAC-SHA256 of the
//! instance id (its hyphenated UUID text) keyed with the secret. It lives
//! in this crate because the data plane depends on it and must not depend
//! on the API.

use crate::{NicSpec, VmSpec};
use cloud_model::network::{Network, Port, Subnet};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The header naming the instance a proxied request comes from (its UUID).
pub const INSTANCE_ID_HEADER: &str = "X-Instance-ID";
/// The header carrying [`sign_instance_id`] of [`INSTANCE_ID_HEADER`]'s
/// value: the only thing the API trusts.
pub const SIGNATURE_HEADER: &str = "X-Instance-ID-Signature";
/// The header naming the instance's project. Informational: the API
/// reads the project from the instance record, never from this header.
pub const TENANT_ID_HEADER: &str = "X-Tenant-ID";
/// The header carrying the guest's source address. Informational (logs):
/// the proxy already used it to find the instance.
pub const FORWARDED_FOR_HEADER: &str = "X-Forwarded-For";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, instance_id: &str) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(instance_id.as_bytes());
    mac
}

/// The value of [`SIGNATURE_HEADER`] for `instance_id` (the hyphenated
/// UUID, exactly as sent in [`INSTANCE_ID_HEADER`]): the lowercase hex
/// HMAC-SHA256 of it keyed with `secret`, as Nova computes it
/// (`hmac.new(secret, instance_id, sha256).hexdigest()`), so a neutron
/// metadata agent and this cloud's proxy are interchangeable.
pub fn sign_instance_id(secret: &str, instance_id: &str) -> String {
    hex::encode(mac(secret, instance_id).finalize().into_bytes())
}

/// Whether `signature` (hex, either case) is [`sign_instance_id`] of
/// `instance_id` under `secret`. The comparison takes the same time
/// wherever the first wrong byte is, so a guest cannot forge a signature
/// byte by byte from response times. An empty secret never verifies: a
/// signature anyone can compute proves nothing.
pub fn verify_instance_id_signature(secret: &str, instance_id: &str, signature: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    mac(secret, instance_id).verify_slice(&given).is_ok()
}

/// What `meta_data.json` says about an instance: the fields of Nova's
/// document that this cloud has.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaData<'a> {
    /// Instance uuid.
    pub uuid: String,
    /// Server name (display name).
    pub name: &'a str,
    /// Guest hostname.
    pub hostname: &'a str,
    /// Availability zone.
    pub availability_zone: &'a str,
    /// Index in a multi-create.
    pub launch_index: u32,
    /// Owning project.
    pub project_id: &'a str,
    /// The keypair: `(name, OpenSSH public key)`.
    pub key: Option<(&'a str, &'a str)>,
    /// Server metadata (`meta`).
    pub metadata: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a VmSpec> for MetaData<'a> {
    fn from(spec: &'a VmSpec) -> Self {
        MetaData {
            uuid: spec.id.to_string(),
            name: &spec.name,
            hostname: &spec.hostname,
            availability_zone: &spec.availability_zone,
            launch_index: spec.launch_index,
            project_id: &spec.project_id,
            key: spec.key.as_ref().map(|(n, k)| (n.as_str(), k.as_str())),
            metadata: &spec.metadata,
        }
    }
}

/// `meta_data.json`, with Nova's keys (`uuid`, `name`, `hostname`,
/// `availability_zone`, `launch_index`, `project_id`, `public_keys`,
/// `keys`, `meta`, `devices`).
pub fn meta_data(m: &MetaData<'_>) -> Value {
    let (public_keys, keys) = match m.key {
        Some((name, key)) => (
            json!({ name: key }),
            json!([{ "name": name, "type": "ssh", "data": key }]),
        ),
        None => (json!({}), json!([])),
    };
    json!({
        "uuid": m.uuid,
        "name": m.name,
        "hostname": m.hostname,
        "availability_zone": m.availability_zone,
        "launch_index": m.launch_index,
        "project_id": m.project_id,
        "public_keys": public_keys,
        "keys": keys,
        "meta": m.metadata,
        "devices": [],
    })
}

/// `network_data.json`: one `phy` link per NIC (named by `link_id`, the
/// host-side device name, as Nova names links after the tap), its IPv4
/// network (static or DHCP) with a default route through the gateway,
/// and the DNS servers of all NICs, without repeats.
pub fn network_data(nics: &[NicSpec], link_id: impl Fn(&NicSpec) -> String) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut dns: Vec<Ipv4Addr> = Vec::new();
    for (i, nic) in nics.iter().enumerate() {
        let link = link_id(nic);
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

/// Nova's name for a port's host device: `tap` + the first 11 characters
/// of the port id (what `network_data.json` calls the link). For UUID
/// port ids it is the libvirt driver's and the data plane's tap name, so
/// the API's document names the links as the config drive does.
pub fn tap_link_id(port_id: &str) -> String {
    let tail: String = port_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(11)
        .collect();
    format!("tap{tail}")
}

/// The NIC a port gives its server: its MAC, the network's MTU and, from
/// the subnet of its first fixed address (`subnet`), the address, prefix,
/// gateway, DNS servers and DHCP flag. The same derivation whoever builds
/// the NIC list, so the config drive and the metadata API agree.
pub fn nic_from_records(port: &Port, network: &Network, subnet: Option<&Subnet>) -> NicSpec {
    let mut nic = NicSpec {
        port_id: port.id.to_string(),
        network_id: port.network_id.to_string(),
        mac: port.mac_address.clone(),
        ip: None,
        prefix: None,
        gateway: None,
        dns: Vec::new(),
        dhcp: false,
        mtu: u32::try_from(network.mtu).unwrap_or(1500),
    };
    if let (Some(fixed), Some(subnet)) = (port.fixed_ips.first(), subnet) {
        nic.ip = Some(fixed.ip_address);
        nic.prefix = Some(subnet.cidr.prefix());
        nic.gateway = subnet.gateway_ip;
        nic.dns = subnet.dns_nameservers.clone();
        nic.dhcp = subnet.enable_dhcp;
    }
    nic
}

/// The netmask of a prefix length (`/24` -> `255.255.255.0`); lengths
/// over 32 count as 32.
pub fn netmask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_novas_hmac_sha256_hex() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for
        // nothing?".
        assert_eq!(
            sign_instance_id("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let id = "6d1f6a43-4c43-4b1e-9c0e-0e5e3b7c8a10";
        let sig = sign_instance_id("s3cret", id);
        assert!(verify_instance_id_signature("s3cret", id, &sig));
        assert!(verify_instance_id_signature(
            "s3cret",
            id,
            &sig.to_ascii_uppercase()
        ));
        assert!(!verify_instance_id_signature("other", id, &sig));
        assert!(!verify_instance_id_signature(
            "s3cret",
            "6d1f6a43-4c43-4b1e-9c0e-0e5e3b7c8a11",
            &sig
        ));
        assert!(!verify_instance_id_signature("s3cret", id, &sig[..62]));
        assert!(!verify_instance_id_signature("s3cret", id, "not hex"));
        assert!(!verify_instance_id_signature("s3cret", id, ""));
        assert!(!verify_instance_id_signature(
            "",
            id,
            &sign_instance_id("", id)
        ));
    }

    #[test]
    fn tap_link_id_is_tap_and_eleven_characters() {
        assert_eq!(
            tap_link_id("a0b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
            "tapa0b2c3d4-e5"
        );
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(netmask(20), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(netmask(40), Ipv4Addr::new(255, 255, 255, 255));
    }
}
