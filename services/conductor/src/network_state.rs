//! Hosts' desired data planes: computed from the store on an agent's
//! request ([`ConductorMsg::GetHostNetwork`]), and the nudges that make
//! agents ask again when something they carry changed.
//!
//! Agents pull whole states rather than receive deltas, so a lost,
//! duplicated or reordered nudge costs at most one extra pull, and an
//! agent that restarts converges the same way as one that never stopped
//! (docs/adr/0007-host-data-plane.md).
//!
//! [`ConductorMsg::GetHostNetwork`]: cloud_rpc::ConductorMsg::GetHostNetwork

use crate::Conductor;
use cloud_bus::compute_queue;
use cloud_driver::HostNetwork;
use cloud_driver::network::{
    AddressPair, Direction, EtherType, FloatingIpSpec, NetworkSpec, PortSpec, RemotePort,
    RouterGateway, RouterPort, RouterSpec, RuleSpec, SecurityGroupSpec, SegmentSpec, SubnetSpec,
};
use cloud_model::network::{Network, NetworkType, Port, SecurityGroupRule};
use cloud_model::{Error, InstanceId, NetworkId, ProjectId, SecurityGroupId, Timestamp};
use cloud_rpc::ComputeMsg;
use cloud_store::{BoundPort, PortFilter, Scope};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

impl Conductor {
    /// The desired data plane of `host`: its ports, their networks with
    /// the other hosts carrying them, and the security groups in play.
    pub(crate) async fn host_network(&self, host: &str) -> Result<HostNetwork, Error> {
        // Taken before reading: a change committed after any of the reads
        // below sends a nudge whose pull gets a larger revision.
        let revision = Timestamp::now().micros();
        let ports = self
            .store
            .port_list(&PortFilter {
                binding_host: Some(host.to_owned()),
                ..PortFilter::all(Scope::All)
            })
            .await?;
        let network_ids: Vec<NetworkId> = ports
            .iter()
            .map(|p| p.network_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let bound = self.store.bound_ports_on_networks(&network_ids).await?;
        let others: BTreeSet<String> = bound
            .iter()
            .filter(|p| p.host != host)
            .map(|p| p.host.clone())
            .collect();
        let underlay = self.store.host_underlay_ips(&others).await?;
        let routed = self
            .store
            .subnets_with_router_interface(&network_ids)
            .await?;
        let mut networks = Vec::new();
        for id in &network_ids {
            let net = self.store.network_get(*id, &Scope::All).await?;
            let mut spec = self.network_spec(&net, host, &bound, &underlay).await?;
            self.dhcp_addresses(&net, &mut spec, &routed).await;
            networks.push(spec);
        }
        // Routers' ports are bound here too (they make this host carry
        // their networks) but are no guests' ports.
        let ports: Vec<Port> = ports
            .into_iter()
            .filter(|p| !p.device_owner.starts_with("network:"))
            .collect();
        let routers = self
            .store
            .routers_on_host(host)
            .await?
            .into_iter()
            .map(router_spec)
            .collect();
        let security_groups = self.security_group_specs(&ports).await?;
        // The metadata proxy answers a port's guest with the data of the
        // server it names, so a port names only a live server of its own
        // project on this host: `device_id` is the user's to write.
        let servers: BTreeMap<InstanceId, ProjectId> = self
            .store
            .instances_on_host(host)
            .await?
            .into_iter()
            .filter(|i| i.deleted_at.is_none())
            .map(|i| (i.id, i.project_id))
            .collect();
        Ok(HostNetwork {
            revision,
            networks,
            ports: ports
                .iter()
                .map(|p| {
                    let mut spec = port_spec(p);
                    spec.instance_id = p
                        .device_id
                        .filter(|id| servers.get(id) == Some(&p.project_id));
                    spec
                })
                .collect(),
            security_groups,
            routers,
        })
    }

    /// Where something else holds a subnet's gateway (a router's
    /// interface; the physical router of a flat or VLAN network), the
    /// network's namespace serves DHCP from the subnet's DHCP port
    /// address instead. A subnet whose DHCP port cannot be had (no free
    /// address) is served no DHCP, and says why in the log.
    async fn dhcp_addresses(
        &self,
        net: &Network,
        spec: &mut NetworkSpec,
        routed: &BTreeSet<cloud_model::SubnetId>,
    ) {
        let provider = net.segment.network_type != NetworkType::Vxlan;
        for s in &mut spec.subnets {
            let Some(id) = cloud_model::SubnetId::parse(&s.id) else {
                continue;
            };
            s.gateway_elsewhere = provider || routed.contains(&id);
            if !s.gateway_elsewhere || !s.dhcp {
                continue;
            }
            match self.store.dhcp_port_ensure(net.id, id).await {
                Ok(a) => s.dhcp_address = Some(a),
                Err(e) => {
                    tracing::warn!(subnet = %s.id, error = %e, "no DHCP address for the subnet")
                }
            }
        }
    }

    async fn network_spec(
        &self,
        net: &Network,
        host: &str,
        bound: &[BoundPort],
        underlay: &BTreeMap<String, Ipv4Addr>,
    ) -> Result<NetworkSpec, Error> {
        let subnets = self
            .store
            .subnet_list(
                &Scope::All,
                &[("network_id".to_owned(), net.id.to_string())]
                    .into_iter()
                    .collect(),
            )
            .await?;
        let remote: Vec<&BoundPort> = bound
            .iter()
            .filter(|p| p.network_id == net.id && p.host != host)
            .collect();
        let peers: BTreeSet<Ipv4Addr> = remote
            .iter()
            .filter_map(|p| underlay.get(&p.host).copied())
            .collect();
        Ok(NetworkSpec {
            id: net.id.to_string(),
            segment: segment_spec(net)?,
            mtu: u32::try_from(net.mtu).unwrap_or(1500),
            subnets: subnets
                .iter()
                .map(|s| SubnetSpec {
                    id: s.id.to_string(),
                    cidr: s.cidr,
                    gateway: s.gateway_ip,
                    dhcp: s.enable_dhcp,
                    dns: s.dns_nameservers.clone(),
                    host_routes: s.host_routes.clone(),
                    dhcp_address: None,
                    gateway_elsewhere: false,
                })
                .collect(),
            peers: peers.into_iter().collect(),
            remote_ports: remote
                .iter()
                .filter_map(|p| {
                    Some(RemotePort {
                        mac: p.mac.to_ascii_lowercase(),
                        ips: p.ips.clone(),
                        host_ip: *underlay.get(&p.host)?,
                    })
                })
                .collect(),
        })
    }

    /// The groups of the filtered ports with their rules, plus the groups
    /// those rules name as remote with their members' addresses.
    async fn security_group_specs(&self, ports: &[Port]) -> Result<Vec<SecurityGroupSpec>, Error> {
        let groups: BTreeSet<SecurityGroupId> = ports
            .iter()
            .filter(|p| p.port_security_enabled)
            .flat_map(|p| p.security_group_ids.iter().copied())
            .collect();
        let rules = self.store.rules_of_groups(&groups).await?;
        let remotes: BTreeSet<SecurityGroupId> = rules
            .values()
            .flatten()
            .filter_map(|r| r.remote_group_id)
            .collect();
        let members = self.store.members_of_groups(&remotes).await?;
        let mut specs: BTreeMap<SecurityGroupId, SecurityGroupSpec> = BTreeMap::new();
        for g in groups.iter().chain(remotes.iter()) {
            specs.insert(
                *g,
                SecurityGroupSpec {
                    id: g.to_string(),
                    rules: rules
                        .get(g)
                        .map(|rs| rs.iter().filter_map(rule_spec).collect())
                        .unwrap_or_default(),
                    members: members
                        .get(g)
                        .map(|m| m.iter().copied().collect())
                        .unwrap_or_default(),
                },
            );
        }
        Ok(specs.into_values().collect())
    }

    /// Something hosts carry changed: tells every host concerned to pull
    /// its state again. Failing to reach one host is logged, not fatal:
    /// agents also pull periodically.
    pub(crate) async fn network_changed(
        &self,
        networks: &[NetworkId],
        groups: &[SecurityGroupId],
        hosts: &[String],
        request_id: &str,
    ) -> Result<(), Error> {
        let mut concerned = self.store.hosts_concerned(networks, groups).await?;
        concerned.extend(hosts.iter().cloned());
        let reason = format!(
            "{} network(s), {} security group(s) changed",
            networks.len(),
            groups.len()
        );
        // At once: on RabbitMQ each cast waits for the broker's confirm.
        futures::future::join_all(concerned.into_iter().map(|host| {
            let msg = ComputeMsg::SyncNetwork {
                reason: reason.clone(),
            };
            async move {
                if let Err(e) = self.cast(&compute_queue(&host), &msg, request_id).await {
                    tracing::warn!(%host, error = %e, "cannot tell a host its network changed");
                }
            }
        }))
        .await;
        Ok(())
    }
}

/// A router as its host builds it.
fn router_spec(r: cloud_store::HostRouter) -> RouterSpec {
    RouterSpec {
        id: r.router.id.to_string(),
        interfaces: r
            .interfaces
            .iter()
            .map(|i| RouterPort {
                port_id: i.port_id.to_string(),
                network_id: i.network_id.to_string(),
                mac: i.mac_address.to_ascii_lowercase(),
                address: i.ip_address,
                cidr: i.cidr,
            })
            .collect(),
        gateway: r.gateway.map(|g| RouterGateway {
            port_id: g.port_id.to_string(),
            network_id: g.network_id.to_string(),
            mac: g.mac.to_ascii_lowercase(),
            address: g.address,
            cidr: g.cidr,
            next_hop: g.next_hop,
            snat: g.snat,
        }),
        floating_ips: r
            .floating_ips
            .iter()
            .map(|(f, x)| FloatingIpSpec {
                floating_ip: *f,
                fixed_ip: *x,
            })
            .collect(),
        routes: r.router.routes.clone(),
    }
}

fn segment_spec(net: &Network) -> Result<SegmentSpec, Error> {
    let seg = &net.segment;
    let id = seg.segmentation_id.unwrap_or(0);
    let physnet = || seg.physical_network.clone().unwrap_or_default();
    let bad = || Error::internal(format!("network {} has no valid segment", net.id));
    Ok(match seg.network_type {
        NetworkType::Vxlan => SegmentSpec::Vxlan {
            vni: u32::try_from(id).ok().filter(|v| *v > 0).ok_or_else(bad)?,
        },
        NetworkType::Vlan => SegmentSpec::Vlan {
            physical_network: physnet(),
            vlan_id: u16::try_from(id).ok().filter(|v| *v > 0).ok_or_else(bad)?,
        },
        NetworkType::Flat => SegmentSpec::Flat {
            physical_network: physnet(),
        },
    })
}

fn port_spec(p: &Port) -> PortSpec {
    PortSpec {
        id: p.id.to_string(),
        network_id: p.network_id.to_string(),
        instance_id: p.device_id,
        mac: p.mac_address.to_ascii_lowercase(),
        fixed_ips: p.fixed_ips.iter().map(|f| f.ip_address).collect(),
        allowed_address_pairs: p
            .allowed_address_pairs
            .iter()
            .map(|a| AddressPair {
                cidr: a.ip_address,
                mac: a.mac_address.to_ascii_lowercase(),
            })
            .collect(),
        port_security: p.port_security_enabled,
        security_groups: if p.port_security_enabled {
            p.security_group_ids.iter().map(|g| g.to_string()).collect()
        } else {
            Vec::new()
        },
    }
}

/// A rule as the host enforces it. A rule the host cannot express (an
/// unknown protocol name) is left out: leaving out an allow rule only
/// denies more, never less.
fn rule_spec(r: &SecurityGroupRule) -> Option<RuleSpec> {
    let ethertype = match r.ethertype.as_str() {
        "IPv6" => EtherType::IPv6,
        _ => EtherType::IPv4,
    };
    let protocol = match r.protocol.as_deref() {
        None | Some("") | Some("any") => None,
        Some(p) => match protocol_number(p) {
            // Neutron takes "icmp" in an IPv6 rule as ICMPv6.
            Some(1) if ethertype == EtherType::IPv6 => Some(58),
            Some(n) => Some(n),
            None => {
                tracing::warn!(rule = %r.id, protocol = p, "rule with an unknown protocol left out");
                return None;
            }
        },
    };
    let port = |v: Option<i64>| v.and_then(|v| u16::try_from(v).ok());
    Some(RuleSpec {
        direction: if r.direction == "egress" {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        ethertype,
        protocol,
        port_min: port(r.port_range_min),
        port_max: port(r.port_range_max),
        remote_ip_prefix: r.remote_ip_prefix.clone(),
        remote_group: r.remote_group_id.map(|g| g.to_string()),
    })
}

/// Neutron's protocol names (and numbers) as IP protocol numbers.
fn protocol_number(p: &str) -> Option<u8> {
    Some(match p.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "egp" => 8,
        "udp" => 17,
        "ipip" => 4,
        "dccp" => 33,
        "ipv6-encap" => 41,
        "ipv6-route" => 43,
        "ipv6-frag" => 44,
        "rsvp" => 46,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "ipv6-nonxt" => 59,
        "ipv6-opts" => 60,
        "ospf" => 89,
        "pgm" => 113,
        "vrrp" => 112,
        "sctp" => 132,
        "udplite" => 136,
        other => return other.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_map_to_numbers_and_unknown_ones_are_refused() {
        assert_eq!(protocol_number("tcp"), Some(6));
        assert_eq!(protocol_number("ICMP"), Some(1));
        assert_eq!(protocol_number("ipv6-icmp"), Some(58));
        assert_eq!(protocol_number("132"), Some(132));
        assert_eq!(protocol_number("banana"), None);
        assert_eq!(protocol_number("300"), None);
    }
}
