//! What every command gets: an authenticated client (from the token cache
//! when possible) and the shared wait logic with its status display.

use crate::config::{AuthArgs, auth_options};
use crate::exit::{CliError, CliResult, RESOURCE_ERROR, TIMEOUT};
use crate::token_cache;
use cloud_client::{Client, Credentials, ValueExt, WaitOutcome, fault_of};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often `--wait` polls.
const POLL: Duration = Duration::from_millis(500);

/// The connected CLI.
pub struct App {
    /// The API client.
    pub client: Client,
    /// How long `--wait` waits.
    pub wait_timeout: Duration,
    cache_key: Option<String>,
}

impl App {
    /// Authenticates (or reuses a cached token).
    pub async fn connect(
        auth: &AuthArgs,
        use_cache: bool,
        wait_timeout: Duration,
    ) -> CliResult<App> {
        let opts = auth_options(auth)?;
        let cache_key = (use_cache && matches!(opts.credentials, Credentials::Password { .. }))
            .then(|| opts.cache_key());
        let cached = cache_key.as_deref().and_then(token_cache::load);
        let client = match cached {
            Some(token) => {
                tracing::debug!(target: "cloud_client", "using the cached token (expires {})", token.expires_at);
                Client::with_token(opts, token)
            }
            None => {
                let c = Client::connect(opts).await.map_err(|e| {
                    if let Some(k) = &cache_key {
                        token_cache::forget(k);
                    }
                    CliError::from(e)
                })?;
                if let Some(k) = &cache_key {
                    token_cache::store(k, &c.token().await);
                }
                c
            }
        };
        Ok(App {
            client,
            wait_timeout,
            cache_key,
        })
    }

    /// Saves the token if the client renewed it.
    pub async fn finish(&self) {
        if let Some(k) = &self.cache_key {
            let t = self.client.token().await;
            if token_cache::load(k).as_ref() != Some(&t) {
                token_cache::store(k, &t);
            }
        }
    }

    /// Waits for server `id` to reach one of `targets`, showing each status
    /// change (with a spinner on a terminal). ERROR exits 6 with the
    /// server's fault, a timeout exits 7.
    pub async fn wait_server(&self, id: &str, label: &str, targets: &[&str]) -> CliResult<Value> {
        let display = StatusDisplay::new(label);
        let outcome = self
            .client
            .wait_for_server(id, targets, POLL, self.wait_timeout, |status, task| {
                display.change(status, task)
            })
            .await;
        display.finish();
        match outcome? {
            WaitOutcome::Reached(s) => Ok(s),
            WaitOutcome::Gone => Ok(Value::Null),
            WaitOutcome::Failed(s) => Err(CliError::new(
                RESOURCE_ERROR,
                format!("server {label} ({id}) went to ERROR: {}", fault_of(&s)),
            )),
            WaitOutcome::TimedOut(s) => Err(CliError::new(
                TIMEOUT,
                format!(
                    "server {label} ({id}) is still {} after {} s (--wait-timeout)",
                    s.text("status"),
                    self.wait_timeout.as_secs()
                ),
            )),
        }
    }
}

/// Shows status transitions on stderr: a spinner with the current status
/// on a terminal, one line per transition otherwise (logs, scripts).
pub struct StatusDisplay {
    label: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl StatusDisplay {
    /// Starts the display for `label`.
    pub fn new(label: &str) -> StatusDisplay {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        StatusDisplay {
            label: label.to_owned(),
            bar,
            started: Instant::now(),
        }
    }

    /// Reports a new status.
    pub fn change(&self, status: &str, task: Option<&str>) {
        let text = match task {
            Some(t) => format!("{status} ({t})"),
            None => status.to_owned(),
        };
        let line = format!(
            "{}: {text} after {:.1}s",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
        match &self.bar {
            Some(b) => {
                b.println(&line);
                b.set_message(format!("{}: {text}", self.label));
            }
            None => eprintln!("{line}"),
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
