//! Building the driver's [`VmSpec`] from the server's records.

use crate::Conductor;
use base64::Engine;
use cloud_driver::metadata::nic_from_records;
use cloud_driver::{FlavorSpec, ImageSpec, NumaPlacement, VmSpec};
use cloud_model::image::Image;
use cloud_model::instance::Instance;
use cloud_model::{Error, ImageId, PortId};
use cloud_store::Scope;

/// What the driver needs to know about an image to download and verify it.
fn image_spec(image: &Image) -> ImageSpec {
    ImageSpec {
        id: image.id.to_string(),
        disk_format: image
            .disk_format
            .clone()
            .unwrap_or_else(|| "raw".to_owned()),
        size: u64::try_from(image.size.unwrap_or(0)).unwrap_or(0),
        checksum: image.checksum.clone().unwrap_or_default(),
        sha512: image.os_hash_value.clone(),
        properties: image.properties.clone(),
    }
}

impl Conductor {
    /// Everything the host needs to build the server.
    pub(crate) async fn vm_spec(&self, inst: &Instance, ports: &[PortId]) -> Result<VmSpec, Error> {
        self.vm_spec_from(inst, ports, inst.image_id).await
    }

    /// The server's spec with its root disk from image `image_id` (an
    /// unshelve boots the shelve snapshot, not the server's image).
    pub(crate) async fn vm_spec_from(
        &self,
        inst: &Instance,
        ports: &[PortId],
        image_id: ImageId,
    ) -> Result<VmSpec, Error> {
        let image = self.store.image_get(image_id, &Scope::All).await?;
        let kernel = self.linked_image(&image, "kernel_id").await?;
        let ramdisk = self.linked_image(&image, "ramdisk_id").await?;
        let mut nics = Vec::new();
        for port_id in ports {
            let port = self.store.port_get(*port_id, &Scope::All).await?;
            let network = self.store.network_get(port.network_id, &Scope::All).await?;
            let subnet = match port.fixed_ips.first() {
                Some(fixed) => Some(self.store.subnet_get(fixed.subnet_id, &Scope::All).await?),
                None => None,
            };
            let nic = nic_from_records(&port, &network, subnet.as_ref());
            nics.push(nic);
        }
        let user_data = match &inst.user_data {
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| Error::internal(format!("stored user data is not base64: {e}")))?,
            ),
            None => None,
        };
        let numa: Option<NumaPlacement> = inst
            .numa_placement
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let f = &inst.flavor;
        Ok(VmSpec {
            id: inst.id,
            name: inst.name.clone(),
            hostname: inst.hostname.clone(),
            project_id: inst.project_id.to_string(),
            user_id: inst.user_id.to_string(),
            flavor: FlavorSpec {
                id: f.id.clone(),
                name: f.name.clone(),
                vcpus: u32::try_from(f.vcpus).unwrap_or(1),
                ram_mb: u64::try_from(f.ram_mb).unwrap_or(0),
                disk_gb: u64::try_from(f.disk_gb).unwrap_or(0),
                swap_mb: u64::try_from(f.swap_mb).unwrap_or(0),
                ephemeral_gb: u64::try_from(f.ephemeral_gb).unwrap_or(0),
                extra_specs: f.extra_specs.clone(),
            },
            image: image_spec(&image),
            kernel,
            ramdisk,
            nics,
            user_data,
            metadata: inst.metadata.clone(),
            key: match (&inst.key_name, &inst.key_data) {
                (Some(n), Some(k)) => Some((n.clone(), k.clone())),
                _ => None,
            },
            availability_zone: inst.zone().to_owned(),
            launch_index: u32::try_from(inst.launch_index).unwrap_or(0),
            numa,
        })
    }

    /// The kernel or ramdisk image an image names in `property`
    /// (`kernel_id` / `ramdisk_id`). `None` when it names none, or one that
    /// is gone or unusable: the host then fails the build with a fault
    /// naming the property, as the user should see it.
    async fn linked_image(
        &self,
        image: &Image,
        property: &str,
    ) -> Result<Option<ImageSpec>, Error> {
        let Some(raw) = image.properties.get(property).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let Some(id) = ImageId::parse(raw) else {
            return Ok(None);
        };
        match self.store.image_get(id, &Scope::All).await {
            Ok(linked) if linked.status == "active" => Ok(Some(image_spec(&linked))),
            Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
