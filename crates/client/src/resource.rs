//! Generic create/read/list/delete over every resource, and name-or-id
//! lookups.
//!
//! Resources stay `serde_json::Value`s with the API's own field names (see
//! docs/adr/0003-api-views-live-in-the-api.md for why there is no shared
//! types crate); a [`Kind`] says where a resource lives and how its
//! responses are wrapped, and [`ValueExt`] reads the common fields.

use crate::error::{Error, Result};
use crate::session::{Client, Request, Service};
use reqwest::Method;
use serde_json::Value;

/// Where a kind of resource lives and how the API wraps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// Human name (`server`, `security group`).
    pub label: &'static str,
    /// Its service.
    pub service: Service,
    /// Collection path (`servers`).
    pub path: &'static str,
    /// Path of the detailed listing (`servers/detail`).
    pub list_path: &'static str,
    /// Query always sent with listings (flavors: all, not just public).
    pub list_query: &'static [(&'static str, &'static str)],
    /// Key wrapping one resource (`server`); `None` when unwrapped (Glance).
    pub singular: Option<&'static str>,
    /// Key of the list (`servers`).
    pub plural: &'static str,
    /// The field holding the name.
    pub name_key: &'static str,
    /// Query parameter filtering by name on the server side, if any.
    pub name_filter: Option<&'static str>,
    /// Whether ids are UUIDs (then a non-UUID can only be a name).
    pub uuid_ids: bool,
}

const fn kind(
    label: &'static str,
    service: Service,
    path: &'static str,
    singular: &'static str,
    plural: &'static str,
) -> Kind {
    Kind {
        label,
        service,
        path,
        list_path: path,
        list_query: &[],
        singular: Some(singular),
        plural,
        name_key: "name",
        name_filter: Some("name"),
        uuid_ids: true,
    }
}

/// Servers (Nova).
pub const SERVER: Kind = Kind {
    list_path: "servers/detail",
    ..kind("server", Service::Compute, "servers", "server", "servers")
};
/// Flavors (Nova); ids are free-form strings.
pub const FLAVOR: Kind = Kind {
    list_path: "flavors/detail",
    list_query: &[("is_public", "None")],
    name_filter: None,
    uuid_ids: false,
    ..kind("flavor", Service::Compute, "flavors", "flavor", "flavors")
};
/// Keypairs (Nova); named, no ids.
pub const KEYPAIR: Kind = Kind {
    name_filter: None,
    uuid_ids: false,
    ..kind(
        "keypair",
        Service::Compute,
        "os-keypairs",
        "keypair",
        "keypairs",
    )
};
/// Server groups (Nova).
pub const SERVER_GROUP: Kind = Kind {
    name_filter: None,
    ..kind(
        "server group",
        Service::Compute,
        "os-server-groups",
        "server_group",
        "server_groups",
    )
};
/// Hypervisors (Nova, admin).
pub const HYPERVISOR: Kind = Kind {
    list_path: "os-hypervisors/detail",
    name_key: "hypervisor_hostname",
    name_filter: None,
    uuid_ids: false,
    ..kind(
        "hypervisor",
        Service::Compute,
        "os-hypervisors",
        "hypervisor",
        "hypervisors",
    )
};
/// Compute services (Nova, admin).
pub const COMPUTE_SERVICE: Kind = Kind {
    name_key: "host",
    name_filter: None,
    uuid_ids: false,
    ..kind(
        "service",
        Service::Compute,
        "os-services",
        "service",
        "services",
    )
};
/// Images (Glance: responses are not wrapped).
pub const IMAGE: Kind = Kind {
    singular: None,
    ..kind("image", Service::Image, "images", "image", "images")
};
/// Networks (Neutron).
pub const NETWORK: Kind = kind(
    "network",
    Service::Network,
    "networks",
    "network",
    "networks",
);
/// Subnets (Neutron).
pub const SUBNET: Kind = kind("subnet", Service::Network, "subnets", "subnet", "subnets");
/// Ports (Neutron).
pub const PORT: Kind = kind("port", Service::Network, "ports", "port", "ports");
/// Security groups (Neutron).
pub const SECURITY_GROUP: Kind = kind(
    "security group",
    Service::Network,
    "security-groups",
    "security_group",
    "security_groups",
);
/// Security group rules (Neutron).
pub const SECURITY_GROUP_RULE: Kind = Kind {
    name_filter: None,
    ..kind(
        "security group rule",
        Service::Network,
        "security-group-rules",
        "security_group_rule",
        "security_group_rules",
    )
};

/// Reading the common fields of a resource.
pub trait ValueExt {
    /// The `id` as text (Nova keypairs and hypervisors have integer ids).
    fn id_str(&self) -> String;
    /// A text field, `""` when absent.
    fn text(&self, key: &str) -> &str;
}

impl ValueExt for Value {
    fn id_str(&self) -> String {
        match &self["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }

    fn text(&self, key: &str) -> &str {
        self[key].as_str().unwrap_or_default()
    }
}

/// Percent-encodes one path segment (names may hold spaces or slashes).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `s` is shaped like a UUID.
pub fn looks_like_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Escapes regex metacharacters: Nova's `name` filter is a regular
/// expression, and we want the literal name.
fn regex_literal(s: &str) -> String {
    let mut out = String::from("^");
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

impl Client {
    fn unwrap_one(kind: Kind, v: Value, url: &str) -> Result<Value> {
        match kind.singular {
            None => Ok(v),
            Some(key) => match v.get(key) {
                Some(x) => Ok(x.clone()),
                None => Err(Error::Protocol {
                    url: url.to_owned(),
                    detail: format!("no '{key}' in the answer"),
                }),
            },
        }
    }

    /// One resource by id (keypairs: by name).
    pub async fn get(&self, kind: Kind, id: &str) -> Result<Value> {
        let r = self
            .send(Request::new(
                Method::GET,
                kind.service,
                format!("{}/{}", kind.path, encode_segment(id)),
            ))
            .await?;
        Self::unwrap_one(kind, r.json()?, &r.url)
    }

    /// Every resource of `kind` matching `query`, following pagination links.
    pub async fn list(&self, kind: Kind, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut req = Request::new(Method::GET, kind.service, kind.list_path)
            .query(kind.list_query.iter().copied())
            .query(query.iter().copied());
        for _ in 0..10_000 {
            let r = self.send(req.clone()).await?;
            let body = r.json()?;
            let items = body[kind.plural]
                .as_array()
                .ok_or_else(|| Error::Protocol {
                    url: r.url.clone(),
                    detail: format!("no '{}' list in the answer", kind.plural),
                })?;
            for item in items {
                // Nova wraps each keypair of a listing in {"keypair": ...}.
                match (kind == KEYPAIR, item.get("keypair")) {
                    (true, Some(inner)) => out.push(inner.clone()),
                    _ => out.push(item.clone()),
                }
            }
            let next = next_link(&body, kind.plural);
            match next {
                Some(href) if !items.is_empty() => {
                    let url = if href.starts_with('/') {
                        // Glance: relative to the unversioned image root.
                        let base = self.endpoint(kind.service).await?;
                        let root = base.trim_end_matches("/v2");
                        format!("{root}{href}")
                    } else {
                        href
                    };
                    req = Request::new(Method::GET, kind.service, url);
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Creates a resource from its (already wrapped) body; `idempotency_key`
    /// makes a retried create return the first one's result.
    pub async fn create(
        &self,
        kind: Kind,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut req = Request::new(Method::POST, kind.service, kind.path).json(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let r = self.send(req).await?;
        Self::unwrap_one(kind, r.json()?, &r.url)
    }

    /// Updates a resource with PUT (its body already wrapped).
    pub async fn update(&self, kind: Kind, id: &str, body: Value) -> Result<Value> {
        let r = self
            .send(
                Request::new(
                    Method::PUT,
                    kind.service,
                    format!("{}/{}", kind.path, encode_segment(id)),
                )
                .json(body),
            )
            .await?;
        Self::unwrap_one(kind, r.json()?, &r.url)
    }

    /// Deletes a resource by id (keypairs: by name).
    pub async fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        self.send(Request::new(
            Method::DELETE,
            kind.service,
            format!("{}/{}", kind.path, encode_segment(id)),
        ))
        .await?;
        Ok(())
    }

    /// The resource the user means by `name_or_id`: the one with that id,
    /// else the only one with that exact name. Several with that name is
    /// [`Error::Ambiguous`], listing them.
    pub async fn find(&self, kind: Kind, name_or_id: &str) -> Result<Value> {
        if name_or_id.is_empty() {
            return Err(Error::Invalid(format!("empty {} name", kind.label)));
        }
        if !kind.uuid_ids || looks_like_uuid(name_or_id) {
            match self.get(kind, name_or_id).await {
                Ok(v) => return Ok(v),
                Err(e) if matches!(e.status(), Some(400 | 403 | 404)) => {}
                Err(e) => return Err(e),
            }
        }
        let filter;
        let query: Vec<(&str, &str)> = match kind.name_filter {
            Some(key) => {
                filter = if kind == SERVER {
                    regex_literal(name_or_id)
                } else {
                    name_or_id.to_owned()
                };
                vec![(key, filter.as_str())]
            }
            None => Vec::new(),
        };
        let matches: Vec<Value> = self
            .list(kind, &query)
            .await?
            .into_iter()
            .filter(|v| v.text(kind.name_key) == name_or_id || v.id_str() == name_or_id)
            .collect();
        match matches.len() {
            0 => Err(Error::NotFound {
                kind: kind.label.to_owned(),
                name: name_or_id.to_owned(),
            }),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(Error::Ambiguous {
                kind: kind.label.to_owned(),
                name: name_or_id.to_owned(),
                matches: matches
                    .iter()
                    .map(|v| (v.id_str(), v.text(kind.name_key).to_owned()))
                    .collect(),
            }),
        }
    }

    /// The id of the resource `name_or_id` names.
    pub async fn find_id(&self, kind: Kind, name_or_id: &str) -> Result<String> {
        if kind.uuid_ids && looks_like_uuid(name_or_id) {
            return Ok(name_or_id.to_owned());
        }
        Ok(self.find(kind, name_or_id).await?.id_str())
    }
}

/// The `next` pagination link of a listing: Nova and Neutron put it in
/// `<plural>_links`, Glance in `next`.
fn next_link(body: &Value, plural: &str) -> Option<String> {
    if let Some(n) = body["next"].as_str() {
        return Some(n.to_owned());
    }
    body[format!("{plural}_links")]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")
        .and_then(|l| l["href"].as_str())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helpers() {
        assert_eq!(encode_segment("my vm/1"), "my%20vm%2F1");
        assert_eq!(regex_literal("a.b(1)"), "^a\\.b\\(1\\)$");
        assert!(looks_like_uuid("5f7c1f0e-7a53-4e5e-9f3c-1d2a3b4c5d6e"));
        assert!(!looks_like_uuid("vm1"));
        assert_eq!(json!({"id": 3}).id_str(), "3");
        assert_eq!(
            next_link(
                &json!({"servers_links": [{"rel": "next", "href": "http://x?marker=1"}]}),
                "servers"
            )
            .as_deref(),
            Some("http://x?marker=1")
        );
        assert_eq!(
            next_link(&json!({"next": "/v2/images?marker=2"}), "images").as_deref(),
            Some("/v2/images?marker=2")
        );
    }
}
