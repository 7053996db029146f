//! The EC2-style tree (`/<version>/meta-data/...`, `/<version>/user-data`),
//! as Nova serves it: plain text, directories listed one entry a line,
//! sub-directories with a trailing `/`.
//!
//! EC2 ids: Nova prints `i-%08x` / `ami-%08x` of the instance's and
//! image's internal integer ids. This cloud has no integer ids, so it
//! derives them from the UUIDs: the first 8 hex digits (32 bits) of the
//! UUID, e.g. instance `6d1f6a43-4c43-...` is `i-6d1f6a43`. That is stable
//! (the same instance always gets the same id, on every API replica, with
//! nothing stored), looks like Nova's, and leads an operator back to the
//! server by prefix. Those 32 bits are random in v4 UUIDs, so two servers
//! can share an EC2 id only by chance (about 1 in 4 billion per pair);
//! guests use it to tell their own boots apart (cloud-init's
//! per-instance state), never to look anything up.

use super::content::Guest;
use super::{MetadataError, Reply};
use std::collections::BTreeMap;

/// The EC2 metadata versions (Nova's `VERSIONS`), oldest first; `latest`
/// comes after them.
pub const EC2_VERSIONS: [&str; 9] = [
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

/// Whether `v` is `latest` or a known dated EC2 version.
pub fn known_version(v: &str) -> bool {
    v == "latest" || EC2_VERSIONS.contains(&v)
}

/// The EC2 id of a UUID: `prefix` + its first 8 hex digits (see the
/// module documentation for why).
pub fn ec2_id(prefix: &str, uuid: uuid::Uuid) -> String {
    let simple = uuid.simple().to_string();
    format!("{prefix}-{}", &simple[..8])
}

/// One node of the tree.
enum Node {
    /// A value, printed as is.
    Value(String),
    /// A directory. `label` replaces `name/` in its parent's listing
    /// (`0=mykey` for a public key, as EC2 shows it).
    Dir {
        label: Option<String>,
        entries: BTreeMap<&'static str, Node>,
    },
}

impl Node {
    fn dir(entries: BTreeMap<&'static str, Node>) -> Node {
        Node::Dir {
            label: None,
            entries,
        }
    }

    fn value(v: impl Into<String>) -> Node {
        Node::Value(v.into())
    }

    /// What a GET of this node answers: a value, or the listing.
    fn render(&self) -> Reply {
        match self {
            Node::Value(v) => Reply::text(v.clone()),
            Node::Dir { entries, .. } => {
                Reply::list(entries.iter().map(|(name, node)| match node {
                    Node::Value(_) => (*name).to_owned(),
                    Node::Dir { label: Some(l), .. } => l.clone(),
                    Node::Dir { label: None, .. } => format!("{name}/"),
                }))
            }
        }
    }
}

/// Whether `version` has what `since` introduced (`latest` has all;
/// dated versions compare as text, `1.0` before every date).
fn at_least(version: &str, since: &str) -> bool {
    match version {
        "latest" => true,
        "1.0" => false,
        v => v >= since,
    }
}

/// The `meta-data` tree of `guest` for `version`, with Nova's keys and
/// version gates.
fn meta_data(guest: &Guest, version: &str) -> Node {
    let i = &guest.instance;
    let mut md: BTreeMap<&'static str, Node> = BTreeMap::new();
    // Nova appends its `dhcp_domain` here; this cloud's guests have their
    // bare hostname, as in meta_data.json.
    let hostname = i.hostname.clone();
    md.insert("ami-id", Node::value(ec2_id("ami", i.image_id.as_uuid())));
    md.insert("ami-launch-index", Node::value(i.launch_index.to_string()));
    md.insert("instance-id", Node::value(ec2_id("i", i.id.as_uuid())));
    md.insert("hostname", Node::value(hostname.clone()));
    // The first fixed address of the first port. Nova falls back to the
    // requester's address; that comes from a header we do not trust, so
    // a server without an address has no `local-ipv4`.
    if let Some(ip) = guest.nics.iter().find_map(|n| n.ip) {
        md.insert("local-ipv4", Node::value(ip.to_string()));
    }
    md.insert("reservation-id", Node::value(i.reservation_id.clone()));
    md.insert("security-groups", Node::value(i.security_groups.join("\n")));
    if let (Some(name), Some(key)) = (&i.key_name, &i.key_data) {
        md.insert(
            "public-keys",
            Node::dir(BTreeMap::from([(
                "0",
                Node::Dir {
                    label: Some(format!("0={name}")),
                    entries: BTreeMap::from([("openssh-key", Node::value(key.clone()))]),
                },
            )])),
        );
    }
    if at_least(version, "2007-01-19") {
        md.insert("local-hostname", Node::value(hostname.clone()));
        md.insert("public-hostname", Node::value(hostname));
        // No floating addresses yet: Nova's answer then is empty.
        md.insert("public-ipv4", Node::value(""));
    }
    if at_least(version, "2007-08-29") {
        md.insert("instance-type", Node::value(i.flavor.name.clone()));
    }
    if at_least(version, "2007-12-15") {
        // The root disk is the first virtio disk, as the libvirt driver
        // attaches it.
        md.insert(
            "block-device-mapping",
            Node::dir(BTreeMap::from([
                ("ami", Node::value("vda")),
                ("root", Node::value("/dev/vda")),
            ])),
        );
    }
    if at_least(version, "2008-02-01") {
        md.insert(
            "placement",
            Node::dir(BTreeMap::from([(
                "availability-zone",
                Node::value(i.zone().to_owned()),
            )])),
        );
    }
    if at_least(version, "2008-09-01") {
        md.insert("instance-action", Node::value("none"));
    }
    Node::dir(md)
}

/// `/<version>/<rest>` for a known EC2 `version`: the version's listing,
/// `user-data`, or a node of `meta-data`.
pub fn ec2(guest: &Guest, version: &str, rest: &[&str]) -> Result<Reply, MetadataError> {
    match rest {
        [] => {
            let mut entries = vec!["meta-data/"];
            if guest.user_data.is_some() {
                entries.push("user-data");
            }
            Ok(Reply::list(entries))
        }
        ["user-data"] => guest
            .user_data
            .clone()
            .map(Reply::bytes)
            .ok_or(MetadataError::NotFound),
        ["meta-data", path @ ..] => {
            let mut node = &meta_data(guest, version);
            for segment in path {
                node = match node {
                    Node::Dir { entries, .. } => {
                        entries.get(segment).ok_or(MetadataError::NotFound)?
                    }
                    Node::Value(_) => return Err(MetadataError::NotFound),
                };
            }
            Ok(node.render())
        }
        _ => Err(MetadataError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_ids_are_the_uuids_first_32_bits() {
        let u = uuid::Uuid::parse_str("6d1f6a43-4c43-4b1e-9c0e-0e5e3b7c8a10").unwrap();
        assert_eq!(ec2_id("i", u), "i-6d1f6a43");
        assert_eq!(ec2_id("ami", u), "ami-6d1f6a43");
    }

    #[test]
    fn versions_gate_keys_as_nova() {
        assert!(at_least("latest", "2008-09-01"));
        assert!(at_least("2009-04-04", "2008-09-01"));
        assert!(!at_least("2007-01-19", "2007-08-29"));
        assert!(!at_least("1.0", "2007-01-19"));
        assert!(known_version("2009-04-04") && known_version("latest"));
        assert!(!known_version("2010-01-01"));
    }
}
