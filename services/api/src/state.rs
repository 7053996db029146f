//! Shared state of the API handlers.

use crate::config::ApiConfig;
use cloud_bus::{Bus, BusError, CONDUCTOR_QUEUE, InProcBus};
use cloud_rpc::ConductorMsg;
use cloud_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

/// Everything a handler may need. Cloned per request (an `Arc` inside).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ApiConfig,
    bus: Arc<dyn Bus>,
    /// When this API last purged expired tokens (microseconds since the
    /// epoch; 0: not yet). See `identity::tokens`.
    last_token_purge: AtomicI64,
}

impl AppState {
    /// Builds the state from a connected store and the configuration, with
    /// an in-process bus nobody consumes (an API without a control plane:
    /// server builds wait in the queue).
    pub fn new(store: Store, config: ApiConfig) -> Self {
        Self::with_bus(store, config, Arc::new(InProcBus::new()))
    }

    /// Builds the state with the bus the control plane listens on.
    pub fn with_bus(store: Store, config: ApiConfig, bus: Arc<dyn Bus>) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                config,
                bus,
                last_token_purge: AtomicI64::new(0),
            }),
        }
    }

    /// The message bus to the conductors and compute hosts.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    /// Casts `msg` to the conductors' queue on behalf of request
    /// `request_id`. The caller decides what a failure means (usually a
    /// warning: the work was recorded and is resumed or re-pulled later).
    pub async fn cast_to_conductor(
        &self,
        msg: &ConductorMsg,
        request_id: &str,
    ) -> Result<(), BusError> {
        let env = cloud_rpc::encode(msg, request_id)?;
        self.inner.bus.cast(CONDUCTOR_QUEUE, env).await
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// When this API last purged expired tokens (microseconds since the
    /// epoch, 0 before the first purge).
    pub fn last_token_purge(&self) -> &AtomicI64 {
        &self.inner.last_token_purge
    }

    /// Directory of the image file store.
    pub fn image_dir(&self) -> PathBuf {
        self.inner.config.data_dir.join("images")
    }
}
