//! `cloud floating-ip ...`: addresses of external networks that reach a
//! server through a router; and what `cloud boot --floating-ip` does
//! once its server is ACTIVE.

use crate::app::App;
use crate::commands::compute::new_key;
use crate::commands::routers::{named, network_names};
use crate::exit::{CliError, CliResult, TIMEOUT};
use crate::output::{Col, OutputArgs, print_list, print_show};
use clap::{Args, Subcommand};
use cloud_client::{FLOATING_IP, NETWORK, PORT, ROUTER, SERVER, ValueExt};
use serde_json::{Value, json};
use std::time::Duration;

/// How often waits for a floating address poll.
const POLL: Duration = Duration::from_millis(500);

/// `cloud floating-ip ...`.
#[derive(Debug, Subcommand)]
pub enum FloatingIpCmd {
    /// List floating IPs.
    #[command(after_help = "Examples:
  cloud floating-ip list
  cloud floating-ip list --network public --status DOWN -f value -c floating_ip_address")]
    List(FloatingIpList),
    /// Show a floating IP (by address or id).
    #[command(after_help = "Example:\n  cloud floating-ip show 203.0.113.3")]
    Show(FloatingIpOne),
    /// Allocate a floating IP on an external network.
    #[command(after_help = "Examples:
  cloud floating-ip create public
  cloud floating-ip create public --port web-port
  cloud floating-ip create public --address 203.0.113.50   (the network's owner only)")]
    Create(FloatingIpCreate),
    /// Release floating IPs (by address or id).
    #[command(after_help = "Example:\n  cloud floating-ip delete 203.0.113.3")]
    Delete(FloatingIpNames),
    /// Associate a floating IP with a server (its first port) or a port.
    #[command(after_help = "Examples:
  cloud floating-ip associate 203.0.113.3 web-1
  cloud floating-ip associate 203.0.113.3 web-1 --fixed-ip 10.0.1.20
  cloud floating-ip associate 203.0.113.3 --port vip")]
    Associate(FloatingIpAssociate),
    /// Disassociate a floating IP (it stays yours).
    #[command(after_help = "Example:\n  cloud floating-ip disassociate 203.0.113.3")]
    Disassociate(FloatingIpOne),
}

/// `cloud floating-ip list`.
#[derive(Debug, Args)]
pub struct FloatingIpList {
    /// Only those of this external network.
    #[arg(long)]
    pub network: Option<String>,
    /// Only the one of this port.
    #[arg(long)]
    pub port: Option<String>,
    /// Only those reaching their port through this router.
    #[arg(long)]
    pub router: Option<String>,
    /// Only ACTIVE (associated) or DOWN ones.
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One floating IP by address or id.
#[derive(Debug, Args)]
pub struct FloatingIpOne {
    /// Address or id.
    pub floating_ip: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Floating IPs by address or id.
#[derive(Debug, Args)]
pub struct FloatingIpNames {
    /// Addresses or ids.
    #[arg(required = true)]
    pub floating_ips: Vec<String>,
}

/// `cloud floating-ip create`.
#[derive(Debug, Args)]
pub struct FloatingIpCreate {
    /// External network (name or id).
    pub network: String,
    /// This address (the network's owner, admins, only).
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
    /// Associate it with this port (name or id).
    #[arg(long)]
    pub port: Option<String>,
    /// With --port: the port's fixed address to use.
    #[arg(long, value_name = "IP", requires = "port")]
    pub fixed_ip: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud floating-ip associate`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["server", "port"]))]
pub struct FloatingIpAssociate {
    /// Floating IP address or id.
    pub floating_ip: String,
    /// Server name or id (its first port, or the one with --fixed-ip).
    pub server: Option<String>,
    /// A port (name or id) instead of a server.
    #[arg(long)]
    pub port: Option<String>,
    /// The fixed address to map to (picks the server's port holding it).
    #[arg(long, value_name = "IP")]
    pub fixed_ip: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Whether a network gives floating IPs.
pub fn is_external(net: &Value) -> bool {
    net["router:external"].as_bool().unwrap_or(false)
}

/// The external network `name` names; not external is a usage error.
pub async fn external_network(app: &App, name: &str) -> CliResult<Value> {
    let net = app.client.find(NETWORK, name).await?;
    if !is_external(&net) {
        return Err(CliError::usage(format!(
            "network {name} is not external (router:external): floating IPs come from \
             external networks"
        )));
    }
    Ok(net)
}

/// Runs a floating IP command.
pub async fn floating_ip(app: &App, cmd: &FloatingIpCmd) -> CliResult {
    match cmd {
        FloatingIpCmd::List(a) => {
            let (mut q, mut held) = (Vec::new(), Vec::new());
            if let Some(n) = &a.network {
                held.push(("floating_network_id", app.client.find_id(NETWORK, n).await?));
            }
            if let Some(p) = &a.port {
                held.push(("port_id", app.client.find_id(PORT, p).await?));
            }
            if let Some(r) = &a.router {
                held.push(("router_id", app.client.find_id(ROUTER, r).await?));
            }
            if let Some(s) = &a.status {
                held.push(("status", s.to_ascii_uppercase()));
            }
            q.extend(held.iter().map(|(k, v)| (*k, v.as_str())));
            let items = app.client.list(FLOATING_IP, &q).await?;
            let nets = network_names(app, &a.output).await;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Floating IP Address", "floating_ip_address"),
                Col::new("Fixed IP Address", "fixed_ip_address"),
                Col::new("Port", "port_id"),
                Col::with("Floating Network", "floating_network_id", move |v| {
                    named(&nets, v.as_str().unwrap_or_default())
                }),
                Col::new("Status", "status"),
            ];
            print_list(&items, &cols, &a.output)
        }
        FloatingIpCmd::Show(a) => print_show(
            &app.client.find(FLOATING_IP, &a.floating_ip).await?,
            &a.output,
        ),
        FloatingIpCmd::Create(a) => {
            let net = external_network(app, &a.network).await?;
            let mut f = json!({ "floating_network_id": net.id_str() });
            if let Some(ip) = &a.address {
                f["floating_ip_address"] = json!(ip);
            }
            if let Some(p) = &a.port {
                f["port_id"] = json!(app.client.find_id(PORT, p).await?);
            }
            if let Some(ip) = &a.fixed_ip {
                f["fixed_ip_address"] = json!(ip);
            }
            if let Some(d) = &a.description {
                f["description"] = json!(d);
            }
            let created = app
                .client
                .create(FLOATING_IP, json!({ "floatingip": f }), Some(&new_key()))
                .await?;
            print_show(&created, &a.output)
        }
        FloatingIpCmd::Delete(a) => {
            crate::commands::delete_all(app, FLOATING_IP, &a.floating_ips).await
        }
        FloatingIpCmd::Associate(a) => {
            let fip = app.client.find_id(FLOATING_IP, &a.floating_ip).await?;
            let port = match (&a.server, &a.port) {
                (_, Some(p)) => app.client.find_id(PORT, p).await?,
                (Some(s), None) => {
                    let server = app.client.find_id(SERVER, s).await?;
                    app.client
                        .server_port_for(&server, a.fixed_ip.as_deref())
                        .await
                        .map_err(|e| {
                            CliError::new(crate::exit::NOT_FOUND, format!("server {s}: {e}"))
                        })?
                        .id_str()
                }
                (None, None) => return Err(CliError::usage("give a SERVER or --port")),
            };
            let updated = app
                .client
                .associate_floating_ip(&fip, &port, a.fixed_ip.as_deref())
                .await?;
            print_show(&updated, &a.output)
        }
        FloatingIpCmd::Disassociate(a) => {
            let fip = app.client.find_id(FLOATING_IP, &a.floating_ip).await?;
            let updated = app.client.disassociate_floating_ip(&fip).await?;
            print_show(&updated, &a.output)
        }
    }
}

/// Allocates a floating IP on external network `network_id` for the first
/// port of ACTIVE server `server_id`, associated at once (so a refusal,
/// such as no router from the server's subnet to the network, allocates
/// nothing); with `wait`, waits until the server's addresses show it.
/// Returns the address. `key` makes a retried boot reuse the first one.
pub async fn attach_to_server(
    app: &App,
    server_id: &str,
    label: &str,
    network: &Value,
    key: &str,
    wait: bool,
) -> CliResult<String> {
    let net_name = network.text("name");
    let refused = |e: cloud_client::Error| {
        let c = CliError::from(e);
        CliError::new(
            c.code,
            format!(
                "server {label} ({server_id}) is ACTIVE, but no floating IP could be allocated \
                 on {net_name}: {}",
                c.message
            ),
        )
    };
    let port = app
        .client
        .server_port_for(server_id, None)
        .await
        .map_err(refused)?;
    let body = json!({"floatingip": {
        "floating_network_id": network.id_str(), "port_id": port.id_str(),
    }});
    let fip = app
        .client
        .create(FLOATING_IP, body, Some(&derived_key(key)))
        .await
        .map_err(refused)?;
    let address = fip.text("floating_ip_address").to_owned();
    eprintln!("{label}: floating IP {address} on {net_name}");
    if wait {
        let shown = app
            .client
            .wait_for_floating_address(server_id, &address, POLL, app.wait_timeout)
            .await?;
        if shown.is_none() {
            return Err(CliError::new(
                TIMEOUT,
                format!(
                    "server {label} ({server_id}) does not show floating IP {address} after {} s \
                     (--wait-timeout)",
                    app.wait_timeout.as_secs()
                ),
            ));
        }
    }
    Ok(address)
}

/// The idempotency key of a boot's floating IP, derived from the boot's
/// (keys are per request path and at most 255 characters).
fn derived_key(key: &str) -> String {
    let k = format!("{key}-floating-ip");
    if k.len() <= 255 {
        return k;
    }
    use sha2::Digest;
    format!("{}-floating-ip", hex::encode(sha2::Sha256::digest(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_stay_valid() {
        assert_eq!(derived_key("tok"), "tok-floating-ip");
        let long = derived_key(&"x".repeat(255));
        assert!(
            long.len() <= 255 && long.ends_with("-floating-ip"),
            "{long}"
        );
        assert!(!is_external(&json!({"router:external": false})));
    }
}
