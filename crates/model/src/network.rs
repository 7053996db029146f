//! Neutron records: networks, subnets, ports, security groups, routers
//! and floating IPs, and the IPv4 address arithmetic IPAM needs.

use crate::{
    InstanceId, NetworkId, PortId, ProjectId, SecurityGroupId, SecurityGroupRuleId, SubnetId,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// A layer-2 network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Network id.
    pub id: NetworkId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name (not unique).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Visible to and usable by every project.
    pub shared: bool,
    /// External networks (floating IP pools; informational here).
    pub external: bool,
    /// MTU of the network (1450 on VXLAN: 50 bytes go to the overlay's
    /// headers; 1500 on flat and VLAN networks).
    pub mtu: i64,
    /// How the network's frames travel between hosts.
    pub segment: Segment,
    /// The default of `port_security_enabled` for new ports.
    pub port_security_enabled: bool,
    /// Subnets on the network, oldest first.
    pub subnet_ids: Vec<SubnetId>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change (Neutron's `revision_number`).
    pub revision: i64,
}

/// The kinds of segment a network can be, as Neutron's
/// `provider:network_type` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    /// An overlay: frames in UDP between hosts' underlay addresses, one
    /// VXLAN network identifier (VNI) per network. The default for
    /// tenant networks.
    Vxlan,
    /// 802.1Q-tagged frames on a named physical network (admins only).
    Vlan,
    /// Untagged frames on a named physical network (admins only; one
    /// network per physical network).
    Flat,
}

impl NetworkType {
    /// The API's word for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            NetworkType::Vxlan => "vxlan",
            NetworkType::Vlan => "vlan",
            NetworkType::Flat => "flat",
        }
    }

    /// Parses the API's word.
    pub fn parse(s: &str) -> Option<NetworkType> {
        match s {
            "vxlan" => Some(NetworkType::Vxlan),
            "vlan" => Some(NetworkType::Vlan),
            "flat" => Some(NetworkType::Flat),
            _ => None,
        }
    }

    /// The largest MTU a guest can use on this kind of segment over a
    /// 1500-byte physical network: VXLAN over IPv4 takes 50 bytes.
    pub fn max_mtu(&self) -> i64 {
        match self {
            NetworkType::Vxlan => 1450,
            NetworkType::Vlan | NetworkType::Flat => 1500,
        }
    }
}

/// Where a network's frames go between hosts (Neutron's provider
/// attributes, shown to admins only).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Segment {
    /// VXLAN, VLAN or flat.
    pub network_type: NetworkType,
    /// The physical network (VLAN and flat), as the hosts map it to an
    /// interface; `None` for VXLAN.
    pub physical_network: Option<String>,
    /// The VNI (VXLAN) or VLAN id; `None` for flat networks.
    pub segmentation_id: Option<i64>,
}

/// A static route handed to guests by DHCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    /// Destination range.
    pub destination: Ipv4Cidr,
    /// Next hop, on the subnet.
    pub nexthop: Ipv4Addr,
}

/// An extra address a port may send from (Neutron's
/// `allowed_address_pairs` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedAddressPair {
    /// An address or a range (`10.0.0.0/24`); a bare address is a /32.
    pub ip_address: Ipv4Cidr,
    /// The MAC it may use; the port's own MAC when not given.
    pub mac_address: String,
}

/// A range of addresses IPAM may hand out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    /// First address of the range.
    pub start: Ipv4Addr,
    /// Last address of the range (inclusive).
    pub end: Ipv4Addr,
}

/// An IPv4 subnet of a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    /// Subnet id.
    pub id: SubnetId,
    /// Network the subnet belongs to.
    pub network_id: NetworkId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The address range.
    pub cidr: Ipv4Cidr,
    /// Always 4.
    pub ip_version: i64,
    /// Router address, excluded from allocation.
    pub gateway_ip: Option<Ipv4Addr>,
    /// Whether DHCP serves the ports of this subnet.
    pub enable_dhcp: bool,
    /// DNS servers handed to guests.
    pub dns_nameservers: Vec<Ipv4Addr>,
    /// Ranges IPAM allocates from.
    pub allocation_pools: Vec<AllocationPool>,
    /// Static routes handed to guests by DHCP (option 121).
    pub host_routes: Vec<HostRoute>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub revision: i64,
}

/// One address of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    /// Subnet the address belongs to.
    pub subnet_id: SubnetId,
    /// The address.
    pub ip_address: Ipv4Addr,
}

/// A port: a virtual NIC with a MAC and fixed IPs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// Port id.
    pub id: PortId,
    /// Network the port is on.
    pub network_id: NetworkId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Unique MAC (`fa:16:3e:..`).
    pub mac_address: String,
    /// Addresses.
    pub fixed_ips: Vec<FixedIp>,
    /// The server using the port, if any.
    pub device_id: Option<InstanceId>,
    /// `compute:nova` when a server uses it.
    pub device_owner: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// `DOWN` until a host binds it, then `ACTIVE`.
    pub status: String,
    /// The host the port is bound to.
    pub binding_host: Option<String>,
    /// Security groups applied to the port.
    pub security_group_ids: Vec<SecurityGroupId>,
    /// Whether the host filters the port: its security groups and its
    /// anti-spoofing (only its MAC and addresses may send). Neutron's
    /// `port_security_enabled`; off lifts both.
    pub port_security_enabled: bool,
    /// More addresses (and MACs) the port may send from, for VRRP and the
    /// like (Neutron's `allowed_address_pairs`).
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub revision: i64,
}

/// A security group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// Group id.
    pub id: SecurityGroupId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name; `default` for the project's default group.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The project's default group (one per project, cannot be deleted).
    pub is_default: bool,
    /// Rules of the group.
    pub rules: Vec<SecurityGroupRule>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub revision: i64,
}

/// A rule of a security group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    /// Rule id.
    pub id: SecurityGroupRuleId,
    /// Group the rule belongs to.
    pub security_group_id: SecurityGroupId,
    /// Owner.
    pub project_id: ProjectId,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// `tcp`, `udp`, `icmp`, a number, or any.
    pub protocol: Option<String>,
    /// First port (or ICMP type).
    pub port_range_min: Option<i64>,
    /// Last port (or ICMP code).
    pub port_range_max: Option<i64>,
    /// Remote CIDR.
    pub remote_ip_prefix: Option<String>,
    /// Remote group.
    pub remote_group_id: Option<SecurityGroupId>,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// An IPv4 network in CIDR form, with its host bits zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `10.0.0.0/24`. Host bits must be zero, as Neutron requires
    /// (`10.0.0.1/24` is refused with a message that says so).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a valid CIDR: expected ADDRESS/PREFIX"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not a valid CIDR: '{addr}' is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("'{s}' is not a valid CIDR: prefix must be 0..32"))?;
        let cidr = Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if cidr.network != addr {
            return Err(format!(
                "'{s}' is not a valid CIDR: host bits are set (did you mean {cidr}?)"
            ));
        }
        Ok(cidr)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// Prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The broadcast address (last of the range).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// The dotted netmask (`255.255.255.0`).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether two ranges share an address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// First usable host address (network + 1; the address itself for /31, /32).
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.network
        } else {
            Ipv4Addr::from(u32::from(self.network) + 1)
        }
    }

    /// Last usable host address (broadcast - 1; the broadcast for /31, /32).
    pub fn last_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.broadcast()
        } else {
            Ipv4Addr::from(u32::from(self.broadcast()) - 1)
        }
    }

    /// Neutron's default pools: every host address except the gateway.
    pub fn default_pools(&self, gateway: Option<Ipv4Addr>) -> Vec<AllocationPool> {
        let (first, last) = (u32::from(self.first_host()), u32::from(self.last_host()));
        let mut pools = Vec::new();
        let mut start = first;
        if let Some(gw) = gateway
            .map(u32::from)
            .filter(|g| (first..=last).contains(g))
        {
            if gw > first {
                pools.push(AllocationPool {
                    start: Ipv4Addr::from(first),
                    end: Ipv4Addr::from(gw - 1),
                });
            }
            start = gw + 1;
        }
        if start <= last {
            pools.push(AllocationPool {
                start: Ipv4Addr::from(start),
                end: Ipv4Addr::from(last),
            });
        }
        pools
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ipv4Cidr({self})")
    }
}

impl TryFrom<String> for Ipv4Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Ipv4Cidr::parse(&s)
    }
}

impl From<Ipv4Cidr> for String {
    fn from(c: Ipv4Cidr) -> String {
        c.to_string()
    }
}

impl AllocationPool {
    /// Iterates the pool's addresses in order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.start)..=u32::from(self.end)).map(Ipv4Addr::from)
    }

    /// Whether `ip` is in the pool.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.start)..=u32::from(self.end)).contains(&u32::from(ip))
    }
}

/// Defines a UUID-backed id of a layer-3 resource, like the ids of
/// [`crate::ids`] (whose macro is private to that module).
macro_rules! l3_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh random (v4) id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }

            /// Parses the textual form; `None` for anything that is not a
            /// UUID (callers answer 404, as Neutron does for names).
            pub fn parse(s: &str) -> Option<Self> {
                uuid::Uuid::try_parse(s).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    };
}

l3_id!(
    /// A Neutron router.
    RouterId
);
l3_id!(
    /// A floating IP.
    FloatingIpId
);

/// `device_owner` of a router's interface on a tenant subnet (its
/// `device_id` is the router's id; it is bound to the router's host).
pub const DEVICE_OWNER_ROUTER_INTERFACE: &str = "network:router_interface";
/// `device_owner` of a router's port on the external network (its
/// `device_id` is the router's id; it is bound to the router's host).
pub const DEVICE_OWNER_ROUTER_GATEWAY: &str = "network:router_gateway";
/// `device_owner` of the port holding a floating IP's address on the
/// external network (its `device_id` is the floating IP's id; unbound).
pub const DEVICE_OWNER_FLOATING_IP: &str = "network:floatingip";
/// `device_owner` of a subnet's DHCP port: the address the network's
/// namespace serves DHCP and metadata from when a router holds the
/// subnet's gateway (unbound; no `device_id`).
pub const DEVICE_OWNER_DHCP: &str = "network:dhcp";

/// A router: it routes between the subnets it has interfaces on and,
/// with a gateway, to an external network (SNAT and floating IPs).
///
/// Its interfaces are ports (`network:router_interface`) and its gateway
/// is a port (`network:router_gateway`), both with the router's id as
/// `device_id` and bound to the router's `host`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Router {
    /// Router id.
    pub id: RouterId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name (not unique).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Administrative state (a router that is down is not run).
    pub admin_state_up: bool,
    /// `ACTIVE`.
    pub status: String,
    /// Its leg on an external network, if any.
    pub gateway: Option<ExternalGateway>,
    /// Extra static routes (Neutron's `routes`, the `extraroute`
    /// extension); each next hop is on one of the router's subnets.
    pub routes: Vec<HostRoute>,
    /// The network node the router runs on; `None` while no host with
    /// the network role was up when it was created (it is placed by its
    /// first gateway or interface change).
    pub host: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub revision: i64,
}

/// A router's gateway (Neutron's `external_gateway_info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalGateway {
    /// The external network.
    pub network_id: NetworkId,
    /// The gateway port.
    pub port_id: PortId,
    /// Whether the router's subnets reach out with its address (SNAT).
    pub enable_snat: bool,
    /// The gateway port's addresses on the external network.
    pub fixed_ips: Vec<FixedIp>,
}

/// One interface of a router on a subnet, with what a host needs to
/// plumb it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInterface {
    /// The interface's port.
    pub port_id: PortId,
    /// Its network.
    pub network_id: NetworkId,
    /// The subnet.
    pub subnet_id: SubnetId,
    /// The port's MAC.
    pub mac_address: String,
    /// The port's address on the subnet (the subnet's gateway when the
    /// interface was added by subnet).
    pub ip_address: Ipv4Addr,
    /// The subnet's range.
    pub cidr: Ipv4Cidr,
}

/// A floating IP: an address of an external network that reaches a
/// fixed IP of a port through a router.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloatingIp {
    /// Floating IP id.
    pub id: FloatingIpId,
    /// Owner.
    pub project_id: ProjectId,
    /// The external network the address is from.
    pub floating_network_id: NetworkId,
    /// The address.
    pub floating_ip_address: Ipv4Addr,
    /// The port holding the address (`network:floatingip`, unbound).
    pub floating_port_id: PortId,
    /// The associated port, if any.
    pub port_id: Option<PortId>,
    /// The associated fixed IP of that port.
    pub fixed_ip_address: Option<Ipv4Addr>,
    /// The router that gives the path: it has a gateway on the floating
    /// network and an interface on the fixed IP's subnet.
    pub router_id: Option<RouterId>,
    /// `ACTIVE` when associated through a router that runs on a host,
    /// else `DOWN`.
    pub status: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub revision: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_cidrs() {
        let c = Ipv4Cidr::parse("10.0.0.0/29").unwrap();
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 248));
        assert!(
            Ipv4Cidr::parse("10.0.0.1/24")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(Ipv4Cidr::parse("10.0.0.0/33").is_err());
        assert!(Ipv4Cidr::parse("10.0.0.0").is_err());
        assert!(Ipv4Cidr::parse("banana/24").is_err());
    }

    #[test]
    fn default_pools_skip_the_gateway() {
        let c = Ipv4Cidr::parse("10.0.0.0/29").unwrap();
        let pools = c.default_pools(Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            pools,
            vec![AllocationPool {
                start: Ipv4Addr::new(10, 0, 0, 2),
                end: Ipv4Addr::new(10, 0, 0, 6)
            }]
        );
        let mid = c.default_pools(Some(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(mid.len(), 2);
        assert_eq!(mid.iter().map(|p| p.addresses().count()).sum::<usize>(), 5);
    }

    #[test]
    fn overlap() {
        let a = Ipv4Cidr::parse("10.0.0.0/16").unwrap();
        let b = Ipv4Cidr::parse("10.0.5.0/24").unwrap();
        let c = Ipv4Cidr::parse("10.1.0.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
