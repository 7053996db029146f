//! Keeping the host's data plane at the control plane's desired state.
//!
//! One task owns it: it pulls the host's whole desired state from the
//! conductor ([`ConductorMsg::GetHostNetwork`]) and hands it to the driver,
//! at start, whenever the control plane says something changed
//! ([`ComputeMsg::SyncNetwork`](cloud_rpc::ComputeMsg::SyncNetwork)), and
//! every `network_resync_secs` as a safety net. Requests that arrive while
//! a pull runs are coalesced into one more pull. Because only this task
//! touches the data plane, concurrent spawns and deletes never race on
//! shared host state (bridges, DHCP files, the nftables table).

use cloud_bus::{Bus, CONDUCTOR_QUEUE};
use cloud_driver::{Driver, HostNetwork};
use cloud_rpc::{ConductorMsg, Reply};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a pull waits for the conductor.
const PULL_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause after a failed pull or apply before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What the data plane holds now.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// Revision of the state applied (0: none yet).
    pub revision: i64,
    /// Ports it carries.
    pub ports: BTreeSet<String>,
    /// Applies so far.
    pub count: u64,
    /// Why the last pull or apply failed, if it did (cleared by the next
    /// success): a spawn that cannot get its ports says this.
    pub last_error: Option<String>,
}

/// The handle the agent uses: ask for a sync, wait for ports.
pub struct NetworkSync {
    host: String,
    bus: Arc<dyn Bus>,
    driver: Arc<dyn Driver>,
    wake: Notify,
    applied_tx: watch::Sender<Applied>,
    applied_rx: watch::Receiver<Applied>,
}

impl NetworkSync {
    /// A sync for `host`; nothing runs until [`NetworkSync::run`].
    pub fn new(host: &str, bus: Arc<dyn Bus>, driver: Arc<dyn Driver>) -> Arc<NetworkSync> {
        let (applied_tx, applied_rx) = watch::channel(Applied::default());
        Arc::new(NetworkSync {
            host: host.to_owned(),
            bus,
            driver,
            wake: Notify::new(),
            applied_tx,
            applied_rx,
        })
    }

    /// Asks for a pull (coalesced with any pending one).
    pub fn request(&self) {
        self.wake.notify_one();
    }

    /// What is applied now.
    pub fn applied(&self) -> Applied {
        self.applied_rx.borrow().clone()
    }

    /// Waits until the data plane carries every port of `ports`, asking for
    /// a pull if it does not yet; gives up after `timeout`, saying which
    /// ports are missing and why the last sync failed, if it did.
    pub async fn wait_for_ports(&self, ports: &[String], timeout: Duration) -> Result<(), String> {
        let missing = |a: &Applied| -> Vec<String> {
            ports
                .iter()
                .filter(|p| !a.ports.contains(*p))
                .cloned()
                .collect()
        };
        let mut rx = self.applied_rx.clone();
        if missing(&rx.borrow()).is_empty() {
            return Ok(());
        }
        self.request();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if rx.changed().await.is_err() {
                    return;
                }
                if missing(&rx.borrow()).is_empty() {
                    return;
                }
                // A state without our ports may have been computed before
                // they were bound: ask again.
                self.request();
            }
        })
        .await;
        let applied = rx.borrow().clone();
        let left = missing(&applied);
        if left.is_empty() {
            return Ok(());
        }
        let _ = waited;
        Err(match applied.last_error {
            Some(why) => format!(
                "the host's network does not carry port(s) {} after {timeout:?}: {why}",
                left.join(", ")
            ),
            None => format!(
                "the host's network does not carry port(s) {} after {timeout:?}",
                left.join(", ")
            ),
        })
    }

    /// Pulls and applies until the task is dropped.
    pub async fn run(self: Arc<Self>, resync: Duration) {
        loop {
            match self.sync_once().await {
                Ok(()) => {
                    let _ = tokio::time::timeout(resync, self.wake.notified()).await;
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    tracing::warn!(host = %self.host, error = %why, "network sync failed; retrying");
                    self.applied_tx.send_modify(|a| a.last_error = Some(why));
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    async fn sync_once(&self) -> anyhow::Result<()> {
        // Pulls never overlap (one task), so the state pulled last is the
        // newest: no revision check, which conductors' clocks could fool.
        let state = self.pull().await?;
        let current = self.applied();
        let started = std::time::Instant::now();
        let outcome = self
            .driver
            .apply_network(&state)
            .await
            .map_err(|e| anyhow::anyhow!(e.full_message()))?;
        cloud_service_common::metrics::observe(
            "cloud_compute_network_apply_seconds",
            "Time a compute agent takes to apply its host's data plane.",
            &[],
            started.elapsed().as_secs_f64(),
        );
        tracing::debug!(
            revision = state.revision,
            networks = state.networks.len(),
            ports = state.ports.len(),
            "network state applied"
        );
        // Ports of a network that failed are not ready; the failure is
        // what a spawn waiting for them reports.
        let last_error = (!outcome.failed.is_empty()).then(|| {
            outcome
                .failed
                .iter()
                .map(|(net, why)| format!("network {net}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        self.applied_tx.send_replace(Applied {
            revision: state.revision,
            ports: state
                .ports
                .iter()
                .filter(|p| !outcome.failed.contains_key(&p.network_id))
                .map(|p| p.id.clone())
                .collect(),
            count: current.count + 1,
            last_error: last_error.clone(),
        });
        match last_error {
            // Retried like a failed pull; the ports that are ready stay so.
            Some(why) => Err(anyhow::anyhow!(why)),
            None => Ok(()),
        }
    }

    async fn pull(&self) -> anyhow::Result<HostNetwork> {
        let msg = ConductorMsg::GetHostNetwork {
            host: self.host.clone(),
        };
        let env = cloud_rpc::encode(&msg, "req-network-sync")?;
        let reply = self.bus.call(CONDUCTOR_QUEUE, env, PULL_TIMEOUT).await?;
        match cloud_rpc::decode_reply::<HostNetwork>(&reply)? {
            Reply::Ok(state) => Ok(state),
            Reply::Err(e) => Err(anyhow::anyhow!("the conductor refused: {e}")),
            Reply::Unavailable(e) => Err(anyhow::anyhow!("the conductor cannot answer now: {e}")),
        }
    }
}
