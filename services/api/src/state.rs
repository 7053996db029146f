//! Shared state of the API handlers.

use crate::config::ApiConfig;
use cloud_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a handler may need. Cloned per request (an `Arc` inside).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ApiConfig,
}

impl AppState {
    /// Builds the state from a connected store and the configuration.
    pub fn new(store: Store, config: ApiConfig) -> Self {
        AppState {
            inner: Arc::new(Inner { store, config }),
        }
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Directory of the image file store.
    pub fn image_dir(&self) -> PathBuf {
        self.inner.config.data_dir.join("images")
    }
}
