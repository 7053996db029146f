//! `cloud pause|unpause|suspend|resume` and `cloud lock|unlock`: the
//! server actions that freeze a server or protect it, beside stop/start
//! (in `servers`).

use crate::app::App;
use crate::exit::CliResult;
use clap::Args;
use cloud_client::{SERVER, ValueExt};
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
