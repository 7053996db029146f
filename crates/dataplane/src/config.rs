//! The `[network]` settings of a compute host.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// How this host's data plane is wired.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataPlaneConfig {
    /// The host's underlay address, the source of its VXLAN traffic. Set
    /// by the agent from `[agent] local_ip`; without one, VXLAN networks
    /// stay local to the host.
    pub local_ip: Option<Ipv4Addr>,
    /// The interface VXLAN traffic leaves by (`dev` of the VXLAN devices);
    /// `None`: wherever the route to each peer goes.
    pub underlay_interface: Option<String>,
    /// Physical network name -> interface, for flat and VLAN networks
    /// (Neutron's `physical_interface_mappings`).
    pub physical_interfaces: BTreeMap<String, String>,
    /// The network namespace that plays this host, for hosts simulated in
    /// namespaces on one machine (the test bed); `None` on a real host.
    pub host_namespace: Option<String>,
    /// Prefix of the per-network namespaces (`<prefix>qdhcp-<network>`),
    /// so simulated hosts on one machine do not share them.
    pub namespace_prefix: String,
    /// Where DHCP files live (one directory per network).
    pub state_dir: PathBuf,
    /// Name of the agent's nftables tables (one `bridge`, one `inet`).
    pub nft_table: String,
    /// UDP port of VXLAN (IANA: 4789).
    pub vxlan_port: u16,
    /// The metadata proxy's upstream; `None`: no metadata service.
    pub metadata: Option<MetadataProxyConfig>,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            local_ip: None,
            underlay_interface: None,
            physical_interfaces: BTreeMap::new(),
            host_namespace: None,
            namespace_prefix: String::new(),
            state_dir: "/var/lib/cloud/network".into(),
            nft_table: "cloud".into(),
            vxlan_port: 4789,
            metadata: None,
        }
    }
}

/// Where the metadata proxies forward guests' requests.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataProxyConfig {
    /// Base URL of the API's metadata endpoint
    /// (`http://api:8080/metadata`).
    pub api_url: String,
    /// Secret shared with the API: the proxy signs the instance id with
    /// it (HMAC-SHA256). Usually from `CLOUD_METADATA_SECRET`.
    #[serde(default)]
    pub shared_secret: String,
}
