//! `cloud rescue` and `cloud unrescue`: boot a server that no longer boots
//! from a rescue image with its own disk attached second, to repair it,
//! and boot its own disk again.

use crate::app::App;
use crate::exit::CliResult;
use crate::output::{OutputArgs, print_show};
use clap::Args;
use cloud_client::{IMAGE, SERVER, ValueExt};
use serde_json::{Value, json};

/// `cloud rescue`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud rescue web-1 --wait                  # boots a fresh copy of its own image
  cloud rescue web-1 --image debian-12 --wait
  cloud unrescue web-1 --wait

The rescue guest sees the server's own disk as its second disk (vdb) and can
repair it; unrescue boots that disk again. Only an ACTIVE, SHUTOFF or ERROR
server can be rescued, only a RESCUE one unrescued (exit 5 otherwise).")]
pub struct RescueArgs {
    /// Server name or id.
    pub server: String,
    /// Rescue image name or id (default: the server's own image).
    #[arg(long)]
    pub image: Option<String>,
    /// Wait until the server is in RESCUE.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Rescues a server and prints its id, status and the rescue's admin
/// password.
pub async fn rescue(app: &App, a: &RescueArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let image = match &a.image {
        Some(i) => Some(app.client.find_id(IMAGE, i).await?),
        None => None,
    };
    let args = match &image {
        Some(i) => json!({ "rescue_image_ref": i }),
        None => Value::Null,
    };
    let answer = app
        .client
        .server_action(&id, json!({ "rescue": args }))
        .await?;
    // Without --wait the rescue is under way (task state rescuing).
    let status = match a.wait {
        true => app.wait_server(&id, &a.server, &["RESCUE"]).await?["status"].clone(),
        false => json!("rescuing"),
    };
    let shown = json!({
        "id": id,
        "status": status,
        "rescue_image": image,
        "adminPass": answer["adminPass"],
    });
    print_show(&shown, &a.output)
}

/// `cloud unrescue`.
#[derive(Debug, Args)]
pub struct UnrescueArgs {
    /// Server name or id.
    pub server: String,
    /// Wait until the server is ACTIVE again.
    #[arg(long)]
    pub wait: bool,
}

/// Boots a rescued server from its own disk again.
pub async fn unrescue(app: &App, a: &UnrescueArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    app.client
        .server_action(&id, json!({ "unrescue": null }))
        .await?;
    if a.wait {
        app.wait_server(&id, &a.server, &["ACTIVE"]).await?;
    }
    Ok(())
}
