//! Forgetting connections that the rules no longer allow. Rules only see
//! a connection's first packet; without this, a flow opened while a rule
//! allowed it would outlive the rule, and an address given to a new port
//! would inherit the old port's flows (Neutron deletes them too).
//!
//! After each apply, the flows of every port whose filtering changed (its
//! groups, their rules or their remote members, its address pairs, port
//! security) or that left the host are deleted from its network's zone.
//! A flow still allowed is picked up again by its next packet (conntrack's
//! loose TCP tracking), so only disallowed ones end.

use crate::cmd;
use cloud_driver::HostNetwork;
use cloud_driver::network::PortSpec;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

/// What a port's filtering was at the last apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortFilter {
    zone: u16,
    ips: Vec<Ipv4Addr>,
    fingerprint: u64,
}

/// The filtering of every port of `desired`, with its network's zone.
pub fn filters(
    desired: &HostNetwork,
    zones: &BTreeMap<String, u16>,
) -> HashMap<String, PortFilter> {
    desired
        .ports
        .iter()
        .filter_map(|p| {
            let zone = *zones.get(&p.network_id)?;
            Some((
                p.id.clone(),
                PortFilter {
                    zone,
                    ips: p.fixed_ips.clone(),
                    fingerprint: fingerprint(p, desired),
                },
            ))
        })
        .collect()
}

/// A hash of everything that decides what a port may send and receive.
fn fingerprint(p: &PortSpec, desired: &HostNetwork) -> u64 {
    let mut h = DefaultHasher::new();
    p.port_security.hash(&mut h);
    p.mac.hash(&mut h);
    p.fixed_ips.hash(&mut h);
    for pair in &p.allowed_address_pairs {
        pair.cidr.to_string().hash(&mut h);
        pair.mac.hash(&mut h);
    }
    for g in &p.security_groups {
        let Some(group) = desired.security_groups.iter().find(|s| &s.id == g) else {
            continue;
        };
        g.hash(&mut h);
        format!("{:?}", group.rules).hash(&mut h);
        for remote in group.rules.iter().filter_map(|r| r.remote_group.as_ref()) {
            if let Some(rg) = desired.security_groups.iter().find(|s| &s.id == remote) {
                for m in &rg.members {
                    m.to_string().hash(&mut h);
                }
            }
        }
    }
    h.finish()
}

/// The ports whose flows must go: changed or gone since `before`.
pub fn stale<'a>(
    before: &'a HashMap<String, PortFilter>,
    now: &HashMap<String, PortFilter>,
) -> Vec<&'a PortFilter> {
    before
        .iter()
        .filter(|(id, f)| now.get(*id) != Some(*f))
        .map(|(_, f)| f)
        .collect()
}

/// Deletes the flows from and to the ports' addresses in their zones, in
/// namespace `netns`. Failures are logged: a missing `conntrack` tool
/// only leaves old flows to expire on their own.
pub async fn flush(netns: Option<&str>, ports: &[&PortFilter]) {
    for p in ports {
        let zone = p.zone.to_string();
        for ip in &p.ips {
            let ip = ip.to_string();
            for dir in ["-s", "-d"] {
                // Exit status 1 means "no such flow": fine.
                let r = cmd::run_in(netns, "conntrack", ["-D", "-w", &zone, dir, &ip]).await;
                if let Err(e) = r
                    && !format!("{e:#}").contains("0 flow entries")
                {
                    tracing::debug!(error = %format!("{e:#}"), "conntrack flush");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_driver::network::{Direction, EtherType, RuleSpec, SecurityGroupSpec};

    #[test]
    fn a_rule_change_or_a_departure_makes_a_port_stale() {
        let port = PortSpec {
            id: "p".into(),
            network_id: "n".into(),
            instance_id: None,
            mac: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec!["10.0.0.5".parse().unwrap()],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            security_groups: vec!["g".into()],
        };
        let mut state = HostNetwork {
            ports: vec![port],
            security_groups: vec![SecurityGroupSpec {
                id: "g".into(),
                rules: Vec::new(),
                members: Vec::new(),
            }],
            ..HostNetwork::default()
        };
        let zones = BTreeMap::from([("n".to_owned(), 3)]);
        let before = filters(&state, &zones);
        assert!(stale(&before, &filters(&state, &zones)).is_empty());
        state.security_groups[0].rules.push(RuleSpec {
            direction: Direction::Ingress,
            ethertype: EtherType::IPv4,
            protocol: Some(6),
            port_min: Some(22),
            port_max: Some(22),
            remote_ip_prefix: None,
            remote_group: None,
        });
        assert_eq!(stale(&before, &filters(&state, &zones)).len(), 1);
        state.ports.clear();
        assert_eq!(stale(&before, &filters(&state, &zones)).len(), 1);
    }
}
