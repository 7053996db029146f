//! Credentials, found the way the OpenStack tools find them: a named cloud
//! from `clouds.yaml` (`--os-cloud` / `OS_CLOUD`), overridden by `--os-*`
//! options and `OS_*` variables.
//!
//! `clouds.yaml` is looked for in `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//! `$XDG_CONFIG_HOME/openstack/` (default `~/.config/openstack/`) and
//! `/etc/openstack/`; a `secure.yaml` beside it may hold the passwords.

use crate::exit::{CliError, CliResult};
use cloud_client::{AuthOptions, Credentials, Domain, Named};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The credential options (each also read from its `OS_*` variable).
#[derive(Clone, Debug, Default, clap::Args)]
#[command(next_help_heading = "Credentials (or a clouds.yaml entry)")]
pub struct AuthArgs {
    /// A cloud of clouds.yaml.
    #[arg(long, env = "OS_CLOUD", global = true)]
    pub os_cloud: Option<String>,
    /// Keystone URL (`http://host/identity/v3`).
    #[arg(long, env = "OS_AUTH_URL", global = true)]
    pub os_auth_url: Option<String>,
    /// User name.
    #[arg(long, env = "OS_USERNAME", global = true)]
    pub os_username: Option<String>,
    /// User id (instead of a name).
    #[arg(long, env = "OS_USER_ID", global = true)]
    pub os_user_id: Option<String>,
    /// Password.
    #[arg(long, env = "OS_PASSWORD", global = true, hide_env_values = true)]
    pub os_password: Option<String>,
    /// Project name.
    #[arg(long, env = "OS_PROJECT_NAME", global = true)]
    pub os_project_name: Option<String>,
    /// Project id (instead of a name).
    #[arg(long, env = "OS_PROJECT_ID", global = true)]
    pub os_project_id: Option<String>,
    /// Domain name of the user (default: the default domain).
    #[arg(long, env = "OS_USER_DOMAIN_NAME", global = true)]
    pub os_user_domain_name: Option<String>,
    /// Domain id of the user.
    #[arg(long, env = "OS_USER_DOMAIN_ID", global = true)]
    pub os_user_domain_id: Option<String>,
    /// Domain name of the project (default: the default domain).
    #[arg(long, env = "OS_PROJECT_DOMAIN_NAME", global = true)]
    pub os_project_domain_name: Option<String>,
    /// Domain id of the project.
    #[arg(long, env = "OS_PROJECT_DOMAIN_ID", global = true)]
    pub os_project_domain_id: Option<String>,
    /// An existing token instead of a password.
    #[arg(long, env = "OS_TOKEN", global = true, hide_env_values = true)]
    pub os_token: Option<String>,
    /// Region of the endpoints to use.
    #[arg(long, env = "OS_REGION_NAME", global = true)]
    pub os_region_name: Option<String>,
    /// Endpoint interface.
    #[arg(long, env = "OS_INTERFACE", global = true)]
    pub os_interface: Option<String>,
}

/// `clouds.yaml`.
#[derive(Debug, Default, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, CloudEntry>,
}

/// One cloud of `clouds.yaml`; unknown keys (verify, identity_api_version,
/// ...) are ignored as the OpenStack tools ignore what they do not use.
#[derive(Debug, Default, Deserialize)]
struct CloudEntry {
    #[serde(default)]
    auth: AuthEntry,
    #[serde(default)]
    region_name: Option<String>,
    #[serde(default)]
    interface: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth_url: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<String>,
    project_name: Option<String>,
    project_id: Option<String>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    domain_name: Option<String>,
    domain_id: Option<String>,
    token: Option<String>,
}

fn config_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(x) = xdg {
        dirs.push(x.join("openstack"));
    }
    dirs.push(PathBuf::from("/etc/openstack"));
    dirs
}

fn read_yaml(path: &PathBuf) -> CliResult<CloudsFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    serde_saphyr::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: invalid clouds file: {e}", path.display())))
}

/// The entry `name` of the first clouds.yaml found, with secure.yaml's
/// values filled in.
fn cloud_entry(name: &str) -> CliResult<CloudEntry> {
    let explicit = std::env::var_os("OS_CLIENT_CONFIG_FILE").map(PathBuf::from);
    let candidates: Vec<PathBuf> = match &explicit {
        Some(p) => vec![p.clone()],
        None => config_dirs()
            .into_iter()
            .map(|d| d.join("clouds.yaml"))
            .collect(),
    };
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(CliError::usage(format!(
            "--os-cloud {name}: no clouds.yaml found (looked in {})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let mut file = read_yaml(path)?;
    let mut entry = file.clouds.remove(name).ok_or_else(|| {
        CliError::usage(format!(
            "{}: no cloud named '{name}' (clouds: {})",
            path.display(),
            file.clouds.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let secure = path.with_file_name("secure.yaml");
    if secure.is_file() {
        let mut s = read_yaml(&secure)?;
        if let Some(sec) = s.clouds.remove(name) {
            entry.auth.password = entry.auth.password.or(sec.auth.password);
            entry.auth.token = entry.auth.token.or(sec.auth.token);
        }
    }
    Ok(entry)
}

fn domain(id: Option<String>, name: Option<String>) -> Domain {
    match (id, name) {
        (Some(id), _) => Domain::Id(id),
        (None, Some(name)) => Domain::Name(name),
        (None, None) => Domain::Id("default".to_owned()),
    }
}

/// The authentication options from the cloud entry and the overrides.
pub fn auth_options(args: &AuthArgs) -> CliResult<AuthOptions> {
    let entry = match &args.os_cloud {
        Some(name) => cloud_entry(name)?,
        None => CloudEntry::default(),
    };
    let a = entry.auth;
    let pick = |over: &Option<String>, base: Option<String>| over.clone().or(base);
    let auth_url = pick(&args.os_auth_url, a.auth_url).ok_or_else(|| {
        CliError::usage(
            "no credentials: set --os-cloud (OS_CLOUD) with a clouds.yaml, or OS_AUTH_URL, \
             OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME",
        )
    })?;
    let user_domain = domain(
        pick(
            &args.os_user_domain_id,
            a.user_domain_id.or(a.domain_id.clone()),
        ),
        pick(
            &args.os_user_domain_name,
            a.user_domain_name.or(a.domain_name.clone()),
        ),
    );
    let project_domain = domain(
        pick(
            &args.os_project_domain_id,
            a.project_domain_id.or(a.domain_id),
        ),
        pick(
            &args.os_project_domain_name,
            a.project_domain_name.or(a.domain_name),
        ),
    );
    let project = match (
        pick(&args.os_project_id, a.project_id),
        pick(&args.os_project_name, a.project_name),
    ) {
        (Some(id), _) => Some(Named::Id(id)),
        (None, Some(name)) => Some(Named::Name {
            name,
            domain: project_domain,
        }),
        (None, None) => None,
    };
    let credentials = match pick(&args.os_token, a.token) {
        Some(t) => Credentials::Token(t),
        None => {
            let user = match (
                pick(&args.os_user_id, a.user_id),
                pick(&args.os_username, a.username),
            ) {
                (Some(id), _) => Named::Id(id),
                (None, Some(name)) => Named::Name {
                    name,
                    domain: user_domain,
                },
                (None, None) => {
                    return Err(CliError::usage(
                        "no user: set OS_USERNAME (or --os-username, or username in clouds.yaml)",
                    ));
                }
            };
            let password = pick(&args.os_password, a.password).ok_or_else(|| {
                CliError::usage("no password: set OS_PASSWORD (or --os-password, or clouds.yaml)")
            })?;
            Credentials::Password { user, password }
        }
    };
    Ok(AuthOptions {
        auth_url,
        credentials,
        project,
        region: pick(&args.os_region_name, entry.region_name),
        interface: pick(&args.os_interface, entry.interface).unwrap_or_else(|| "public".into()),
    })
}
