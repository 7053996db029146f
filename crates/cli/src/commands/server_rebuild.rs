//! `cloud rebuild`: a fresh root disk for a server from its image (or
//! another one), keeping its id, ports and addresses.

use crate::app::App;
use crate::exit::{CliError, CliResult, USAGE};
use crate::output::{OutputArgs, print_show};
use clap::Args;
use cloud_client::{IMAGE, SERVER, ValueExt};
use serde_json::{Map, Value, json};

/// `cloud rebuild`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud rebuild web-1 --wait                    # same image, fresh disk
  cloud rebuild web-1 --image debian-12 --name web-1b --property role=web --wait

The server keeps its id, ports and addresses; its disk is created anew from
the image (everything written to it is lost). A stopped server stays
stopped. Only an ACTIVE, SHUTOFF or ERROR server can be rebuilt (exit 5
otherwise). The new admin password is printed once.")]
pub struct RebuildArgs {
    /// Server name or id.
    pub server: String,
    /// Image name or id (default: the server's current image).
    #[arg(long)]
    pub image: Option<String>,
    /// A new name for the server.
    #[arg(long)]
    pub name: Option<String>,
    /// Metadata KEY=VALUE (repeatable): replaces all of the server's
    /// metadata.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Wait until the server is ACTIVE (or SHUTOFF again).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Rebuilds a server and prints its id, status and new admin password.
pub async fn rebuild(app: &App, a: &RebuildArgs) -> CliResult {
    let server = app.client.find(SERVER, &a.server).await?;
    let id = server.id_str();
    let image = match &a.image {
        Some(i) => app.client.find_id(IMAGE, i).await?,
        None => server["image"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    let mut args = json!({ "imageRef": image });
    if let Some(n) = &a.name {
        args["name"] = json!(n);
    }
    if !a.properties.is_empty() {
        args["metadata"] = Value::Object(properties(&a.properties)?);
    }
    let answer = app
        .client
        .server_action(&id, json!({ "rebuild": args }))
        .await?;
    let mut shown = json!({
        "id": id,
        "name": answer["server"]["name"],
        "status": answer["server"]["status"],
        "image": image,
        "adminPass": answer["server"]["adminPass"],
    });
    if a.wait {
        let label = a.name.as_deref().unwrap_or(&a.server);
        let s = app.wait_server(&id, label, &["ACTIVE", "SHUTOFF"]).await?;
        shown["status"] = s["status"].clone();
    }
    print_show(&shown, &a.output)
}

/// `KEY=VALUE` pairs as a metadata object.
fn properties(pairs: &[String]) -> CliResult<Map<String, Value>> {
    let mut out = Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CliError::new(USAGE, format!("--property {p}: expected KEY=VALUE")))?;
        out.insert(k.to_owned(), json!(v));
    }
    Ok(out)
}
