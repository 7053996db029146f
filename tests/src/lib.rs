//! Shared helpers of the end-to-end scenarios in `tests/`.

use cloud_model::image::Image;
use cloud_model::{ImageId, ProjectId, Timestamp};
use cloud_store::Store;
use std::collections::BTreeMap;

/// Records an active public image (the fake driver needs no bytes; the
/// image API's own tests cover uploads).
pub async fn active_image(store: &Store, owner: &str) -> ImageId {
    let id = ImageId::new();
    let now = Timestamp::now();
    store
        .image_create(&Image {
            id,
            owner: ProjectId::from_string(owner),
            name: Some("cirros".to_owned()),
            status: "active".to_owned(),
            disk_format: Some("qcow2".to_owned()),
            container_format: Some("bare".to_owned()),
            visibility: "public".to_owned(),
            size: Some(1024),
            virtual_size: None,
            checksum: Some("00".repeat(16)),
            os_hash_algo: Some("sha512".to_owned()),
            os_hash_value: Some("00".repeat(64)),
            min_disk: 0,
            min_ram: 0,
            protected: false,
            os_hidden: false,
            properties: BTreeMap::new(),
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("image recorded");
    id
}
