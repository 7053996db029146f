//! The instance's records, and the OpenStack tree built from them
//! (`/openstack/<version>/...`), in Nova's shapes.

use super::{MetadataError, Reply};
use base64::Engine;
use cloud_driver::NicSpec;
use cloud_driver::metadata::{self, MetaData};
use cloud_model::instance::Instance;
use cloud_model::{Error, InstanceId};
use cloud_store::{PortFilter, Scope, Store};

/// The dated OpenStack metadata versions, oldest first (Nova's
/// `OPENSTACK_VERSIONS` up to Rocky, the last one whose additions we
/// serve). Every version serves the same documents; a version only
/// decides which files exist, as in Nova.
pub const OPENSTACK_VERSIONS: [&str; 8] = [
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
];

/// The first version with `vendor_data.json` (Havana).
const HAVANA: &str = "2013-10-17";
/// The first version with `network_data.json` (Liberty).
const LIBERTY: &str = "2015-10-15";
/// The first version with `vendor_data2.json` (Newton).
const NEWTON_TWO: &str = "2016-10-06";

/// Everything served about one guest, read from the store once the
/// request's signature named it.
pub struct Guest {
    /// The instance record (live: deleted instances are not found).
    pub instance: Instance,
    /// Its user data, decoded.
    pub user_data: Option<Vec<u8>>,
    /// Its NICs, in port creation order (the order the conductor gave the
    /// host, so links are named and numbered as on the config drive).
    pub nics: Vec<NicSpec>,
}

impl Guest {
    /// Loads the live instance `id` (the verified `X-Instance-ID`) with its
    /// ports. Not a UUID, unknown or deleted: `NotFound`.
    pub async fn load(store: &Store, id: &str) -> Result<Guest, MetadataError> {
        let id = InstanceId::parse(id).ok_or(MetadataError::NotFound)?;
        let instance = match store.instance_get(id, &Scope::All).await {
            Ok(i) => i,
            Err(Error::NotFound { .. }) => return Err(MetadataError::NotFound),
            Err(e) => return Err(MetadataError::Internal(e.to_string())),
        };
        let user_data = match &instance.user_data {
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| {
                        MetadataError::Internal(format!("stored user data is not base64: {e}"))
                    })?,
            ),
            None => None,
        };
        let nics = nics(store, id).await?;
        Ok(Guest {
            instance,
            user_data,
            nics,
        })
    }

    /// `meta_data.json`'s input, the same fields the config drive uses.
    pub fn meta_data(&self) -> MetaData<'_> {
        let i = &self.instance;
        MetaData {
            uuid: i.id.to_string(),
            name: &i.name,
            hostname: &i.hostname,
            availability_zone: i.zone(),
            launch_index: u32::try_from(i.launch_index).unwrap_or(0),
            project_id: i.project_id.as_str(),
            key: match (&i.key_name, &i.key_data) {
                (Some(n), Some(k)) => Some((n.as_str(), k.as_str())),
                _ => None,
            },
            metadata: &i.metadata,
        }
    }
}

/// The NICs of instance `id`, built as the conductor builds them for the
/// host. A port whose network or subnet vanished meanwhile is left out
/// (or shown without its address) rather than failing the request.
async fn nics(store: &Store, id: InstanceId) -> Result<Vec<NicSpec>, MetadataError> {
    let internal = |e: Error| MetadataError::Internal(e.to_string());
    let ports = store
        .port_list(&PortFilter {
            device_id: Some(id.to_string()),
            ..PortFilter::all(Scope::All)
        })
        .await
        .map_err(internal)?;
    let mut out = Vec::with_capacity(ports.len());
    for port in &ports {
        let network = match store.network_get(port.network_id, &Scope::All).await {
            Ok(n) => n,
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(internal(e)),
        };
        let subnet = match port.fixed_ips.first() {
            Some(f) => match store.subnet_get(f.subnet_id, &Scope::All).await {
                Ok(s) => Some(s),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(internal(e)),
            },
            None => None,
        };
        out.push(metadata::nic_from_records(port, &network, subnet.as_ref()));
    }
    Ok(out)
}

/// Whether `version` is `latest` or a known dated OpenStack version.
fn known_version(version: &str) -> bool {
    version == "latest" || OPENSTACK_VERSIONS.contains(&version)
}

/// Whether `version` has what `since` introduced (`latest` has all).
fn at_least(version: &str, since: &str) -> bool {
    version == "latest" || version >= since
}

/// `/openstack/<rest>`: the version list, a version's files, or a file.
pub fn openstack(guest: &Guest, rest: &[&str]) -> Result<Reply, MetadataError> {
    match rest {
        [] => Ok(Reply::list(
            OPENSTACK_VERSIONS.iter().copied().chain(["latest"]),
        )),
        [version] if known_version(version) => Ok(Reply::list(files(guest, version))),
        [version, file] if known_version(version) && files(guest, version).contains(file) => {
            Ok(match *file {
                "meta_data.json" => Reply::json(&metadata::meta_data(&guest.meta_data())),
                "network_data.json" => Reply::json(&metadata::network_data(&guest.nics, |nic| {
                    metadata::tap_link_id(&nic.port_id)
                })),
                "user_data" => Reply::bytes(guest.user_data.clone().unwrap_or_default()),
                // No vendor data providers: Nova's answer then is `{}`.
                _ => Reply::json(&serde_json::json!({})),
            })
        }
        _ => Err(MetadataError::NotFound),
    }
}

/// The files of `version`, in Nova's order; `user_data` only when the
/// server has some.
fn files(guest: &Guest, version: &str) -> Vec<&'static str> {
    let mut files = vec!["meta_data.json"];
    if guest.user_data.is_some() {
        files.push("user_data");
    }
    if at_least(version, HAVANA) {
        files.push("vendor_data.json");
    }
    if at_least(version, LIBERTY) {
        files.push("network_data.json");
    }
    if at_least(version, NEWTON_TWO) {
        files.push("vendor_data2.json");
    }
    files
}
