//! `cloud router ...`: routers (Neutron L3) with their external gateway
//! and their interfaces on subnets.

use crate::app::App;
use crate::commands::compute::new_key;
use crate::commands::{NamesArg, ShowOne, delete_all};
use crate::exit::{CliError, CliResult};
use crate::output::{Col, Format, OutputArgs, print_list, print_show};
use clap::{Args, Subcommand};
use cloud_client::{Interface, Kind, NETWORK, ROUTER, SUBNET, ValueExt, gateway_info};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `cloud router ...`.
#[derive(Debug, Subcommand)]
pub enum RouterCmd {
    /// List routers.
    #[command(after_help = "Example:\n  cloud router list")]
    List(OutputArgs),
    /// Show a router with its interfaces.
    #[command(after_help = "Example:\n  cloud router show edge -f json")]
    Show(ShowOne),
    /// Create a router, with a gateway on an external network.
    #[command(after_help = "Examples:
  cloud router create edge --external-network public
  cloud router create quiet --external-network public --no-snat")]
    Create(RouterCreate),
    /// Delete routers (their interfaces must be removed first).
    #[command(after_help = "Example:\n  cloud router delete edge")]
    Delete(NamesArg),
    /// Change a router's gateway, name or description.
    #[command(after_help = "Examples:
  cloud router set edge --external-network public
  cloud router set edge --no-external-network")]
    Set(RouterSet),
    /// Attach a subnet: the router takes its gateway address.
    #[command(after_help = "Example:\n  cloud router add-subnet edge app-v4")]
    AddSubnet(RouterSubnet),
    /// Detach a subnet.
    #[command(after_help = "Example:\n  cloud router remove-subnet edge app-v4")]
    RemoveSubnet(RouterSubnet),
}

/// `cloud router create`.
#[derive(Debug, Args)]
pub struct RouterCreate {
    /// Router name.
    pub name: String,
    /// External network of its gateway (name or id).
    #[arg(long, value_name = "NETWORK")]
    pub external_network: Option<String>,
    /// No source NAT for its subnets through the gateway.
    #[arg(long, requires = "external_network")]
    pub no_snat: bool,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Create it administratively down.
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud router set`.
#[derive(Debug, Args)]
pub struct RouterSet {
    /// Router name or id.
    pub router: String,
    /// Put its gateway on this external network (name or id).
    #[arg(long, value_name = "NETWORK", conflicts_with = "no_external_network")]
    pub external_network: Option<String>,
    /// With --external-network: no source NAT.
    #[arg(long, requires = "external_network")]
    pub no_snat: bool,
    /// Remove its gateway.
    #[arg(long)]
    pub no_external_network: bool,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud router add-subnet` / `remove-subnet`.
#[derive(Debug, Args)]
pub struct RouterSubnet {
    /// Router name or id.
    pub router: String,
    /// Subnet name or id.
    pub subnet: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `id -> name` of every resource of `kind` the user sees (empty on
/// failure: names are a courtesy of tables).
pub async fn names_of(app: &App, kind: Kind) -> HashMap<String, String> {
    match app.client.list(kind, &[]).await {
        Ok(items) => items
            .iter()
            .map(|i| (i.id_str(), i.text(kind.name_key).to_owned()))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

/// Network names for a table, none for JSON/YAML (raw ids there).
pub async fn network_names(app: &App, out: &OutputArgs) -> HashMap<String, String> {
    match out.format {
        Format::Json | Format::Yaml => HashMap::new(),
        _ => names_of(app, NETWORK).await,
    }
}

/// The name of `id` in `names`, else the id.
pub fn named(names: &HashMap<String, String>, id: &str) -> String {
    names
        .get(id)
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| id.to_owned())
}

/// The external network of a router's gateway, resolved, with SNAT.
async fn gateway(app: &App, network: &str, no_snat: bool) -> CliResult<Value> {
    let net = app.client.find(NETWORK, network).await?;
    if !crate::commands::floating_ips::is_external(&net) {
        return Err(CliError::usage(format!(
            "network {network} is not external (router:external): a router's gateway goes \
             on an external network"
        )));
    }
    Ok(gateway_info(&net.id_str(), !no_snat))
}

/// A router as `show` prints it: with `interfaces_info` (port, subnet and
/// address of each interface), as the OpenStack client shows it.
async fn with_interfaces(app: &App, mut router: Value) -> CliResult<Value> {
    let ports = app.client.router_interfaces(&router.id_str()).await?;
    let info: Vec<Value> = ports
        .iter()
        .flat_map(|p| {
            p["fixed_ips"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |f| {
                    json!({"port_id": p.id_str(), "subnet_id": f["subnet_id"],
                           "ip_address": f["ip_address"]})
                })
        })
        .collect();
    router["interfaces_info"] = Value::Array(info);
    Ok(router)
}

/// Runs a router command.
pub async fn router(app: &App, cmd: &RouterCmd) -> CliResult {
    match cmd {
        RouterCmd::List(out) => {
            let items = app.client.list(ROUTER, &[]).await?;
            let nets = network_names(app, out).await;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("Status", "status"),
                Col::with("State", "admin_state_up", |v| {
                    if v.as_bool().unwrap_or(false) {
                        "UP".into()
                    } else {
                        "DOWN".into()
                    }
                }),
                Col::with("External Gateway", "external_gateway_info", move |g| {
                    gateway_text(g, &nets)
                }),
                Col::new("Project", "project_id"),
            ];
            print_list(&items, &cols, out)
        }
        RouterCmd::Show(a) => {
            let r = app.client.find(ROUTER, &a.name).await?;
            print_show(&with_interfaces(app, r).await?, &a.output)
        }
        RouterCmd::Create(a) => {
            let mut r = json!({"name": a.name, "admin_state_up": !a.disable});
            if let Some(d) = &a.description {
                r["description"] = json!(d);
            }
            if let Some(n) = &a.external_network {
                r["external_gateway_info"] = gateway(app, n, a.no_snat).await?;
            }
            let created = app
                .client
                .create(ROUTER, json!({ "router": r }), Some(&new_key()))
                .await?;
            print_show(&created, &a.output)
        }
        RouterCmd::Delete(a) => delete_all(app, ROUTER, &a.names).await,
        RouterCmd::Set(a) => {
            let id = app.client.find_id(ROUTER, &a.router).await?;
            let mut r = serde_json::Map::new();
            if let Some(n) = &a.external_network {
                r.insert(
                    "external_gateway_info".into(),
                    gateway(app, n, a.no_snat).await?,
                );
            }
            if a.no_external_network {
                r.insert("external_gateway_info".into(), Value::Null);
            }
            if let Some(n) = &a.name {
                r.insert("name".into(), json!(n));
            }
            if let Some(d) = &a.description {
                r.insert("description".into(), json!(d));
            }
            if r.is_empty() {
                return Err(CliError::usage(
                    "router set: nothing to change (--external-network, \
                     --no-external-network, --name, --description)",
                ));
            }
            let updated = app
                .client
                .update(ROUTER, &id, json!({ "router": r }))
                .await?;
            print_show(&updated, &a.output)
        }
        RouterCmd::AddSubnet(a) | RouterCmd::RemoveSubnet(a) => {
            let router = app.client.find_id(ROUTER, &a.router).await?;
            let subnet = app.client.find_id(SUBNET, &a.subnet).await?;
            let answer = if matches!(cmd, RouterCmd::AddSubnet(_)) {
                app.client
                    .add_router_interface(&router, Interface::Subnet(&subnet))
                    .await?
            } else {
                app.client
                    .remove_router_interface(&router, Interface::Subnet(&subnet))
                    .await?
            };
            print_show(&answer, &a.output)
        }
    }
}

/// A gateway for a table: `network (address, ...)`, `SNAT off` when off.
fn gateway_text(g: &Value, nets: &HashMap<String, String>) -> String {
    if g.is_null() {
        return String::new();
    }
    let ips: Vec<&str> = g["external_fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f.text("ip_address"))
        .collect();
    let mut text = named(nets, g.text("network_id"));
    if !ips.is_empty() {
        text.push_str(&format!(" ({})", ips.join(", ")));
    }
    if g["enable_snat"] == json!(false) {
        text.push_str(", SNAT off");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_read_well() {
        let nets = HashMap::from([("n1".to_owned(), "public".to_owned())]);
        let g = json!({"network_id": "n1", "enable_snat": false,
                       "external_fixed_ips": [{"ip_address": "203.0.113.2"}]});
        assert_eq!(gateway_text(&g, &nets), "public (203.0.113.2), SNAT off");
        assert_eq!(gateway_text(&Value::Null, &nets), "");
        assert_eq!(named(&nets, "n2"), "n2");
    }
}
