//! Forgetting connections that the rules no longer allow. Rules only see
//! a connection's first packet; without this, a flow opened while a rule
//! allowed it would outlive the rule, and an address given to a new port
//! would inherit the old port's flows (Neutron deletes them too).
//!
//! After each apply, the flows of every port whose filtering now allows
//! less (a rule or a remote member gone, an address or pair gone, port
//! security turned on) or that left the host are deleted from its
//! network's zone. A change that only allows more leaves flows alone.
//! A flow still allowed is picked up again by its next packet (conntrack's
//! loose TCP tracking), so only disallowed ones end.

use crate::cmd;
use cloud_driver::HostNetwork;
use cloud_driver::network::PortSpec;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

/// What a port's filtering was at the last apply: what it allowed, as a
/// set of hashed items (rules, remote members, addresses, MAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortFilter {
    zone: u16,
    ips: Vec<Ipv4Addr>,
    allowed: BTreeSet<u64>,
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
                    allowed: allowed(p, desired),
                },
            ))
        })
        .collect()
}

fn item(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Everything a port's filtering allows, as hashed items: losing any of
/// them may end a flow.
fn allowed(p: &PortSpec, desired: &HostNetwork) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    if !p.port_security {
        // Unfiltered allows everything: nothing more to lose.
        out.insert(item(&["unfiltered"]));
        return out;
    }
    out.insert(item(&["mac", &p.mac]));
    for ip in &p.fixed_ips {
        out.insert(item(&["ip", &ip.to_string()]));
    }
    for pair in &p.allowed_address_pairs {
        out.insert(item(&["pair", &pair.cidr.to_string(), &pair.mac]));
    }
    for g in &p.security_groups {
        let Some(group) = desired.security_groups.iter().find(|s| &s.id == g) else {
            continue;
        };
        for rule in &group.rules {
            let rule_text = format!("{rule:?}");
            out.insert(item(&["rule", &rule_text]));
            let remote = rule
                .remote_group
                .as_ref()
                .and_then(|r| desired.security_groups.iter().find(|s| &s.id == r));
            for m in remote.iter().flat_map(|rg| rg.members.iter()) {
                out.insert(item(&["member", &rule_text, &m.to_string()]));
            }
        }
    }
    out
}

/// The ports whose flows must go: gone since `before`, or allowing less.
pub fn stale<'a>(
    before: &'a HashMap<String, PortFilter>,
    now: &HashMap<String, PortFilter>,
) -> Vec<&'a PortFilter> {
    before
        .iter()
        .filter(|(id, f)| match now.get(*id) {
            None => true,
            Some(n) => n.zone != f.zone || !f.allowed.is_subset(&n.allowed),
        })
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
    fn losing_a_rule_or_leaving_makes_a_port_stale_gaining_one_does_not() {
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
        let mut more = state.clone();
        more.security_groups[0].rules.push(RuleSpec {
            direction: Direction::Ingress,
            ethertype: EtherType::IPv4,
            protocol: Some(6),
            port_min: Some(22),
            port_max: Some(22),
            remote_ip_prefix: None,
            remote_group: None,
        });
        let with_rule = filters(&more, &zones);
        assert!(
            stale(&before, &with_rule).is_empty(),
            "a new rule ended flows"
        );
        assert_eq!(
            stale(&with_rule, &before).len(),
            1,
            "a removed rule kept flows"
        );
        state.security_groups[0].rules.push(RuleSpec {
            direction: Direction::Ingress,
            ethertype: EtherType::IPv4,
            protocol: Some(6),
            port_min: Some(22),
            port_max: Some(22),
            remote_ip_prefix: None,
            remote_group: None,
        });
        assert!(stale(&before, &filters(&state, &zones)).is_empty());
        state.ports.clear();
        assert_eq!(stale(&before, &filters(&state, &zones)).len(), 1);
    }
}
