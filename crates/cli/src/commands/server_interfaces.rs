//! `cloud interface add|remove`: attach a port, or a new port on a
//! network, to a server (Nova's os-interface; a running guest gets the
//! NIC at once), and detach one. `cloud interfaces` lists them (in
//! `server_states`).

use crate::app::App;
use crate::exit::CliResult;
use crate::output::{OutputArgs, print_show};
use clap::{Args, Subcommand};
use cloud_client::{Method, NETWORK, PORT, Request, SERVER, Service, ValueExt};
use serde_json::{Value, json};

/// `cloud interface`.
#[derive(Debug, Subcommand)]
pub enum InterfaceCmd {
    /// Attach a port (--port) or a new port on a network (--network) to a
    /// server.
    Add(InterfaceAddArgs),
    /// Detach a port from a server (a port made by `add --network` is
    /// deleted, your own port is kept, unbound).
    Remove(InterfaceRemoveArgs),
}

/// `cloud interface add`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud interface add web-1 --network backend-net
  cloud interface add web-1 --network backend-net --fixed-ip 10.0.2.50
  cloud interface add web-1 --port my-port

The server must be ACTIVE, PAUSED or SHUTOFF with no task (exit 5 otherwise,
and when the port is in use). Prints the attachment.")]
pub struct InterfaceAddArgs {
    /// Server name or id.
    pub server: String,
    /// A port of yours (name or id), not used by another server.
    #[arg(long, conflicts_with_all = ["network", "fixed_ip"], required_unless_present = "network")]
    pub port: Option<String>,
    /// A network (name or id): a new port on it is made for the server.
    #[arg(long)]
    pub network: Option<String>,
    /// The new port's address on the network.
    #[arg(long, requires = "network")]
    pub fixed_ip: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud interface remove`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud interface remove web-1 3f1c...   # the port id, as `cloud interfaces web-1` lists it")]
pub struct InterfaceRemoveArgs {
    /// Server name or id.
    pub server: String,
    /// The port (name or id).
    pub port: String,
}

/// Runs `cloud interface ...`.
pub async fn interface(app: &App, cmd: &InterfaceCmd) -> CliResult {
    match cmd {
        InterfaceCmd::Add(a) => add(app, a).await,
        InterfaceCmd::Remove(a) => remove(app, a).await,
    }
}

/// Attaches and prints the attachment.
async fn add(app: &App, a: &InterfaceAddArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let mut attachment = json!({});
    if let Some(port) = &a.port {
        attachment["port_id"] = json!(app.client.find_id(PORT, port).await?);
    }
    if let Some(network) = &a.network {
        attachment["net_id"] = json!(app.client.find_id(NETWORK, network).await?);
    }
    if let Some(ip) = &a.fixed_ip {
        attachment["fixed_ips"] = json!([{ "ip_address": ip }]);
    }
    let r = app
        .client
        .send(
            Request::new(
                Method::POST,
                Service::Compute,
                format!("servers/{id}/os-interface"),
            )
            .json(json!({ "interfaceAttachment": attachment })),
        )
        .await?;
    let view = r.json()?["interfaceAttachment"].clone();
    print_show(&flat(&view), &a.output)
}

/// Detaches.
async fn remove(app: &App, a: &InterfaceRemoveArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let port = app.client.find_id(PORT, &a.port).await?;
    app.client
        .send(Request::new(
            Method::DELETE,
            Service::Compute,
            format!("servers/{id}/os-interface/{port}"),
        ))
        .await?;
    Ok(())
}

/// The attachment with its addresses as one comma-separated field.
fn flat(view: &Value) -> Value {
    let mut v = view.clone();
    let ips: Vec<&str> = view["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["ip_address"].as_str())
        .collect();
    v["fixed_ips"] = json!(ips.join(", "));
    v
}
