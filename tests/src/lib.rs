//! Shared helpers of the end-to-end scenarios in `tests/`.

pub mod processes;

use cloud_model::ImageId;
use cloud_store::Store;

/// Records an active public image (the fake driver needs no bytes; the
/// image API's own tests cover uploads).
pub async fn active_image(store: &Store, owner: &str) -> ImageId {
    cloud_test_utils::record_active_image(store, owner, "cirros")
        .await
        .expect("image recorded")
}

/// Lifts the compute quotas of a project (scale scenarios boot many servers).
pub async fn unlimited_quota(store: &Store, project: &str) {
    cloud_test_utils::lift_compute_quotas(store, project)
        .await
        .expect("quota set");
}

/// Creates a flavor with extra specs through the store.
pub async fn flavor(store: &Store, id: &str, vcpus: i64, ram_mb: i64, specs: &[(&str, &str)]) {
    cloud_test_utils::record_flavor(store, id, &format!("test.{id}"), vcpus, ram_mb, specs)
        .await
        .expect("flavor");
}
