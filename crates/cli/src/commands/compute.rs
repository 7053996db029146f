//! Compute resources: flavors, keypairs, server groups, quotas,
//! hypervisors and services.

use crate::app::App;
use crate::commands::{NamesArg, ShowOne, delete_all, show_one};
use crate::exit::{CliError, CliResult};
use crate::output::{Col, OutputArgs, print_list, print_show};
use clap::{Args, Subcommand};
use cloud_client::{
    COMPUTE_SERVICE, FLAVOR, HYPERVISOR, KEYPAIR, Method, Request, SERVER_GROUP, Service, ValueExt,
};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// `cloud flavor ...`.
#[derive(Debug, Subcommand)]
pub enum FlavorCmd {
    /// List flavors.
    #[command(after_help = "Example:\n  cloud flavor list -f value -c name")]
    List(OutputArgs),
    /// Show a flavor.
    #[command(after_help = "Example:\n  cloud flavor show m1.small")]
    Show(ShowOne),
    /// Create a flavor (admin).
    #[command(
        after_help = "Example:\n  cloud flavor create m1.large --vcpus 4 --ram 8192 --disk 80"
    )]
    Create(FlavorCreate),
    /// Delete flavors (admin).
    #[command(after_help = "Example:\n  cloud flavor delete m1.large")]
    Delete(NamesArg),
}

/// `cloud flavor create`.
#[derive(Debug, Args)]
pub struct FlavorCreate {
    /// Flavor name.
    pub name: String,
    /// vCPUs.
    #[arg(long)]
    pub vcpus: u32,
    /// Memory in MiB.
    #[arg(long)]
    pub ram: u64,
    /// Root disk in GiB.
    #[arg(long, default_value_t = 0)]
    pub disk: u64,
    /// Swap in MiB.
    #[arg(long, default_value_t = 0)]
    pub swap: u64,
    /// Ephemeral disk in GiB.
    #[arg(long, default_value_t = 0)]
    pub ephemeral: u64,
    /// Flavor id (default: generated).
    #[arg(long)]
    pub id: Option<String>,
    /// Only projects given access may use it.
    #[arg(long)]
    pub private: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a flavor command.
pub async fn flavor(app: &App, cmd: &FlavorCmd) -> CliResult {
    match cmd {
        FlavorCmd::List(out) => {
            let items = app.client.list(FLAVOR, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("RAM", "ram"),
                Col::new("Disk", "disk"),
                Col::new("VCPUs", "vcpus"),
                Col::new("Is Public", "os-flavor-access:is_public"),
            ];
            print_list(&items, &cols, out)
        }
        FlavorCmd::Show(a) => show_one(app, FLAVOR, a).await,
        FlavorCmd::Create(a) => {
            let body = json!({"flavor": {
                "name": a.name, "vcpus": a.vcpus, "ram": a.ram, "disk": a.disk,
                "swap": a.swap, "OS-FLV-EXT-DATA:ephemeral": a.ephemeral,
                "os-flavor-access:is_public": !a.private, "id": a.id,
            }});
            let f = app.client.create(FLAVOR, body, Some(&new_key())).await?;
            print_show(&f, &a.output)
        }
        FlavorCmd::Delete(a) => delete_all(app, FLAVOR, &a.names).await,
    }
}

/// A fresh idempotency key (one per create command).
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `cloud keypair ...`.
#[derive(Debug, Subcommand)]
pub enum KeypairCmd {
    /// List your keypairs.
    #[command(after_help = "Example:\n  cloud keypair list")]
    List(OutputArgs),
    /// Show a keypair.
    #[command(after_help = "Example:\n  cloud keypair show deploy")]
    Show(ShowOne),
    /// Import a public key, or have one generated.
    #[command(after_help = "Examples:
  cloud keypair create deploy --public-key ~/.ssh/id_ed25519.pub
  cloud keypair create temp --private-key temp.pem")]
    Create(KeypairCreate),
    /// Delete keypairs.
    #[command(after_help = "Example:\n  cloud keypair delete deploy")]
    Delete(NamesArg),
}

/// `cloud keypair create`.
#[derive(Debug, Args)]
pub struct KeypairCreate {
    /// Keypair name.
    pub name: String,
    /// Public key file to import.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Where to save the generated private key (mode 0600).
    #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
    pub private_key: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a keypair command.
pub async fn keypair(app: &App, cmd: &KeypairCmd) -> CliResult {
    match cmd {
        KeypairCmd::List(out) => {
            let items = app.client.list(KEYPAIR, &[]).await?;
            let cols = vec![
                Col::new("Name", "name"),
                Col::new("Fingerprint", "fingerprint"),
            ];
            print_list(&items, &cols, out)
        }
        KeypairCmd::Show(a) => {
            let kp = app.client.get(KEYPAIR, &a.name).await?;
            print_show(&kp, &a.output)
        }
        KeypairCmd::Create(a) => {
            let mut kp = json!({ "name": a.name });
            if let Some(f) = &a.public_key {
                let key = std::fs::read_to_string(f)
                    .map_err(|e| CliError::usage(format!("--public-key {}: {e}", f.display())))?;
                kp["public_key"] = json!(key.trim());
            }
            let mut created = app
                .client
                .create(KEYPAIR, json!({ "keypair": kp }), Some(&new_key()))
                .await?;
            if let (Some(path), Some(private)) = (&a.private_key, created["private_key"].as_str()) {
                write_private(path, private)?;
            }
            if let (Some(o), Some(_)) = (created.as_object_mut(), &a.private_key) {
                o.remove("private_key");
            }
            print_show(&created, &a.output)
        }
        KeypairCmd::Delete(a) => {
            for n in &a.names {
                app.client.delete(KEYPAIR, n).await?;
            }
            Ok(())
        }
    }
}

fn write_private(path: &PathBuf, key: &str) -> CliResult {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::usage(format!("--private-key {}: {e}", path.display())))?;
    f.write_all(key.as_bytes())
        .map_err(|e| CliError::failure(format!("{}: {e}", path.display())))
}

/// `cloud server-group ...`.
#[derive(Debug, Subcommand)]
pub enum ServerGroupCmd {
    /// List server groups.
    #[command(after_help = "Example:\n  cloud server-group list")]
    List(OutputArgs),
    /// Show a server group.
    #[command(after_help = "Example:\n  cloud server-group show spread")]
    Show(ShowOne),
    /// Create a server group.
    #[command(after_help = "Example:\n  cloud server-group create spread --policy anti-affinity")]
    Create(ServerGroupCreate),
    /// Delete server groups.
    #[command(after_help = "Example:\n  cloud server-group delete spread")]
    Delete(NamesArg),
}

/// `cloud server-group create`.
#[derive(Debug, Args)]
pub struct ServerGroupCreate {
    /// Group name.
    pub name: String,
    /// affinity, anti-affinity, soft-affinity or soft-anti-affinity.
    #[arg(long)]
    pub policy: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a server group command.
pub async fn server_group(app: &App, cmd: &ServerGroupCmd) -> CliResult {
    match cmd {
        ServerGroupCmd::List(out) => {
            let items = app.client.list(SERVER_GROUP, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("Policies", "policies"),
                Col::new("Members", "members"),
            ];
            print_list(&items, &cols, out)
        }
        ServerGroupCmd::Show(a) => show_one(app, SERVER_GROUP, a).await,
        ServerGroupCmd::Create(a) => {
            let body = json!({"server_group": {"name": a.name, "policies": [a.policy]}});
            let g = app
                .client
                .create(SERVER_GROUP, body, Some(&new_key()))
                .await?;
            print_show(&g, &a.output)
        }
        ServerGroupCmd::Delete(a) => delete_all(app, SERVER_GROUP, &a.names).await,
    }
}

/// `cloud quota ...`.
#[derive(Debug, Subcommand)]
pub enum QuotaCmd {
    /// Show a project's compute quotas (default: yours).
    #[command(after_help = "Examples:\n  cloud quota show\n  cloud quota show demo -f json")]
    Show(QuotaShow),
    /// Change a project's compute quotas (admin).
    #[command(after_help = "Example:\n  cloud quota set demo --instances 20 --cores 40")]
    Set(QuotaSet),
}

/// `cloud quota show`.
#[derive(Debug, Args)]
pub struct QuotaShow {
    /// Project name or id.
    pub project: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud quota set`.
#[derive(Debug, Args)]
pub struct QuotaSet {
    /// Project name or id.
    pub project: String,
    /// Servers.
    #[arg(long)]
    pub instances: Option<i64>,
    /// vCPUs.
    #[arg(long)]
    pub cores: Option<i64>,
    /// Memory (MiB).
    #[arg(long)]
    pub ram: Option<i64>,
    /// Keypairs.
    #[arg(long)]
    pub key_pairs: Option<i64>,
    /// Server groups.
    #[arg(long)]
    pub server_groups: Option<i64>,
    /// Servers per server group.
    #[arg(long)]
    pub server_group_members: Option<i64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The id of a project named by name or id (the caller's own by default).
async fn project_id(app: &App, project: Option<&str>) -> CliResult<String> {
    let t = app.client.token().await;
    let own = t.project_id.clone().unwrap_or_default();
    let Some(p) = project else { return Ok(own) };
    if p == own || t.project_name.as_deref() == Some(p) {
        return Ok(own);
    }
    let r = app
        .client
        .send(Request::new(Method::GET, Service::Identity, "projects").query([("name", p)]))
        .await;
    if let Ok(r) = r {
        let body = r.json()?;
        if let Some(found) = body["projects"].as_array().and_then(|a| a.first()) {
            return Ok(found.id_str());
        }
    }
    Ok(p.to_owned())
}

/// Runs a quota command.
pub async fn quota(app: &App, cmd: &QuotaCmd) -> CliResult {
    match cmd {
        QuotaCmd::Show(a) => {
            let id = project_id(app, a.project.as_deref()).await?;
            print_show(&app.client.quota_show(&id).await?, &a.output)
        }
        QuotaCmd::Set(a) => {
            let id = project_id(app, Some(&a.project)).await?;
            let mut limits = Map::new();
            for (k, v) in [
                ("instances", a.instances),
                ("cores", a.cores),
                ("ram", a.ram),
                ("key_pairs", a.key_pairs),
                ("server_groups", a.server_groups),
                ("server_group_members", a.server_group_members),
            ] {
                if let Some(v) = v {
                    limits.insert(k.into(), json!(v));
                }
            }
            if limits.is_empty() {
                return Err(CliError::usage("quota set: give at least one limit"));
            }
            let q = app.client.quota_update(&id, Value::Object(limits)).await?;
            print_show(&q, &a.output)
        }
    }
}

/// `cloud hypervisor ...` (admin).
#[derive(Debug, Subcommand)]
pub enum HypervisorCmd {
    /// List hypervisors.
    #[command(after_help = "Example:\n  cloud hypervisor list")]
    List(OutputArgs),
    /// Show a hypervisor (by host name or id).
    #[command(after_help = "Example:\n  cloud hypervisor show host-1")]
    Show(ShowOne),
}

/// Runs a hypervisor command.
pub async fn hypervisor(app: &App, cmd: &HypervisorCmd) -> CliResult {
    match cmd {
        HypervisorCmd::List(out) => {
            let items = app.client.list(HYPERVISOR, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Hostname", "hypervisor_hostname"),
                Col::new("State", "state"),
                Col::new("Status", "status"),
                Col::new("vCPUs Used", "vcpus_used"),
                Col::new("vCPUs", "vcpus"),
                Col::new("RAM Used (MiB)", "memory_mb_used"),
                Col::new("RAM (MiB)", "memory_mb"),
            ];
            print_list(&items, &cols, out)
        }
        HypervisorCmd::Show(a) => show_one(app, HYPERVISOR, a).await,
    }
}

/// `cloud service ...` (admin).
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// List compute services and whether they are up.
    #[command(after_help = "Example:\n  cloud service list")]
    List(OutputArgs),
}

/// Runs a service command.
pub async fn service(app: &App, cmd: &ServiceCmd) -> CliResult {
    match cmd {
        ServiceCmd::List(out) => {
            let items = app.client.list(COMPUTE_SERVICE, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Binary", "binary"),
                Col::new("Host", "host"),
                Col::new("Zone", "zone"),
                Col::new("Status", "status"),
                Col::new("State", "state"),
                Col::new("Updated At", "updated_at"),
            ];
            print_list(&items, &cols, out)
        }
    }
}
