//! The desired data plane of one host, as the conductor computes it from
//! the store and a compute agent hands it to its driver.
//!
//! It is a whole picture, not a delta: every network with a port bound to
//! the host, every such port with its filtering, the other hosts that
//! carry the same networks (for the VXLAN flood lists and forwarding
//! entries) and the security groups the ports use with the addresses of
//! every group a rule names as its remote. Applying one twice changes
//! nothing, applying an older one after a newer one is refused by its
//! `revision`, and an agent that restarts applies the latest one and
//! converges, whatever messages it missed.

use cloud_model::InstanceId;
use cloud_model::network::Ipv4Cidr;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Everything a host's data plane must carry and enforce.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostNetwork {
    /// When the conductor computed it (microseconds since the epoch); an
    /// agent ignores a state older than the one it applied.
    pub revision: i64,
    /// The networks with at least one port bound to this host.
    pub networks: Vec<NetworkSpec>,
    /// The ports bound to this host.
    pub ports: Vec<PortSpec>,
    /// The security groups of those ports (with their rules) and the
    /// groups their rules name as remote (with their members' addresses).
    pub security_groups: Vec<SecurityGroupSpec>,
    /// The routers this host runs (a host with the network role). Their
    /// networks are in `networks`; their ports are not in `ports` (those
    /// are guests' ports).
    #[serde(default)]
    pub routers: Vec<RouterSpec>,
}

impl HostNetwork {
    /// The port with this id, if it is bound here.
    pub fn port(&self, port_id: &str) -> Option<&PortSpec> {
        self.ports.iter().find(|p| p.id == port_id)
    }

    /// The network with this id, if it has ports here.
    pub fn network(&self, network_id: &str) -> Option<&NetworkSpec> {
        self.networks.iter().find(|n| n.id == network_id)
    }
}

/// What applying a host's network achieved: the networks that could not
/// be set up, with why. Their ports are not ready; the others are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkApplied {
    /// Network id -> why it failed.
    pub failed: std::collections::BTreeMap<String, String>,
}

/// How a network's frames leave the host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SegmentSpec {
    /// A VXLAN overlay over the hosts' underlay addresses.
    Vxlan {
        /// VXLAN network identifier.
        vni: u32,
    },
    /// 802.1Q-tagged on the interface mapped to `physical_network`.
    Vlan {
        /// Physical network name (the host maps it to an interface).
        physical_network: String,
        /// VLAN id (1-4094).
        vlan_id: u16,
    },
    /// Untagged on the interface mapped to `physical_network`.
    Flat {
        /// Physical network name.
        physical_network: String,
    },
}

/// One network as a host sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Network id (names the bridge and the namespace).
    pub id: String,
    /// The segment.
    pub segment: SegmentSpec,
    /// MTU handed to guests by DHCP.
    pub mtu: u32,
    /// Subnets: their gateways and DHCP live in the network's namespace.
    pub subnets: Vec<SubnetSpec>,
    /// Underlay addresses of the other hosts with ports on this network
    /// (VXLAN head-end replication: broadcast and unknown frames go to
    /// each). Never this host's own.
    pub peers: Vec<Ipv4Addr>,
    /// The network's ports on other hosts (l2population: their MACs are
    /// sent straight to their host, without flooding).
    pub remote_ports: Vec<RemotePort>,
}

/// One subnet of a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// Subnet id.
    pub id: String,
    /// Address range.
    pub cidr: Ipv4Cidr,
    /// Gateway address (held by the network's namespace on this host).
    pub gateway: Option<Ipv4Addr>,
    /// Whether DHCP serves the subnet's ports.
    pub dhcp: bool,
    /// DNS servers handed out.
    pub dns: Vec<Ipv4Addr>,
    /// Static routes handed out (DHCP option 121).
    pub host_routes: Vec<cloud_model::network::HostRoute>,
    /// Set when a router holds the gateway address: the network
    /// namespace's own address on the subnet (its DHCP port), which serves
    /// DHCP and metadata instead of the gateway. `None`: the namespace
    /// holds the gateway itself.
    #[serde(default)]
    pub dhcp_address: Option<Ipv4Addr>,
    /// Whether something else than the network's namespace holds the
    /// gateway address: a router's interface, or (flat and VLAN networks)
    /// the physical network's own router. The namespace then never holds
    /// it, only `dhcp_address`.
    #[serde(default)]
    pub gateway_elsewhere: bool,
}

impl SubnetSpec {
    /// The address the network's namespace holds on this subnet: its
    /// DHCP address, else the gateway when nothing else holds it.
    pub fn namespace_address(&self) -> Option<Ipv4Addr> {
        self.dhcp_address
            .or(self.gateway.filter(|_| !self.gateway_elsewhere))
    }
}

/// A port of the network on another host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemotePort {
    /// Its MAC.
    pub mac: String,
    /// Its fixed addresses.
    pub ips: Vec<Ipv4Addr>,
    /// Underlay address of the host it is bound to.
    pub host_ip: Ipv4Addr,
}

/// A port bound to this host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Port id (names the tap).
    pub id: String,
    /// Its network.
    pub network_id: String,
    /// The server using it (the metadata proxy answers for it).
    pub instance_id: Option<InstanceId>,
    /// Its MAC (the only one it may send from, with port security).
    pub mac: String,
    /// Its fixed addresses (DHCP hands them out; the only sources allowed,
    /// with port security).
    pub fixed_ips: Vec<Ipv4Addr>,
    /// Further sources it may use.
    pub allowed_address_pairs: Vec<AddressPair>,
    /// Whether it is filtered at all (security groups and anti-spoofing).
    pub port_security: bool,
    /// Its security groups (ids into [`HostNetwork::security_groups`]).
    pub security_groups: Vec<String>,
}

/// An extra source a port may send from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    /// Addresses.
    pub cidr: Ipv4Cidr,
    /// MAC.
    pub mac: String,
}

/// A security group as the host enforces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    /// Group id.
    pub id: String,
    /// Its rules (empty for a group only named as a remote).
    pub rules: Vec<RuleSpec>,
    /// The addresses of every port in the group, on any host (fixed IPs
    /// and allowed address pairs): what a rule naming this group as its
    /// remote matches.
    pub members: Vec<Ipv4Cidr>,
}

/// Which way a rule applies, seen from the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic to the port.
    Ingress,
    /// Traffic from the port.
    Egress,
}

/// IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EtherType {
    /// IPv4.
    IPv4,
    /// IPv6.
    IPv6,
}

/// One allow rule (security groups only allow; what no rule allows is
/// dropped, except replies to allowed traffic).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// Ingress or egress.
    pub direction: Direction,
    /// IPv4 or IPv6.
    pub ethertype: EtherType,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6...); `None`:
    /// any.
    pub protocol: Option<u8>,
    /// First port (TCP/UDP/SCTP) or ICMP type.
    pub port_min: Option<u16>,
    /// Last port, or ICMP code.
    pub port_max: Option<u16>,
    /// Remote addresses (`10.0.0.0/8`, `::/0`).
    pub remote_ip_prefix: Option<String>,
    /// Remote group id: the rule matches the addresses of its members.
    pub remote_group: Option<String>,
}

/// A router a host runs: a namespace routing between its interfaces'
/// subnets, and to the external network with SNAT and floating IPs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouterSpec {
    /// Router id (names the namespace).
    pub id: String,
    /// Its interfaces on tenant subnets (each holds the subnet's gateway).
    pub interfaces: Vec<RouterPort>,
    /// Its leg on the external network, if it has a gateway.
    pub gateway: Option<RouterGateway>,
    /// Floating IPs associated through this router.
    pub floating_ips: Vec<FloatingIpSpec>,
    /// Extra static routes of the router (Neutron's `routes`).
    pub routes: Vec<cloud_model::network::HostRoute>,
}

/// One interface of a router on a tenant subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterPort {
    /// The port (names the devices).
    pub port_id: String,
    /// Its network.
    pub network_id: String,
    /// Its MAC.
    pub mac: String,
    /// Its address (the subnet's gateway).
    pub address: Ipv4Addr,
    /// The subnet.
    pub cidr: Ipv4Cidr,
}

/// A router's leg on the external network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterGateway {
    /// The gateway port.
    pub port_id: String,
    /// The external network.
    pub network_id: String,
    /// Its MAC.
    pub mac: String,
    /// The router's address on the external subnet.
    pub address: Ipv4Addr,
    /// The external subnet.
    pub cidr: Ipv4Cidr,
    /// The external subnet's gateway: the router's default route.
    pub next_hop: Option<Ipv4Addr>,
    /// Whether the router's subnets reach out with its address (SNAT).
    pub snat: bool,
}

/// A floating IP: traffic to `floating_ip` goes to `fixed_ip`, and
/// `fixed_ip`'s traffic out leaves as `floating_ip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIpSpec {
    /// The external address.
    pub floating_ip: Ipv4Addr,
    /// The guest's address behind it.
    pub fixed_ip: Ipv4Addr,
}
