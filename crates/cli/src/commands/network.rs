//! Network resources (Neutron): networks, subnets, ports, security groups
//! and their rules.

use crate::app::App;
use crate::commands::compute::new_key;
use crate::commands::{NamesArg, ShowOne, delete_all, show_one};
use crate::exit::{CliError, CliResult};
use crate::output::{Col, OutputArgs, print_list, print_show};
use clap::{Args, Subcommand};
use cloud_client::{NETWORK, PORT, SECURITY_GROUP, SECURITY_GROUP_RULE, SERVER, SUBNET, ValueExt};
use serde_json::{Value, json};

/// `cloud network ...`.
#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// List networks.
    #[command(after_help = "Example:\n  cloud network list")]
    List(OutputArgs),
    /// Show a network.
    #[command(after_help = "Example:\n  cloud network show app-net")]
    Show(ShowOne),
    /// Create a network.
    #[command(after_help = "Example:\n  cloud network create app-net --description 'app tier'")]
    Create(NetworkCreate),
    /// Delete networks (and their subnets).
    #[command(after_help = "Example:\n  cloud network delete app-net")]
    Delete(NamesArg),
}

/// `cloud network create`.
#[derive(Debug, Args)]
pub struct NetworkCreate {
    /// Network name.
    pub name: String,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Create it administratively down.
    #[arg(long)]
    pub disable: bool,
    /// Share it with every project (admin).
    #[arg(long)]
    pub shared: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a network command.
pub async fn network(app: &App, cmd: &NetworkCmd) -> CliResult {
    match cmd {
        NetworkCmd::List(out) => {
            let items = app.client.list(NETWORK, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("Subnets", "subnets"),
                Col::new("Status", "status"),
            ];
            print_list(&items, &cols, out)
        }
        NetworkCmd::Show(a) => show_one(app, NETWORK, a).await,
        NetworkCmd::Create(a) => {
            let mut n = json!({"name": a.name, "admin_state_up": !a.disable});
            if let Some(d) = &a.description {
                n["description"] = json!(d);
            }
            if a.shared {
                n["shared"] = json!(true);
            }
            let created = app
                .client
                .create(NETWORK, json!({ "network": n }), Some(&new_key()))
                .await?;
            print_show(&created, &a.output)
        }
        NetworkCmd::Delete(a) => delete_all(app, NETWORK, &a.names).await,
    }
}

/// `cloud subnet ...`.
#[derive(Debug, Subcommand)]
pub enum SubnetCmd {
    /// List subnets.
    #[command(after_help = "Example:\n  cloud subnet list --network app-net")]
    List(SubnetList),
    /// Show a subnet.
    #[command(after_help = "Example:\n  cloud subnet show app-v4")]
    Show(ShowOne),
    /// Create a subnet.
    #[command(after_help = "Example:
  cloud subnet create app-v4 --network app-net --subnet-range 10.0.1.0/24 --dns-nameserver 9.9.9.9")]
    Create(SubnetCreate),
    /// Delete subnets.
    #[command(after_help = "Example:\n  cloud subnet delete app-v4")]
    Delete(NamesArg),
}

/// `cloud subnet list`.
#[derive(Debug, Args)]
pub struct SubnetList {
    /// Only the subnets of this network.
    #[arg(long)]
    pub network: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud subnet create`.
#[derive(Debug, Args)]
pub struct SubnetCreate {
    /// Subnet name.
    pub name: String,
    /// Network name or id.
    #[arg(long)]
    pub network: String,
    /// CIDR (10.0.1.0/24).
    #[arg(long)]
    pub subnet_range: String,
    /// Gateway address, or `none`.
    #[arg(long)]
    pub gateway: Option<String>,
    /// No DHCP on this subnet.
    #[arg(long)]
    pub no_dhcp: bool,
    /// DNS server (repeatable).
    #[arg(long = "dns-nameserver")]
    pub dns: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a subnet command.
pub async fn subnet(app: &App, cmd: &SubnetCmd) -> CliResult {
    match cmd {
        SubnetCmd::List(a) => {
            let net;
            let mut q = Vec::new();
            if let Some(n) = &a.network {
                net = app.client.find_id(NETWORK, n).await?;
                q.push(("network_id", net.as_str()));
            }
            let items = app.client.list(SUBNET, &q).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("Network", "network_id"),
                Col::new("Subnet", "cidr"),
            ];
            print_list(&items, &cols, &a.output)
        }
        SubnetCmd::Show(a) => show_one(app, SUBNET, a).await,
        SubnetCmd::Create(a) => {
            let network_id = app.client.find_id(NETWORK, &a.network).await?;
            let version = if a.subnet_range.contains(':') { 6 } else { 4 };
            let mut s = json!({
                "name": a.name, "network_id": network_id, "cidr": a.subnet_range,
                "ip_version": version, "enable_dhcp": !a.no_dhcp,
            });
            match a.gateway.as_deref() {
                Some("none") => s["gateway_ip"] = Value::Null,
                Some(g) => s["gateway_ip"] = json!(g),
                None => {}
            }
            if !a.dns.is_empty() {
                s["dns_nameservers"] = json!(a.dns);
            }
            let created = app
                .client
                .create(SUBNET, json!({ "subnet": s }), Some(&new_key()))
                .await?;
            print_show(&created, &a.output)
        }
        SubnetCmd::Delete(a) => delete_all(app, SUBNET, &a.names).await,
    }
}

/// `cloud port ...`.
#[derive(Debug, Subcommand)]
pub enum PortCmd {
    /// List ports.
    #[command(
        after_help = "Examples:\n  cloud port list --network app-net\n  cloud port list --server web-1"
    )]
    List(PortList),
    /// Show a port.
    #[command(after_help = "Example:\n  cloud port show vip")]
    Show(ShowOne),
    /// Create a port.
    #[command(
        after_help = "Example:\n  cloud port create vip --network app-net --fixed-ip 10.0.1.50"
    )]
    Create(PortCreate),
    /// Delete ports.
    #[command(after_help = "Example:\n  cloud port delete vip")]
    Delete(NamesArg),
}

/// `cloud port list`.
#[derive(Debug, Args)]
pub struct PortList {
    /// Only ports on this network.
    #[arg(long)]
    pub network: Option<String>,
    /// Only ports of this server.
    #[arg(long)]
    pub server: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud port create`.
#[derive(Debug, Args)]
pub struct PortCreate {
    /// Port name.
    pub name: String,
    /// Network name or id.
    #[arg(long)]
    pub network: String,
    /// Fixed IP address (repeatable).
    #[arg(long = "fixed-ip", value_name = "IP")]
    pub fixed_ips: Vec<String>,
    /// Security group name or id (repeatable).
    #[arg(long = "security-group")]
    pub security_groups: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a port command.
pub async fn port(app: &App, cmd: &PortCmd) -> CliResult {
    match cmd {
        PortCmd::List(a) => {
            let (net, srv);
            let mut q = Vec::new();
            if let Some(n) = &a.network {
                net = app.client.find_id(NETWORK, n).await?;
                q.push(("network_id", net.as_str()));
            }
            if let Some(s) = &a.server {
                srv = app.client.find_id(SERVER, s).await?;
                q.push(("device_id", srv.as_str()));
            }
            let items = app.client.list(PORT, &q).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("MAC Address", "mac_address"),
                Col::with("Fixed IPs", "fixed_ips", |v| {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| f.text("ip_address").to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
                Col::new("Status", "status"),
            ];
            print_list(&items, &cols, &a.output)
        }
        PortCmd::Show(a) => show_one(app, PORT, a).await,
        PortCmd::Create(a) => {
            let network_id = app.client.find_id(NETWORK, &a.network).await?;
            let mut p = json!({"name": a.name, "network_id": network_id});
            if !a.fixed_ips.is_empty() {
                p["fixed_ips"] = a
                    .fixed_ips
                    .iter()
                    .map(|ip| json!({"ip_address": ip}))
                    .collect();
            }
            if !a.security_groups.is_empty() {
                let mut ids = Vec::new();
                for g in &a.security_groups {
                    ids.push(app.client.find_id(SECURITY_GROUP, g).await?);
                }
                p["security_groups"] = json!(ids);
            }
            let created = app
                .client
                .create(PORT, json!({ "port": p }), Some(&new_key()))
                .await?;
            print_show(&created, &a.output)
        }
        PortCmd::Delete(a) => delete_all(app, PORT, &a.names).await,
    }
}

/// `cloud security-group ...`.
#[derive(Debug, Subcommand)]
pub enum SecurityGroupCmd {
    /// List security groups.
    #[command(after_help = "Example:\n  cloud security-group list")]
    List(OutputArgs),
    /// Show a security group with its rules.
    #[command(after_help = "Example:\n  cloud security-group show web")]
    Show(ShowOne),
    /// Create a security group.
    #[command(after_help = "Example:\n  cloud security-group create web --description 'HTTP in'")]
    Create(GroupCreate),
    /// Delete security groups.
    #[command(after_help = "Example:\n  cloud security-group delete web")]
    Delete(NamesArg),
    /// Rules of a group.
    #[command(subcommand)]
    Rule(RuleCmd),
}

/// `cloud security-group create`.
#[derive(Debug, Args)]
pub struct GroupCreate {
    /// Group name.
    pub name: String,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud security-group rule ...`.
#[derive(Debug, Subcommand)]
pub enum RuleCmd {
    /// List the rules of a group.
    #[command(after_help = "Example:\n  cloud security-group rule list web")]
    List(RuleList),
    /// Add a rule to a group.
    #[command(after_help = "Examples:
  cloud security-group rule create web --protocol tcp --dst-port 80 --remote-ip 0.0.0.0/0
  cloud security-group rule create db --protocol tcp --dst-port 5432 --remote-group web")]
    Create(RuleCreate),
    /// Delete rules by id.
    #[command(after_help = "Example:\n  cloud security-group rule delete 4b1c...")]
    Delete(NamesArg),
}

/// `cloud security-group rule list`.
#[derive(Debug, Args)]
pub struct RuleList {
    /// Group name or id.
    pub group: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud security-group rule create`.
#[derive(Debug, Args)]
pub struct RuleCreate {
    /// Group name or id.
    pub group: String,
    /// tcp, udp, icmp or any.
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Port or range (`22`, `8000:8080`).
    #[arg(long)]
    pub dst_port: Option<String>,
    /// Source CIDR.
    #[arg(long)]
    pub remote_ip: Option<String>,
    /// Source security group (name or id).
    #[arg(long, conflicts_with = "remote_ip")]
    pub remote_group: Option<String>,
    /// An egress rule (default: ingress).
    #[arg(long)]
    pub egress: bool,
    /// IPv4 or IPv6.
    #[arg(long, default_value = "IPv4")]
    pub ethertype: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `(min, max)` of a port range `22` or `8000:8080` (or `8000-8080`).
pub fn port_range(s: &str) -> CliResult<(u16, u16)> {
    let bad = || CliError::usage(format!("port range '{s}' is not PORT or MIN:MAX"));
    let (a, b) = s.split_once([':', '-']).unwrap_or((s, s));
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Runs a security group command.
pub async fn security_group(app: &App, cmd: &SecurityGroupCmd) -> CliResult {
    match cmd {
        SecurityGroupCmd::List(out) => {
            let items = app.client.list(SECURITY_GROUP, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("Description", "description"),
            ];
            print_list(&items, &cols, out)
        }
        SecurityGroupCmd::Show(a) => show_one(app, SECURITY_GROUP, a).await,
        SecurityGroupCmd::Create(a) => {
            let g =
                json!({"name": a.name, "description": a.description.clone().unwrap_or_default()});
            let created = app
                .client
                .create(
                    SECURITY_GROUP,
                    json!({ "security_group": g }),
                    Some(&new_key()),
                )
                .await?;
            print_show(&created, &a.output)
        }
        SecurityGroupCmd::Delete(a) => delete_all(app, SECURITY_GROUP, &a.names).await,
        SecurityGroupCmd::Rule(RuleCmd::List(a)) => {
            let gid = app.client.find_id(SECURITY_GROUP, &a.group).await?;
            let items = app
                .client
                .list(SECURITY_GROUP_RULE, &[("security_group_id", gid.as_str())])
                .await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Direction", "direction"),
                Col::new("Ethertype", "ethertype"),
                Col::new("Protocol", "protocol"),
                Col::new("Port Min", "port_range_min"),
                Col::new("Port Max", "port_range_max"),
                Col::new("Remote IP", "remote_ip_prefix"),
                Col::new("Remote Group", "remote_group_id"),
            ];
            print_list(&items, &cols, &a.output)
        }
        SecurityGroupCmd::Rule(RuleCmd::Create(a)) => {
            let gid = app.client.find_id(SECURITY_GROUP, &a.group).await?;
            let mut r = json!({
                "security_group_id": gid,
                "direction": if a.egress { "egress" } else { "ingress" },
                "ethertype": a.ethertype,
            });
            if a.protocol != "any" {
                r["protocol"] = json!(a.protocol);
            }
            if let Some(p) = &a.dst_port {
                let (min, max) = port_range(p)?;
                r["port_range_min"] = json!(min);
                r["port_range_max"] = json!(max);
            }
            if let Some(ip) = &a.remote_ip {
                r["remote_ip_prefix"] = json!(ip);
            }
            if let Some(g) = &a.remote_group {
                r["remote_group_id"] = json!(app.client.find_id(SECURITY_GROUP, g).await?);
            }
            let created = app
                .client
                .create(
                    SECURITY_GROUP_RULE,
                    json!({ "security_group_rule": r }),
                    Some(&new_key()),
                )
                .await?;
            print_show(&created, &a.output)
        }
        SecurityGroupCmd::Rule(RuleCmd::Delete(a)) => {
            for id in &a.names {
                app.client.delete(SECURITY_GROUP_RULE, id).await?;
            }
            Ok(())
        }
    }
}
