//! The command line: global options and the command tree.

use crate::commands::compute::{
    FlavorCmd, HypervisorCmd, KeypairCmd, QuotaCmd, ServerGroupCmd, ServiceCmd,
};
use crate::commands::floating_ips::FloatingIpCmd;
use crate::commands::image::ImageCmd;
use crate::commands::network::{NetworkCmd, PortCmd, SecurityGroupCmd, SubnetCmd};
use crate::commands::routers::RouterCmd;
use crate::commands::server_console::SerialConsoleArgs;
use crate::commands::server_interfaces::InterfaceCmd;
use crate::commands::server_rebuild::RebuildArgs;
use crate::commands::server_rescue::{RescueArgs, UnrescueArgs};
use crate::commands::server_shelve::{ShelveArgs, UnshelveArgs};
use crate::commands::server_snapshot::SnapshotArgs;
use crate::commands::server_states::{DumpArgs, FreezeArgs, InterfacesArgs, LockArgs, UnlockArgs};
use crate::commands::servers::{
    ActionsArgs, BootArgs, ConsoleArgs, DeleteArgs, ListArgs, PowerArgs, RebootArgs, ShowArgs,
};
use crate::config::AuthArgs;
use crate::output::OutputArgs;
use crate::stack::StackArgs;
use clap::{Parser, Subcommand};

const ABOUT: &str = "Drive the cloud from a terminal: servers, images, networks and the rest \
(OpenStack-compatible), plus declarative plan/apply/destroy.";

const AFTER_HELP: &str = "\
Credentials: --os-cloud NAME (OS_CLOUD) picks a cloud from clouds.yaml, or set
OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (and OS_USER_DOMAIN_NAME,
OS_PROJECT_DOMAIN_NAME). Tokens are cached between runs under
$XDG_CACHE_HOME/cloud/tokens (0600) until they expire.

Examples:
  export OS_CLOUD=devstack
  cloud boot web-1 --flavor m1.small --image cirros --nic net-id=app-net --wait
  cloud boot web-2 --flavor m1.small --image cirros --nic net-id=app-net --floating-ip public
  cloud list -f json
  cloud apply -f stack.yaml --auto-approve

Exit codes:
  0  success            1  failure (server error, unreachable, other)
  2  usage or input     3  authentication/permission refused (401/403)
  4  not found or ambiguous name    5  conflict (409)
  6  ended in ERROR     7  wait timed out
  8  not confirmed      130 interrupted (Ctrl-C)";

/// `cloud`.
#[derive(Debug, Parser)]
#[command(name = "cloud", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Print every request, response status and request id on stderr.
    #[arg(long, global = true, help_heading = "Global options")]
    pub debug: bool,
    /// Neither read nor write the token cache.
    #[arg(
        long,
        global = true,
        env = "CLOUD_NO_TOKEN_CACHE",
        help_heading = "Global options"
    )]
    pub no_token_cache: bool,
    /// Give up a --wait after this many seconds.
    #[arg(
        long,
        global = true,
        default_value_t = 600,
        value_name = "SECONDS",
        help_heading = "Global options"
    )]
    pub wait_timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a server (nova's syntax).
    Boot(BootArgs),
    /// List servers.
    List(ListArgs),
    /// Show a server.
    Show(ShowArgs),
    /// Delete servers.
    Delete(DeleteArgs),
    /// Stop a server.
    Stop(PowerArgs),
    /// Start a stopped server.
    Start(PowerArgs),
    /// Reboot a server.
    Reboot(RebootArgs),
    /// Pause a server (frozen in memory).
    Pause(FreezeArgs),
    /// Unpause a paused server.
    Unpause(FreezeArgs),
    /// Suspend a server (memory saved to disk).
    Suspend(FreezeArgs),
    /// Resume a suspended server.
    Resume(FreezeArgs),
    /// Lock a server: non-admins cannot act on it until it is unlocked.
    Lock(LockArgs),
    /// Unlock a server.
    Unlock(UnlockArgs),
    /// Send a server's guest an NMI so it writes a crash dump.
    Dump(DumpArgs),
    /// List a server's network interfaces (ports, networks, MACs, addresses).
    Interfaces(InterfacesArgs),
    /// Attach a port or network to a server, or detach one.
    #[command(subcommand)]
    Interface(InterfaceCmd),
    /// Rebuild a server: a fresh disk from its image (or another one).
    Rebuild(RebuildArgs),
    /// Rescue a server: boot a rescue image with the server's disk second.
    Rescue(RescueArgs),
    /// Boot a rescued server from its own disk again.
    Unrescue(UnrescueArgs),
    /// Shelve a server: snapshot it and stop it (and free its host).
    Shelve(ShelveArgs),
    /// Unshelve a shelved server: boot it again from its snapshot.
    Unshelve(UnshelveArgs),
    /// Snapshot a server: its root disk as a new image of the project.
    Snapshot(SnapshotArgs),
    /// Attach to a server's serial console (or print its websocket URL).
    Console(SerialConsoleArgs),
    /// Print a server's console log.
    ConsoleLog(ConsoleArgs),
    /// List what was done to a server (and why something failed).
    Actions(ActionsArgs),
    /// Flavors.
    #[command(subcommand)]
    Flavor(FlavorCmd),
    /// Images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Subnets.
    #[command(subcommand)]
    Subnet(SubnetCmd),
    /// Ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Routers: external gateways and interfaces on subnets.
    #[command(subcommand)]
    Router(RouterCmd),
    /// Floating IPs: external addresses for servers.
    #[command(subcommand)]
    FloatingIp(FloatingIpCmd),
    /// Keypairs.
    #[command(subcommand)]
    Keypair(KeypairCmd),
    /// Security groups and their rules.
    #[command(subcommand)]
    SecurityGroup(SecurityGroupCmd),
    /// Server groups.
    #[command(subcommand)]
    ServerGroup(ServerGroupCmd),
    /// Compute quotas.
    #[command(subcommand)]
    Quota(QuotaCmd),
    /// Hypervisors (admin).
    #[command(subcommand)]
    Hypervisor(HypervisorCmd),
    /// Compute services (admin).
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Show what `apply` would change to make the cloud match a stack file.
    #[command(after_help = crate::stack::PLAN_HELP)]
    Plan(StackArgs),
    /// Make the cloud match a stack file.
    #[command(after_help = crate::stack::APPLY_HELP)]
    Apply(StackArgs),
    /// Delete everything a stack file's state records.
    #[command(after_help = crate::stack::DESTROY_HELP)]
    Destroy(StackArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  cloud completion bash > /etc/bash_completion.d/cloud
  cloud completion zsh > \"${fpath[1]}/_cloud\"
  cloud completion fish > ~/.config/fish/completions/cloud.fish")]
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `cloud token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue (or show the cached) token.
    #[command(after_help = "Example:\n  export OS_TOKEN=$(cloud token issue -f value -c id)")]
    Issue(OutputArgs),
}
