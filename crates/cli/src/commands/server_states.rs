//! `cloud pause|unpause|suspend|resume`, `cloud lock|unlock`, `cloud dump`
//! and `cloud interfaces`: the server actions that freeze a server, protect
//! it or look inside it, beside stop/start (in `servers`).

use crate::app::App;
use crate::exit::CliResult;
use crate::output::{Col, OutputArgs, print_list};
use clap::Args;
use cloud_client::{Method, Request, SERVER, Service, ValueExt};
use serde_json::{Value, json};

/// `cloud pause|unpause|suspend|resume`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud pause web-1 --wait        # frozen in memory: PAUSED
  cloud unpause web-1 --wait
  cloud suspend web-1 --wait      # memory saved to disk: SUSPENDED
  cloud resume web-1 --wait")]
pub struct FreezeArgs {
    /// Server name or id.
    pub server: String,
    /// Wait until the server is PAUSED, SUSPENDED or ACTIVE again.
    #[arg(long)]
    pub wait: bool,
}

/// Which of the four freeze actions.
#[derive(Clone, Copy, Debug)]
pub enum Freeze {
    /// ACTIVE -> PAUSED.
    Pause,
    /// PAUSED -> ACTIVE.
    Unpause,
    /// ACTIVE -> SUSPENDED.
    Suspend,
    /// SUSPENDED -> ACTIVE.
    Resume,
}

impl Freeze {
    /// The API action and the status it ends in.
    fn action(self) -> (&'static str, &'static str) {
        match self {
            Freeze::Pause => ("pause", "PAUSED"),
            Freeze::Unpause => ("unpause", "ACTIVE"),
            Freeze::Suspend => ("suspend", "SUSPENDED"),
            Freeze::Resume => ("resume", "ACTIVE"),
        }
    }
}

/// Pauses, unpauses, suspends or resumes a server.
pub async fn freeze(app: &App, a: &FreezeArgs, which: Freeze) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let (action, target) = which.action();
    app.client
        .server_action(&id, json!({ action: null }))
        .await?;
    if a.wait {
        app.wait_server(&id, &a.server, &[target]).await?;
    }
    Ok(())
}

/// `cloud lock`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud lock db-1 --reason 'primary database'
  cloud unlock db-1

A locked server refuses stop, start, reboot, pause, suspend and delete from
everyone but admins (exit 5, naming the lock).")]
pub struct LockArgs {
    /// Server name or id.
    pub server: String,
    /// Why, shown to whoever is refused.
    #[arg(long)]
    pub reason: Option<String>,
}

/// Locks a server.
pub async fn lock(app: &App, a: &LockArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let args = match &a.reason {
        Some(reason) => json!({ "locked_reason": reason }),
        None => Value::Null,
    };
    app.client
        .server_action(&id, json!({ "lock": args }))
        .await?;
    Ok(())
}

/// `cloud unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Server name or id.
    pub server: String,
}

/// Unlocks a server.
pub async fn unlock(app: &App, a: &UnlockArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    app.client
        .server_action(&id, json!({ "unlock": null }))
        .await?;
    Ok(())
}

/// `cloud dump`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud dump web-1      # the guest gets an NMI (a kernel set up for kdump writes a crash dump)

Only an ACTIVE or PAUSED server can be sent one (exit 5 otherwise); a host
whose hypervisor cannot send NMIs refuses it (exit 2).")]
pub struct DumpArgs {
    /// Server name or id.
    pub server: String,
}

/// Asks the server's host to send its guest a non-maskable interrupt
/// (Nova's trigger_crash_dump), so a hung guest can be made to dump.
pub async fn dump(app: &App, a: &DumpArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    app.client
        .server_action(&id, json!({ "trigger_crash_dump": null }))
        .await?;
    Ok(())
}

/// `cloud interfaces`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud interfaces web-1
  cloud interfaces web-1 -f value -c 'Port ID'")]
pub struct InterfacesArgs {
    /// Server name or id.
    pub server: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Lists a server's network interfaces (Nova's os-interface): which port
/// on which network, with its MAC, addresses and state.
pub async fn interfaces(app: &App, a: &InterfacesArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let r = app
        .client
        .send(Request::new(
            Method::GET,
            Service::Compute,
            format!("servers/{id}/os-interface"),
        ))
        .await?;
    let list = r.json()?["interfaceAttachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cols = vec![
        Col::new("Port ID", "port_id"),
        Col::new("Network ID", "net_id"),
        Col::new("MAC Address", "mac_addr"),
        Col::with("Fixed IPs", "fixed_ips", fixed_ips),
        Col::new("Port State", "port_state"),
    ];
    print_list(&list, &cols, &a.output)
}

/// The addresses of an interface's fixed_ips, comma separated.
fn fixed_ips(v: &Value) -> String {
    v.as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["ip_address"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
