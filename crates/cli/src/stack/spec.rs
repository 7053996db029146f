//! The stack file: what the user declares, checked and turned into a flat
//! list of [`Desired`] resources with their references.
//!
//! Resources refer to each other by name. A name declared in the file is a
//! reference inside the stack (ordering and replacement follow it); any
//! other name is an existing resource of the cloud, looked up when the
//! plan is made.

use crate::exit::{CliError, CliResult};
use crate::stack::file::{NicSpec, PortSpec, RuleSpec, StackFile};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Kinds of stack resources, in creation order (every reference points to
/// an earlier kind, or to an earlier security group).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResKind {
    /// A keypair.
    Keypair,
    /// A server group.
    ServerGroup,
    /// A security group.
    SecurityGroup,
    /// A rule of a security group.
    SecurityGroupRule,
    /// A network.
    Network,
    /// A subnet.
    Subnet,
    /// A router (with its external gateway).
    Router,
    /// A router's interface on a subnet (its id is the interface port's).
    RouterInterface,
    /// A server.
    Server,
    /// A floating IP associated with a server.
    FloatingIp,
}

impl ResKind {
    /// The word used in plans.
    pub fn label(self) -> &'static str {
        match self {
            ResKind::Keypair => "keypair",
            ResKind::ServerGroup => "server_group",
            ResKind::SecurityGroup => "security_group",
            ResKind::SecurityGroupRule => "security_group_rule",
            ResKind::Network => "network",
            ResKind::Subnet => "subnet",
            ResKind::Router => "router",
            ResKind::RouterInterface => "router_interface",
            ResKind::Server => "server",
            ResKind::FloatingIp => "floating_ip",
        }
    }

    /// Fields a change of which can be applied in place.
    pub fn updatable(self) -> &'static [&'static str] {
        match self {
            ResKind::Network => &["description", "admin_state_up"],
            ResKind::Subnet => &[
                "description",
                "enable_dhcp",
                "dns_nameservers",
                "gateway_ip",
            ],
            ResKind::SecurityGroup => &["description"],
            ResKind::Server => &["metadata"],
            ResKind::Router => &["external_network", "enable_snat", "description"],
            ResKind::FloatingIp => &["server"],
            _ => &[],
        }
    }
}

/// A resource's address: kind and name (rules: `group/rule text`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    /// Kind.
    pub kind: ResKind,
    /// Name within the kind.
    pub name: String,
}

impl Addr {
    /// An address.
    pub fn new(kind: ResKind, name: &str) -> Addr {
        Addr {
            kind,
            name: name.to_owned(),
        }
    }

    /// The state file key: `kind.name`.
    pub fn key(&self) -> String {
        format!("{}.{}", self.kind.label(), self.name)
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.label(), self.name)
    }
}

/// A reference from one resource to another declared in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// The target.
    pub to: Addr,
    /// Whether replacing the target replaces the referrer (it holds the
    /// target's id, or the target cannot go while the referrer exists).
    pub hard: bool,
}

/// One resource as the file wants it.
#[derive(Clone, Debug)]
pub struct Desired {
    /// Address.
    pub addr: Addr,
    /// Declared fields, canonical (references by name); compared with what
    /// was applied last time.
    pub inputs: Value,
    /// References to other resources of the file.
    pub refs: Vec<Ref>,
}

/// A parsed stack: its name and resources in creation order.
#[derive(Debug)]
pub struct Stack {
    /// The stack's name.
    pub name: String,
    /// Resources, in creation order.
    pub resources: Vec<Desired>,
}

/// The canonical text of a rule, which is its identity (rules cannot be
/// changed, only replaced).
fn rule_name(r: &RuleSpec) -> CliResult<(String, Value)> {
    let protocol = r.protocol.clone().unwrap_or_else(|| "any".into());
    let ports = match &r.port {
        None => None,
        Some(PortSpec::Num(p)) => Some((*p, *p)),
        Some(PortSpec::Text(t)) => Some(crate::commands::network::port_range(t)?),
    };
    let from = match (&r.remote_ip_prefix, &r.remote_group) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                "a rule takes remote_ip_prefix or remote_group, not both",
            ));
        }
        (Some(ip), None) => format!(" from {ip}"),
        (None, Some(g)) => format!(" from group {g}"),
        (None, None) => String::new(),
    };
    let port_text = match ports {
        Some((a, b)) if a == b => format!(" {a}"),
        Some((a, b)) => format!(" {a}-{b}"),
        None => String::new(),
    };
    let name = format!(
        "{} {} {protocol}{port_text}{from}",
        r.direction, r.ethertype
    );
    let inputs = json!({
        "direction": r.direction, "ethertype": r.ethertype, "protocol": protocol,
        "port_range_min": ports.map(|p| p.0), "port_range_max": ports.map(|p| p.1),
        "remote_ip_prefix": r.remote_ip_prefix, "remote_group": r.remote_group,
    });
    Ok((name, inputs))
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> CliResult<Stack> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let file: StackFile = serde_saphyr::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    build(file, base).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

fn build(f: StackFile, base: &Path) -> CliResult<Stack> {
    if f.stack.trim().is_empty() {
        return Err(CliError::usage(
            "'stack' (the stack's name) must not be empty",
        ));
    }
    let mut out: Vec<Desired> = Vec::new();
    let mut push = |addr: Addr, inputs: Value, refs: Vec<Ref>| -> CliResult {
        if addr.name.trim().is_empty() {
            return Err(CliError::usage(format!(
                "a {} has an empty name",
                addr.kind.label()
            )));
        }
        if out.iter().any(|d| d.addr == addr) {
            return Err(CliError::usage(format!("{addr} is declared twice")));
        }
        out.push(Desired { addr, inputs, refs });
        Ok(())
    };
    let declared = |kind: ResKind, names: Vec<&String>| -> BTreeSet<(ResKind, String)> {
        names.into_iter().map(|n| (kind, n.clone())).collect()
    };
    let mut names = BTreeSet::new();
    names.extend(declared(
        ResKind::Keypair,
        f.keypairs.iter().map(|k| &k.name).collect(),
    ));
    names.extend(declared(
        ResKind::ServerGroup,
        f.server_groups.iter().map(|k| &k.name).collect(),
    ));
    names.extend(declared(
        ResKind::SecurityGroup,
        f.security_groups.iter().map(|k| &k.name).collect(),
    ));
    names.extend(declared(
        ResKind::Network,
        f.networks.iter().map(|k| &k.name).collect(),
    ));
    names.extend(declared(
        ResKind::Subnet,
        f.subnets.iter().map(|k| &k.name).collect(),
    ));
    names.extend(declared(
        ResKind::Server,
        f.servers.iter().map(|k| &k.name).collect(),
    ));
    let local = |kind: ResKind, name: &str, hard: bool| -> Option<Ref> {
        names.contains(&(kind, name.to_owned())).then(|| Ref {
            to: Addr::new(kind, name),
            hard,
        })
    };

    for k in &f.keypairs {
        let key = match (&k.public_key, &k.public_key_file) {
            (Some(key), None) => key.trim().to_owned(),
            (None, Some(file)) => {
                let file = if file.is_absolute() {
                    file.clone()
                } else {
                    base.join(file)
                };
                std::fs::read_to_string(&file)
                    .map_err(|e| {
                        CliError::usage(format!("keypair {}: {}: {e}", k.name, file.display()))
                    })?
                    .trim()
                    .to_owned()
            }
            _ => {
                return Err(CliError::usage(format!(
                    "keypair {}: give exactly one of public_key or public_key_file",
                    k.name
                )));
            }
        };
        push(
            Addr::new(ResKind::Keypair, &k.name),
            json!({"public_key": key}),
            vec![],
        )?;
    }
    for g in &f.server_groups {
        push(
            Addr::new(ResKind::ServerGroup, &g.name),
            json!({"policy": g.policy}),
            vec![],
        )?;
    }
    for g in &f.security_groups {
        push(
            Addr::new(ResKind::SecurityGroup, &g.name),
            json!({"description": g.description}),
            vec![],
        )?;
    }
    for g in &f.security_groups {
        for r in &g.rules {
            let (text, mut inputs) = rule_name(r)?;
            inputs["group"] = json!(g.name);
            let mut refs = vec![Ref {
                to: Addr::new(ResKind::SecurityGroup, &g.name),
                hard: true,
            }];
            refs.extend(
                r.remote_group
                    .as_deref()
                    .and_then(|rg| local(ResKind::SecurityGroup, rg, true)),
            );
            push(
                Addr::new(ResKind::SecurityGroupRule, &format!("{}/{text}", g.name)),
                inputs,
                refs,
            )?;
        }
    }
    for n in &f.networks {
        push(
            Addr::new(ResKind::Network, &n.name),
            json!({"description": n.description, "admin_state_up": n.admin_state_up}),
            vec![],
        )?;
    }
    let mut subnets_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &f.subnets {
        let net = local(ResKind::Network, &s.network, true).ok_or_else(|| {
            CliError::usage(format!(
                "subnet {}: network '{}' is not declared in the file",
                s.name, s.network
            ))
        })?;
        subnets_of
            .entry(s.network.clone())
            .or_default()
            .push(s.name.clone());
        push(
            Addr::new(ResKind::Subnet, &s.name),
            json!({
                "network": s.network, "cidr": s.cidr, "gateway_ip": s.gateway_ip,
                "enable_dhcp": s.enable_dhcp, "dns_nameservers": s.dns_nameservers,
                "description": s.description,
            }),
            vec![net],
        )?;
    }
    for s in &f.servers {
        let mut refs = Vec::new();
        let mut nets = Vec::new();
        for n in &s.networks {
            let (net, ip) = match n {
                NicSpec::Name(net) => (net.clone(), None),
                NicSpec::Full { network, fixed_ip } => (network.clone(), fixed_ip.clone()),
            };
            refs.extend(local(ResKind::Network, &net, true));
            for sub in subnets_of.get(&net).into_iter().flatten() {
                refs.push(Ref {
                    to: Addr::new(ResKind::Subnet, sub),
                    hard: true,
                });
            }
            nets.push(json!({"network": net, "fixed_ip": ip}));
        }
        for g in &s.security_groups {
            refs.extend(local(ResKind::SecurityGroup, g, true));
        }
        if let Some(g) = &s.server_group {
            refs.extend(local(ResKind::ServerGroup, g, true));
        }
        if let Some(k) = &s.key_name {
            refs.extend(local(ResKind::Keypair, k, false));
        }
        push(
            Addr::new(ResKind::Server, &s.name),
            json!({
                "flavor": s.flavor, "image": s.image, "networks": nets,
                "key_name": s.key_name, "security_groups": s.security_groups,
                "server_group": s.server_group, "availability_zone": s.availability_zone,
                "user_data": s.user_data, "metadata": s.metadata,
            }),
            refs,
        )?;
    }
    for d in crate::stack::l3::build(&f, &names)? {
        push(d.addr, d.inputs, d.refs)?;
    }
    out.sort_by(|a, b| {
        a.addr
            .kind
            .cmp(&b.addr.kind)
            .then(a.addr.name.cmp(&b.addr.name))
    });
    Ok(Stack {
        name: f.stack,
        resources: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CliResult<Stack> {
        let f: StackFile =
            serde_saphyr::from_str(text).map_err(|e| CliError::usage(e.to_string()))?;
        build(f, Path::new("."))
    }

    #[test]
    fn references_and_order() {
        let s = parse(
            "stack: demo
networks: [{name: app}]
subnets: [{name: app-v4, network: app, cidr: 10.0.1.0/24}]
security_groups:
  - name: web
    rules: [{protocol: tcp, port: 22, remote_ip_prefix: 0.0.0.0/0}]
servers:
  - name: web-1
    flavor: m1.tiny
    image: cirros
    networks: [app, {network: public}]
    security_groups: [web, default]
",
        )
        .unwrap();
        let addrs: Vec<String> = s.resources.iter().map(|d| d.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "security_group web",
                "security_group_rule web/ingress IPv4 tcp 22 from 0.0.0.0/0",
                "network app",
                "subnet app-v4",
                "server web-1"
            ]
        );
        let server = s.resources.last().unwrap();
        let to: Vec<String> = server.refs.iter().map(|r| r.to.to_string()).collect();
        assert_eq!(to, ["network app", "subnet app-v4", "security_group web"]);
    }

    #[test]
    fn mistakes_are_named() {
        let e =
            parse("stack: d\nsubnets: [{name: s, network: nope, cidr: 10.0.0.0/24}]").unwrap_err();
        assert!(
            e.message.contains("network 'nope' is not declared"),
            "{}",
            e.message
        );
        let e = parse("stack: d\nnetworks: [{name: a}, {name: a}]").unwrap_err();
        assert!(e.message.contains("declared twice"), "{}", e.message);
        assert!(
            parse("stack: d\nnetwork: []").is_err(),
            "unknown keys are errors"
        );
    }
}
