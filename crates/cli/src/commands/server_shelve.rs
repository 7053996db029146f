//! `cloud shelve` and `cloud unshelve`: a server snapshotted and stopped,
//! its host freed (offloaded), and booted again from its snapshot.

use crate::app::App;
use crate::exit::{CliError, CliResult, RESOURCE_ERROR, TIMEOUT};
use clap::Args;
use cloud_client::{SERVER, ValueExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How often the shelve wait polls.
const POLL: Duration = Duration::from_millis(500);

/// `cloud shelve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud shelve web-1 --wait            # SHELVED, or SHELVED_OFFLOADED when the cloud offloads at once
  cloud shelve web-1 --offload --wait  # and off its host (offloading is admin-only by default)
  cloud unshelve web-1 --wait          # ACTIVE again, on whichever host the scheduler picks

A shelved server keeps its addresses and still counts against the quota.
Only ACTIVE, SHUTOFF, PAUSED and SUSPENDED servers can be shelved (exit 5
otherwise).")]
pub struct ShelveArgs {
    /// Server name or id.
    pub server: String,
    /// Then offload it (free its host) if the cloud did not already; a
    /// server SHELVED already is only offloaded.
    #[arg(long)]
    pub offload: bool,
    /// Wait until the server is SHELVED or SHELVED_OFFLOADED (with
    /// --offload: SHELVED_OFFLOADED).
    #[arg(long)]
    pub wait: bool,
}

/// `cloud unshelve`.
#[derive(Debug, Args)]
pub struct UnshelveArgs {
    /// Server name or id.
    pub server: String,
    /// Wait until the server is ACTIVE again.
    #[arg(long)]
    pub wait: bool,
}

/// Shelves a server, and offloads it with `--offload` (a server SHELVED
/// already is only offloaded).
pub async fn shelve(app: &App, a: &ShelveArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let shelved = app.client.get(SERVER, &id).await?.text("status") == "SHELVED";
    if !(a.offload && shelved) {
        app.client
            .server_action(&id, json!({ "shelve": null }))
            .await?;
    }
    if !a.offload && !a.wait {
        return Ok(());
    }
    let s = settled(app, &id, &a.server, "shelve").await?;
    if a.offload && s.text("status") == "SHELVED" {
        app.client
            .server_action(&id, json!({ "shelveOffload": null }))
            .await?;
        if a.wait {
            app.wait_server(&id, &a.server, &["SHELVED_OFFLOADED"])
                .await?;
        }
    }
    Ok(())
}

/// Unshelves a server.
pub async fn unshelve(app: &App, a: &UnshelveArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    app.client
        .server_action(&id, json!({ "unshelve": null }))
        .await?;
    if a.wait {
        app.wait_server(&id, &a.server, &["ACTIVE"]).await?;
    }
    Ok(())
}

/// Waits until the shelve is over: SHELVED or SHELVED_OFFLOADED with no
/// task running (a SHELVED server may be offloading already). A server
/// whose task ended in another state did not shelve: exit 6, pointing at
/// its actions.
async fn settled(app: &App, id: &str, label: &str, action: &str) -> CliResult<Value> {
    let deadline = Instant::now() + app.wait_timeout;
    loop {
        let s = app.client.get(SERVER, id).await?;
        let status = s.text("status").to_owned();
        let idle = s["OS-EXT-STS:task_state"].is_null();
        if idle && (status == "SHELVED" || status == "SHELVED_OFFLOADED") {
            eprintln!("{label}: {status}");
            return Ok(s);
        }
        if idle || status == "ERROR" {
            return Err(CliError::new(
                RESOURCE_ERROR,
                format!(
                    "server {label} ({id}) did not {action}: it is {status} \
                     (see 'cloud actions {label}')"
                ),
            ));
        }
        if Instant::now() >= deadline {
            return Err(CliError::new(
                TIMEOUT,
                format!(
                    "server {label} ({id}) is still {status} after {} s (--wait-timeout)",
                    app.wait_timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
