//! The commands, one module per family, plus the list/show/delete helpers
//! every resource shares.

pub mod compute;
pub mod floating_ips;
pub mod image;
pub mod network;
pub mod routers;
pub mod server_console;
pub mod server_interfaces;
pub mod server_rebuild;
pub mod server_rescue;
pub mod server_shelve;
pub mod server_snapshot;
pub mod server_states;
pub mod servers;

use crate::app::App;
use crate::exit::CliResult;
use crate::output::{OutputArgs, print_show};
use clap::Args;
use cloud_client::{Kind, ValueExt};

/// One resource by name or id, and output options.
#[derive(Debug, Args)]
pub struct ShowOne {
    /// Name or id.
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Resources by name or id.
#[derive(Debug, Args)]
pub struct NamesArg {
    /// Names or ids.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Shows the resource of `kind` named `a.name`.
pub async fn show_one(app: &App, kind: Kind, a: &ShowOne) -> CliResult {
    let v = app.client.find(kind, &a.name).await?;
    print_show(&v, &a.output)
}

/// Deletes each named resource, resolving every name first so a typo in
/// the last one deletes nothing.
pub async fn delete_all(app: &App, kind: Kind, names: &[String]) -> CliResult {
    let mut ids = Vec::new();
    for n in names {
        ids.push(app.client.find(kind, n).await?.id_str());
    }
    for id in ids {
        app.client.delete(kind, &id).await?;
    }
    Ok(())
}
