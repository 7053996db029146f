//! Removes image files whose image record is gone.
//!
//! Image records are deleted by the API (which removes the file at once)
//! and by the conductor: the snapshot of a failed or timed-out
//! `createImage` or shelve, and the shelve snapshot an unshelve has
//! booted. The conductor holds no image files (they live in the API's data
//! directory, possibly on another machine), so each API sweeps its own file
//! store every `[api] image_sweep_interval_secs`. Records are created
//! before any data is stored, so a final file without a record is garbage;
//! uploads in progress are hidden `.part` files and never touched.

use crate::image::filestore::FileStore;
use crate::state::AppState;
use cloud_model::Error;
use cloud_service_common::AbortOnDrop;
use cloud_store::{Scope, Store};
use std::time::Duration;

/// Starts the periodic sweep (none when the interval is 0); it stops when
/// the returned handle is dropped.
pub fn spawn(state: &AppState) -> Option<AbortOnDrop<()>> {
    let secs = state.config().image_sweep_interval_secs;
    if secs == 0 {
        return None;
    }
    let store = state.store().clone();
    let files = FileStore::of(state);
    Some(AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&store, &files).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed image files without a record"),
                Err(e) => tracing::warn!(error = %e, "image file sweep failed; next time"),
            }
        }
    })))
}

/// Removes the files of `files` whose image has no record in `store`;
/// returns how many it removed.
pub async fn sweep(store: &Store, files: &FileStore) -> Result<usize, Error> {
    let mut removed = 0;
    for id in files
        .ids()
        .await
        .map_err(|e| Error::internal(e.to_string()))?
    {
        match store.image_get(id, &Scope::All).await {
            Ok(_) => {}
            Err(Error::NotFound { .. }) => {
                files
                    .remove(id)
                    .await
                    .map_err(|e| Error::internal(e.to_string()))?;
                removed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
