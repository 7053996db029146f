//! Server commands with nova's syntax: `boot`, `list`, `show`, `delete`,
//! `stop`, `start`, `reboot`, `console-log`, `actions`.

use crate::app::App;
use crate::commands::floating_ips;
use crate::exit::{CliError, CliResult};
use crate::output::{Col, OutputArgs, print_list, print_show};
use base64::Engine;
use clap::Args;
use cloud_client::{FLAVOR, IMAGE, NETWORK, SERVER, SERVER_GROUP, ValueExt};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

/// `cloud boot`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud boot web-1 --flavor m1.small --image cirros --nic net-id=app-net --wait
  cloud boot db --flavor m1.medium --image cirros \\
      --nic net-id=app-net,v4-fixed-ip=10.0.1.20 --key-name deploy \\
      --security-group web --hint group=spread --user-data init.sh
  cloud boot batch --flavor m1.tiny --image cirros --nic none --min-count 3 --max-count 3
  cloud boot web-2 --flavor m1.tiny --image cirros --nic net-id=app-net --floating-ip public --wait")]
pub struct BootArgs {
    /// Server name.
    pub name: String,
    /// Flavor name or id.
    #[arg(long)]
    pub flavor: String,
    /// Image name or id.
    #[arg(long)]
    pub image: String,
    /// A NIC: `net-id=NET[,v4-fixed-ip=IP]`, `port-id=PORT`, `auto` or `none`
    /// (repeatable; NET and PORT by name or id).
    #[arg(long = "nic", value_name = "SPEC")]
    pub nics: Vec<String>,
    /// Keypair to inject.
    #[arg(long)]
    pub key_name: Option<String>,
    /// File passed to the server as user data (cloud-init).
    #[arg(long, value_name = "FILE")]
    pub user_data: Option<PathBuf>,
    /// Security group name or id (repeatable).
    #[arg(long = "security-group", value_name = "GROUP")]
    pub security_groups: Vec<String>,
    /// Availability zone.
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// Scheduler hint `key=value` (repeatable); `group=` takes a server group name or id.
    #[arg(long = "hint", value_name = "KEY=VALUE")]
    pub hints: Vec<String>,
    /// Metadata `key=value` (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Boot at least this many.
    #[arg(long)]
    pub min_count: Option<u32>,
    /// Boot at most this many.
    #[arg(long)]
    pub max_count: Option<u32>,
    /// Wait until the server is ACTIVE (exit 6 with the fault on ERROR).
    #[arg(long)]
    pub wait: bool,
    /// Once ACTIVE (always waited for), allocate a floating IP on this
    /// external network for the server's first port; shown as
    /// `floating_ip`. With --wait, also wait until its addresses show it.
    #[arg(long, value_name = "NETWORK")]
    pub floating_ip: Option<String>,
    /// Idempotency key: retrying with the same key never boots twice
    /// (default: a fresh key per command).
    #[arg(long)]
    pub client_token: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `key=value` pairs.
pub fn pairs(items: &[String], what: &str) -> CliResult<Vec<(String, String)>> {
    items
        .iter()
        .map(|i| {
            i.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::usage(format!("{what} '{i}' is not KEY=VALUE")))
        })
        .collect()
}

async fn nic(app: &App, spec: &str) -> CliResult<Option<Value>> {
    if spec == "none" || spec == "auto" {
        return Ok(None);
    }
    let mut out = Map::new();
    for (k, v) in pairs(
        &spec.split(',').map(str::to_owned).collect::<Vec<_>>(),
        "--nic",
    )? {
        match k.as_str() {
            "net-id" | "net-name" => {
                out.insert("uuid".into(), json!(app.client.find_id(NETWORK, &v).await?));
            }
            "v4-fixed-ip" | "v6-fixed-ip" => {
                out.insert("fixed_ip".into(), json!(v));
            }
            "port-id" => {
                out.insert(
                    "port".into(),
                    json!(app.client.find_id(cloud_client::PORT, &v).await?),
                );
            }
            other => {
                return Err(CliError::usage(format!(
                    "--nic: unknown key '{other}' (net-id, net-name, v4-fixed-ip, v6-fixed-ip, port-id)"
                )));
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

/// Boots a server.
pub async fn boot(app: &App, a: &BootArgs) -> CliResult {
    let batch = a.min_count.unwrap_or(1).max(a.max_count.unwrap_or(1)) > 1;
    let fip_net = match &a.floating_ip {
        Some(_) if batch => {
            return Err(CliError::usage("--floating-ip boots one server at a time"));
        }
        Some(_) if a.nics.iter().any(|n| n == "none") => {
            return Err(CliError::usage(
                "--floating-ip needs a NIC (not --nic none)",
            ));
        }
        Some(n) => Some(floating_ips::external_network(app, n).await?),
        None => None,
    };
    let flavor = app.client.find(FLAVOR, &a.flavor).await?;
    let image = app.client.find_id(IMAGE, &a.image).await?;
    let mut server = json!({
        "name": a.name, "flavorRef": flavor.id_str(), "imageRef": image,
    });
    match a.nics.as_slice() {
        [] => {}
        [only] if only == "none" || only == "auto" => server["networks"] = json!(only),
        specs => {
            let mut nets = Vec::new();
            for s in specs {
                nets.extend(nic(app, s).await?);
            }
            server["networks"] = Value::Array(nets);
        }
    }
    if let Some(k) = &a.key_name {
        server["key_name"] = json!(k);
    }
    if let Some(f) = &a.user_data {
        let data = std::fs::read(f)
            .map_err(|e| CliError::usage(format!("--user-data {}: {e}", f.display())))?;
        server["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    if !a.security_groups.is_empty() {
        server["security_groups"] = a
            .security_groups
            .iter()
            .map(|n| json!({ "name": n }))
            .collect();
    }
    if let Some(z) = &a.availability_zone {
        server["availability_zone"] = json!(z);
    }
    if !a.meta.is_empty() {
        server["metadata"] = pairs(&a.meta, "--meta")?
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect::<Map<_, _>>()
            .into();
    }
    if let Some(n) = a.min_count {
        server["min_count"] = json!(n);
    }
    if let Some(n) = a.max_count {
        server["max_count"] = json!(n);
    }
    let mut body = json!({ "server": server });
    if !a.hints.is_empty() {
        let mut hints = Map::new();
        for (k, v) in pairs(&a.hints, "--hint")? {
            let v = if k == "group" {
                app.client.find_id(SERVER_GROUP, &v).await?
            } else {
                v
            };
            hints.insert(k, json!(v));
        }
        body["os:scheduler_hints"] = Value::Object(hints);
    }
    let key = a
        .client_token
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if batch {
        return boot_batch(app, a, body, &key).await;
    }
    let created = app.client.create(SERVER, body, Some(&key)).await?;
    let id = created.id_str();
    let shown = if a.wait || fip_net.is_some() {
        app.wait_server(&id, &a.name, &["ACTIVE"]).await?
    } else {
        app.client.get(SERVER, &id).await?
    };
    let Some(net) = fip_net else {
        return print_show(&shown, &a.output);
    };
    let address = floating_ips::attach_to_server(app, &id, &a.name, &net, &key, a.wait).await?;
    let mut shown = app.client.get(SERVER, &id).await?;
    shown["floating_ip"] = json!(address);
    print_show(&shown, &a.output)
}

/// A multi-create: lists every server of the batch, after waiting for
/// each of them with `--wait` (the exit status is the first failure's).
async fn boot_batch(app: &App, a: &BootArgs, body: Value, key: &str) -> CliResult {
    let mut servers = app.client.create_servers(body, Some(key)).await?;
    if a.wait {
        let mut failed = None;
        for s in servers.iter_mut() {
            let (id, name) = (s.id_str(), s.text("name").to_owned());
            match app.wait_server(&id, &name, &["ACTIVE"]).await {
                Ok(shown) => *s = shown,
                // The first failure is the exit status (printed by main);
                // later ones are printed here so none goes unsaid.
                Err(e) if failed.is_none() => failed = Some(e),
                Err(e) => eprintln!("{e}"),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    let cols = vec![
        Col::new("ID", "id"),
        Col::new("Name", "name"),
        Col::new("Status", "status"),
        Col::new("Networks", "addresses"),
    ];
    print_list(&servers, &cols, &a.output)
}

/// `cloud list`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud list
  cloud list --status error -f json
  cloud list -f value -c id -c name")]
pub struct ListArgs {
    /// Only servers whose name matches this regular expression.
    #[arg(long)]
    pub name: Option<String>,
    /// Only servers with this status (ACTIVE, ERROR, ...).
    #[arg(long)]
    pub status: Option<String>,
    /// Every project's servers (admin).
    #[arg(long)]
    pub all_projects: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

async fn name_map(app: &App, kind: cloud_client::Kind) -> HashMap<String, String> {
    match app.client.list(kind, &[]).await {
        Ok(items) => items
            .iter()
            .map(|i| (i.id_str(), i.text("name").to_owned()))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

/// Lists servers.
pub async fn list(app: &App, a: &ListArgs) -> CliResult {
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(n) = &a.name {
        q.push(("name", n));
    }
    if let Some(s) = &a.status {
        q.push(("status", s));
    }
    if a.all_projects {
        q.push(("all_tenants", "True"));
    }
    let servers = app.client.list(SERVER, &q).await?;
    let structured = matches!(
        a.output.format,
        crate::output::Format::Json | crate::output::Format::Yaml
    );
    let (flavors, images) = if structured || servers.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        (name_map(app, FLAVOR).await, name_map(app, IMAGE).await)
    };
    let named = |map: HashMap<String, String>| {
        move |v: &Value| {
            let id = v.id_str();
            map.get(&id)
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or(id)
        }
    };
    let cols = vec![
        Col::new("ID", "id"),
        Col::new("Name", "name"),
        Col::new("Status", "status"),
        Col::new("Networks", "addresses"),
        Col::with("Image", "image", named(images)),
        Col::with("Flavor", "flavor", named(flavors)),
    ];
    print_list(&servers, &cols, &a.output)
}

/// A server named by name or id, and output options.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud show web-1
  cloud show web-1 -f json
  cloud show web-1 -f value -c status")]
pub struct ShowArgs {
    /// Server name or id.
    pub server: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Shows a server.
pub async fn show(app: &App, a: &ShowArgs) -> CliResult {
    let s = app.client.find(SERVER, &a.server).await?;
    print_show(&s, &a.output)
}

/// `cloud delete`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud delete web-1
  cloud delete web-1 web-2 --wait")]
pub struct DeleteArgs {
    /// Server names or ids.
    #[arg(required = true)]
    pub servers: Vec<String>,
    /// Wait until they are gone.
    #[arg(long)]
    pub wait: bool,
}

/// Deletes servers.
pub async fn delete(app: &App, a: &DeleteArgs) -> CliResult {
    let mut found = Vec::new();
    for s in &a.servers {
        found.push((s.clone(), app.client.find(SERVER, s).await?.id_str()));
    }
    for (_, id) in &found {
        app.client.delete(SERVER, id).await?;
    }
    if a.wait {
        for (label, id) in &found {
            app.wait_server(id, label, &["DELETED"]).await?;
        }
    }
    Ok(())
}

/// `cloud stop` / `cloud start`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud stop web-1 --wait
  cloud start web-1")]
pub struct PowerArgs {
    /// Server name or id.
    pub server: String,
    /// Wait until the server is SHUTOFF (stop) or ACTIVE (start).
    #[arg(long)]
    pub wait: bool,
}

/// Stops (`start = false`) or starts a server.
pub async fn power(app: &App, a: &PowerArgs, start: bool) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let (action, target) = if start {
        ("os-start", "ACTIVE")
    } else {
        ("os-stop", "SHUTOFF")
    };
    app.client
        .server_action(&id, json!({ action: null }))
        .await?;
    if a.wait {
        app.wait_server(&id, &a.server, &[target]).await?;
    }
    Ok(())
}

/// `cloud reboot`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud reboot web-1
  cloud reboot web-1 --hard --wait")]
pub struct RebootArgs {
    /// Server name or id.
    pub server: String,
    /// Power-cycle instead of asking the guest.
    #[arg(long)]
    pub hard: bool,
    /// Wait until the server is ACTIVE again.
    #[arg(long)]
    pub wait: bool,
}

/// Reboots a server.
pub async fn reboot(app: &App, a: &RebootArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let kind = if a.hard { "HARD" } else { "SOFT" };
    app.client
        .server_action(&id, json!({"reboot": {"type": kind}}))
        .await?;
    if a.wait {
        // Let the reboot start before waiting for ACTIVE again.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        app.wait_server(&id, &a.server, &["ACTIVE"]).await?;
    }
    Ok(())
}

/// `cloud console-log`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud console-log web-1
  cloud console-log web-1 --lines 20")]
pub struct ConsoleArgs {
    /// Server name or id.
    pub server: String,
    /// Only the last N lines.
    #[arg(long)]
    pub lines: Option<u32>,
}

/// Prints the console log.
pub async fn console_log(app: &App, a: &ConsoleArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let out = app.client.console_log(&id, a.lines).await?;
    print!("{out}");
    if !out.ends_with('\n') && !out.is_empty() {
        println!();
    }
    Ok(())
}

/// `cloud actions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud actions web-1
  cloud actions web-1 req-0b6c...   (one action with its events)")]
pub struct ActionsArgs {
    /// Server name or id.
    pub server: String,
    /// Show this action (request id) with its events.
    pub request_id: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Lists a server's actions, or shows one.
pub async fn actions(app: &App, a: &ActionsArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    match &a.request_id {
        Some(r) => print_show(&app.client.instance_action(&id, r).await?, &a.output),
        None => {
            let list = app.client.instance_actions(&id).await?;
            let cols = vec![
                Col::new("Action", "action"),
                Col::new("Request ID", "request_id"),
                Col::new("Start Time", "start_time"),
                Col::new("Message", "message"),
            ];
            print_list(&list, &cols, &a.output)
        }
    }
}
