//! Declarative automation: `cloud plan|apply|destroy -f stack.yaml`.
//!
//! A stack file declares networks, subnets, security groups (with rules),
//! keypairs, server groups, servers, routers (with their interfaces) and
//! floating IPs ([`l3`]), referring to each other by name
//! ([`spec`]). Which cloud resources the stack owns is recorded in a state
//! file beside it ([`state`]; docs/adr/0004-declarative-state.md says why).
//! `plan` compares the file with the state and the cloud ([`plan`]);
//! `apply` carries the plan out one recorded change at a time ([`apply`]).

mod apply;
mod file;
mod l3;
mod ops;
mod plan;
mod spec;
mod state;

use crate::app::App;
use crate::exit::{CANCELLED, CliError, CliResult};
use clap::Args;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Help of `cloud plan`.
pub const PLAN_HELP: &str = "\
A stack file (YAML):
  stack: demo
  keypairs:        [{name: deploy, public_key_file: id_ed25519.pub}]
  server_groups:   [{name: spread, policy: anti-affinity}]
  security_groups:
    - name: web
      description: HTTP in
      rules: [{protocol: tcp, port: 80, remote_ip_prefix: 0.0.0.0/0}]
  networks:        [{name: app}]
  subnets:         [{name: app-v4, network: app, cidr: 10.0.1.0/24}]
  servers:
    - name: web-1
      flavor: m1.small
      image: cirros
      networks: [app]               # or [{network: app, fixed_ip: 10.0.1.10}]
      security_groups: [web]
      server_group: spread
      key_name: deploy
      metadata: {role: web}
  routers:                          # after subnets; gateway on an external network
    - {name: edge, external_network: public, enable_snat: true, interfaces: [app-v4]}
  floating_ips:                     # once the server is ACTIVE, on its first port
    - {server: web-1, network: public}

Names declared in the file refer to the stack's own resources; other names
(flavors, images, a shared network) must already exist. The state, which
records the resources the stack owns, lives in STACK.state.json beside the
file (--state to choose): keep it with the file. Plans never write.

Marks: + create, ~ update in place, -/+ replace, - delete.

Examples:
  cloud plan -f stack.yaml";

/// Help of `cloud apply`.
pub const APPLY_HELP: &str = "\
Shows the plan, asks for confirmation (unless --auto-approve), then makes
the changes: deletions first (dependents before what they use), then
creations and updates in dependency order, waiting for servers to be
ACTIVE. Every change is recorded in the state as it happens, so an apply
that was interrupted (Ctrl-C, a crash, a failed server) is finished by
running it again, without duplicates: creates carry idempotency keys.
An unchanged file changes nothing and says so.

Examples:
  cloud apply -f stack.yaml
  cloud apply -f stack.yaml --auto-approve
  cloud apply -f stack.yaml --dry-run      (the plan only; nothing is written)";

/// Help of `cloud destroy`.
pub const DESTROY_HELP: &str = "\
Deletes every resource the stack's state records (floating IPs and servers
first, then router interfaces, routers, subnets, networks), then the state
file. Resources the stack does not own are never touched.

Examples:
  cloud destroy -f stack.yaml
  cloud destroy -f stack.yaml --auto-approve";

/// Options of plan, apply and destroy.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// The stack file.
    #[arg(short = 'f', long = "file", value_name = "STACK.yaml")]
    pub file: PathBuf,
    /// The state file (default: STACK.state.json beside the stack file).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Do not ask for confirmation (apply, destroy).
    #[arg(long)]
    pub auto_approve: bool,
    /// Show what would be done and stop; never writes anything.
    #[arg(long)]
    pub dry_run: bool,
}

impl StackArgs {
    fn state_path(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| state::default_path(&self.file))
    }
}

/// Loads file and state, refreshes, and plans.
async fn prepare(
    app: &App,
    a: &StackArgs,
) -> CliResult<(
    spec::Stack,
    state::State,
    BTreeMap<String, plan::Live>,
    plan::Plan,
)> {
    let stack = spec::load(&a.file)?;
    let mut st = state::State::load(&a.state_path())?;
    let token = app.client.token().await;
    st.bind(
        &stack.name,
        &app.client.auth().v3_url(),
        token.project_id.as_deref().unwrap_or(""),
    )?;
    ops::check_external(app, &stack).await?;
    let live = ops::refresh(app, &st).await?;
    let p = plan::diff(&stack, &st, &live)?;
    Ok((stack, st, live, p))
}

fn confirm(question: &str) -> CliResult {
    eprint!("{question} Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::new(
            CANCELLED,
            "not confirmed; nothing was changed",
        ))
    }
}

fn file_name(a: &StackArgs) -> String {
    a.file.display().to_string()
}

/// `cloud plan`.
pub async fn plan(app: &App, a: &StackArgs) -> CliResult {
    let (_, _, _, p) = prepare(app, a).await?;
    print!("{}", plan::render(&p, &file_name(a)));
    Ok(())
}

/// `cloud apply`.
pub async fn apply(app: &App, a: &StackArgs) -> CliResult {
    let _lock = if a.dry_run {
        None
    } else {
        Some(state::Lock::take(&a.state_path())?)
    };
    let (_, st, live, p) = prepare(app, a).await?;
    print!("{}", plan::render(&p, &file_name(a)));
    if a.dry_run {
        println!("Dry run: nothing was changed.");
        return Ok(());
    }
    if p.is_empty() {
        if !p.forget.is_empty() {
            let mut st = st;
            for k in &p.forget {
                st.resources.remove(k);
            }
            st.save(&a.state_path())?;
        }
        return Ok(());
    }
    if !a.auto_approve {
        confirm("Apply these changes?")?;
    }
    let path = a.state_path();
    println!();
    let mut ap = apply::Applier::new(app, st, &path);
    ap.run_deletes(&p).await?;
    ap.run_applies(&p, &live).await?;
    println!("{}", ap.summary("Apply"));
    Ok(())
}

/// `cloud destroy`.
pub async fn destroy(app: &App, a: &StackArgs) -> CliResult {
    let path = a.state_path();
    let _lock = if a.dry_run {
        None
    } else {
        Some(state::Lock::take(&path)?)
    };
    let stack = spec::load(&a.file)?;
    let mut st = state::State::load(&path)?;
    let token = app.client.token().await;
    st.bind(
        &stack.name,
        &app.client.auth().v3_url(),
        token.project_id.as_deref().unwrap_or(""),
    )?;
    let empty = spec::Stack {
        name: stack.name.clone(),
        resources: Vec::new(),
    };
    let live = ops::refresh(app, &st).await?;
    let p = plan::diff(&empty, &st, &live)?;
    if p.is_empty() {
        println!(
            "Nothing to destroy: the state of {} records no resources.",
            file_name(a)
        );
        if !a.dry_run && path.exists() {
            let _ = std::fs::remove_file(&path);
        }
        return Ok(());
    }
    print!("{}", plan::render(&p, &file_name(a)));
    if a.dry_run {
        println!("Dry run: nothing was changed.");
        return Ok(());
    }
    if !a.auto_approve {
        confirm("Delete all these resources?")?;
    }
    println!();
    let mut ap = apply::Applier::new(app, st, &path);
    ap.run_deletes(&p).await?;
    println!("{}", ap.summary("Destroy"));
    if ap.into_state().resources.is_empty() {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}
