//! Images recorded straight in the store, for scenarios that boot on the
//! fake driver (it never reads image bytes, so nothing is uploaded; the
//! image API's own tests cover uploads).

use cloud_model::image::Image;
use cloud_model::{Error, ImageId, ProjectId, Timestamp};
use cloud_store::Store;
use std::collections::BTreeMap;

/// Records an active public qcow2 image named `name`, owned by `owner`.
pub async fn record_active_image(store: &Store, owner: &str, name: &str) -> Result<ImageId, Error> {
    let id = ImageId::new();
    let now = Timestamp::now();
    store
        .image_create(&Image {
            id,
            owner: ProjectId::from_string(owner),
            name: Some(name.to_owned()),
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
        .await?;
    Ok(id)
}
