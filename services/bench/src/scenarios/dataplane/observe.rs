//! Seeing when a host's data plane carries a change, without polling the
//! kernel: each namespace host's driver is wrapped in an
//! [`ObservedDriver`] that records every state the agent applied (the
//! whole desired state, with when its apply started and returned), and the
//! bus in a [`CountingBus`] that counts the agents' pulls
//! (`get_host_network` calls) and the conductor's nudges
//! (`sync_network` casts).
//!
//! When an apply returns, the kernel holds the state: the data plane
//! builds bridges, VXLAN forwarding entries and DHCP files, then loads the
//! host's whole nftables ruleset in one `nft -f` transaction near the end
//! (so filtering may take effect a little before the apply returns; the
//! rule phase's TCP figure shows by how much).

use async_trait::async_trait;
use cloud_bus::{Bus, BusError, Consumer, Envelope};
use cloud_driver::{
    DiskSnapshot, Driver, DriverError, HostNetwork, HostResources, ImageSpec, NetworkApplied,
    NicSpec, RebootKind, SerialEndpoint, VmInfo, VmSpec,
};
use cloud_model::InstanceId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One successful apply.
#[derive(Clone, Debug)]
pub struct ApplyRecord {
    /// When the agent handed the state to the driver.
    pub started: Instant,
    /// When the driver returned (the kernel carries the state).
    pub finished: Instant,
    /// The state applied.
    pub state: Arc<HostNetwork>,
}

/// A driver that records what its data plane applied.
pub struct ObservedDriver {
    inner: Arc<dyn Driver>,
    log: Mutex<Vec<ApplyRecord>>,
    applied: watch::Sender<u64>,
}

impl ObservedDriver {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Driver>) -> Arc<ObservedDriver> {
        Arc::new(ObservedDriver {
            inner,
            log: Mutex::new(Vec::new()),
            applied: watch::channel(0).0,
        })
    }

    /// Forgets the applies so far; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut log = self.log.lock().expect("apply log");
        let n = log.len();
        log.clear();
        n
    }

    /// Applies recorded since the last [`ObservedDriver::clear`].
    pub fn count(&self) -> usize {
        self.log.lock().expect("apply log").len()
    }

    /// The last state applied, if any since the last clear.
    pub fn last(&self) -> Option<ApplyRecord> {
        self.log.lock().expect("apply log").last().cloned()
    }

    /// The first apply since the last clear whose state satisfies `want`,
    /// waiting for it up to `timeout`.
    pub async fn first(
        &self,
        want: impl Fn(&HostNetwork) -> bool,
        timeout: Duration,
    ) -> Option<ApplyRecord> {
        let mut rx = self.applied.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .log
                .lock()
                .expect("apply log")
                .iter()
                .find(|r| want(&r.state))
                .cloned();
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }
}

#[async_trait]
impl Driver for ObservedDriver {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn host_resources(&self) -> Result<HostResources, DriverError> {
        self.inner.host_resources().await
    }

    async fn spawn(&self, spec: &VmSpec) -> Result<(), DriverError> {
        self.inner.spawn(spec).await
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.destroy(id).await
    }

    async fn power_on(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.power_on(id).await
    }

    async fn power_off(&self, id: InstanceId, timeout: Duration) -> Result<(), DriverError> {
        self.inner.power_off(id, timeout).await
    }

    async fn reboot(&self, id: InstanceId, kind: RebootKind) -> Result<(), DriverError> {
        self.inner.reboot(id, kind).await
    }

    async fn pause(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.pause(id).await
    }

    async fn unpause(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.unpause(id).await
    }

    async fn suspend(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.suspend(id).await
    }

    async fn resume(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.resume(id).await
    }

    async fn inject_nmi(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.inject_nmi(id).await
    }

    async fn rebuild(&self, spec: &VmSpec) -> Result<(), DriverError> {
        self.inner.rebuild(spec).await
    }

    async fn snapshot(
        &self,
        id: InstanceId,
        dest: &std::path::Path,
    ) -> Result<DiskSnapshot, DriverError> {
        self.inner.snapshot(id, dest).await
    }

    async fn rescue(&self, spec: &VmSpec, rescue_image: &ImageSpec) -> Result<(), DriverError> {
        self.inner.rescue(spec, rescue_image).await
    }

    async fn unrescue(&self, id: InstanceId) -> Result<(), DriverError> {
        self.inner.unrescue(id).await
    }

    async fn serial_console(&self, id: InstanceId) -> Result<SerialEndpoint, DriverError> {
        self.inner.serial_console(id).await
    }

    async fn attach_interface(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        self.inner.attach_interface(id, nic).await
    }

    async fn detach_interface(&self, id: InstanceId, nic: &NicSpec) -> Result<(), DriverError> {
        self.inner.detach_interface(id, nic).await
    }

    async fn info(&self, id: InstanceId) -> Result<VmInfo, DriverError> {
        self.inner.info(id).await
    }

    async fn list(&self) -> Result<Vec<VmInfo>, DriverError> {
        self.inner.list().await
    }

    async fn console_output(
        &self,
        id: InstanceId,
        max_bytes: usize,
    ) -> Result<String, DriverError> {
        self.inner.console_output(id, max_bytes).await
    }

    async fn apply_network(&self, desired: &HostNetwork) -> Result<NetworkApplied, DriverError> {
        let started = Instant::now();
        let outcome = self.inner.apply_network(desired).await?;
        let record = ApplyRecord {
            started,
            finished: Instant::now(),
            state: Arc::new(desired.clone()),
        };
        self.log.lock().expect("apply log").push(record);
        self.applied.send_modify(|n| *n += 1);
        Ok(outcome)
    }

    async fn periodic_maintenance(&self) {
        self.inner.periodic_maintenance().await;
    }
}

/// A bus that counts the data plane's messages.
pub struct CountingBus {
    inner: Arc<dyn Bus>,
    pulls: AtomicU64,
    nudges: AtomicU64,
}

/// Counts of [`CountingBus`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusCounts {
    /// `get_host_network` calls (an agent pulling its whole state).
    pub pulls: u64,
    /// `sync_network` casts (the conductor telling a host to pull).
    pub nudges: u64,
}

impl CountingBus {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Bus>) -> Arc<CountingBus> {
        Arc::new(CountingBus {
            inner,
            pulls: AtomicU64::new(0),
            nudges: AtomicU64::new(0),
        })
    }

    /// The counts so far.
    pub fn counts(&self) -> BusCounts {
        BusCounts {
            pulls: self.pulls.load(Ordering::Relaxed),
            nudges: self.nudges.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl Bus for CountingBus {
    async fn cast(&self, queue: &str, msg: Envelope) -> Result<(), BusError> {
        if msg.kind == "sync_network" {
            self.nudges.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.cast(queue, msg).await
    }

    async fn call(
        &self,
        queue: &str,
        msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        if msg.kind == "get_host_network" {
            self.pulls.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.call(queue, msg, timeout).await
    }

    async fn broadcast(&self, topic: &str, msg: Envelope) -> Result<(), BusError> {
        self.inner.broadcast(topic, msg).await
    }

    async fn consume(&self, queue: &str) -> Result<Consumer, BusError> {
        self.inner.consume(queue).await
    }

    async fn subscribe(&self, topic: &str) -> Result<Consumer, BusError> {
        self.inner.subscribe(topic).await
    }
}

/// Waits until no agent pulled or applied anything for `quiet` (the storm
/// of pulls after a change is over), at most `timeout`. Returns whether it
/// got quiet.
pub async fn settle(
    bus: &CountingBus,
    drivers: &[Arc<ObservedDriver>],
    quiet: Duration,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let total = || drivers.iter().map(|d| d.count() as u64).sum::<u64>() + bus.counts().pulls;
    let mut last = total();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = total();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return true;
        }
    }
    false
}
