//! `cloud`: the command-line tool of the cloud.
//!
//! Ground rules: output on stdout is for results (tables, or JSON/YAML/
//! values for scripts), everything else (progress, transitions, debug)
//! goes to stderr; every failure prints one `error:` line and exits with a
//! documented code ([`exit`]); every resource argument takes a name or an
//! id; every create sends an idempotency key, so a retried command never
//! makes two of anything.

mod app;
mod cli;
mod commands;
mod config;
mod exit;
mod output;
mod stack;
mod token_cache;

use crate::app::App;
use crate::cli::{Cli, Command, TokenCmd};
use crate::commands::server_shelve;
use crate::commands::server_states::{self, Freeze};
use crate::commands::{compute, floating_ips, image, network, routers, server_rebuild, servers};
use crate::exit::CliResult;
use clap::{CommandFactory, Parser};
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.debug {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "cloud_client=debug,cloud=debug",
            ))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    if let Command::Completion { shell } = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "cloud", &mut std::io::stdout());
        return Ok(());
    }
    let app = App::connect(
        &cli.auth,
        !cli.no_token_cache,
        Duration::from_secs(cli.wait_timeout),
    )
    .await?;
    let result = dispatch(&app, &cli.command).await;
    app.finish().await;
    result
}

async fn dispatch(app: &App, command: &Command) -> CliResult {
    match command {
        Command::Boot(a) => servers::boot(app, a).await,
        Command::List(a) => servers::list(app, a).await,
        Command::Show(a) => servers::show(app, a).await,
        Command::Delete(a) => servers::delete(app, a).await,
        Command::Stop(a) => servers::power(app, a, false).await,
        Command::Start(a) => servers::power(app, a, true).await,
        Command::Reboot(a) => servers::reboot(app, a).await,
        Command::Pause(a) => server_states::freeze(app, a, Freeze::Pause).await,
        Command::Unpause(a) => server_states::freeze(app, a, Freeze::Unpause).await,
        Command::Suspend(a) => server_states::freeze(app, a, Freeze::Suspend).await,
        Command::Resume(a) => server_states::freeze(app, a, Freeze::Resume).await,
        Command::Lock(a) => server_states::lock(app, a).await,
        Command::Unlock(a) => server_states::unlock(app, a).await,
        Command::Dump(a) => server_states::dump(app, a).await,
        Command::Interfaces(a) => server_states::interfaces(app, a).await,
        Command::Interface(c) => commands::server_interfaces::interface(app, c).await,
        Command::Rebuild(a) => server_rebuild::rebuild(app, a).await,
        Command::Rescue(a) => commands::server_rescue::rescue(app, a).await,
        Command::Unrescue(a) => commands::server_rescue::unrescue(app, a).await,
        Command::Shelve(a) => server_shelve::shelve(app, a).await,
        Command::Unshelve(a) => server_shelve::unshelve(app, a).await,
        Command::Snapshot(a) => commands::server_snapshot::snapshot(app, a).await,
        Command::Console(a) => commands::server_console::console(app, a).await,
        Command::ConsoleLog(a) => servers::console_log(app, a).await,
        Command::Actions(a) => servers::actions(app, a).await,
        Command::Flavor(c) => compute::flavor(app, c).await,
        Command::Image(c) => image::image(app, c).await,
        Command::Network(c) => network::network(app, c).await,
        Command::Subnet(c) => network::subnet(app, c).await,
        Command::Port(c) => network::port(app, c).await,
        Command::Router(c) => routers::router(app, c).await,
        Command::FloatingIp(c) => floating_ips::floating_ip(app, c).await,
        Command::Keypair(c) => compute::keypair(app, c).await,
        Command::SecurityGroup(c) => network::security_group(app, c).await,
        Command::ServerGroup(c) => compute::server_group(app, c).await,
        Command::Quota(c) => compute::quota(app, c).await,
        Command::Hypervisor(c) => compute::hypervisor(app, c).await,
        Command::Service(c) => compute::service(app, c).await,
        Command::Token(TokenCmd::Issue(out)) => {
            let t = app.client.token().await;
            output::print_show(
                &json!({
                    "id": t.secret, "expires": t.expires_at.to_rfc3339(),
                    "project_id": t.project_id, "user_id": t.user_id,
                }),
                out,
            )
        }
        Command::Plan(a) => stack::plan(app, a).await,
        Command::Apply(a) => stack::apply(app, a).await,
        Command::Destroy(a) => stack::destroy(app, a).await,
        Command::Completion { .. } => Ok(()),
    }
}
