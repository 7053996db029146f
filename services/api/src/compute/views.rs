//! JSON shapes of compute resources shared by several handlers: links,
//! paging links and flavors.
//!
//! Tempest validates Nova responses with `additionalProperties: false`, so
//! every view here emits exactly the documented keys for microversion 2.1
//! and nothing more.

use cloud_model::flavor::Flavor;
use serde_json::{Value, json};

/// The unversioned compute endpoint (`http://H:P/compute`): the base of
/// `bookmark` links and of the version documents.
pub fn compute_root(base: &str) -> String {
    format!("{base}/compute")
}

/// The versioned compute endpoint the catalog advertises
/// (`http://H:P/compute/v2.1`): the base of `self` links.
pub fn v21_root(base: &str) -> String {
    format!("{base}/compute/v2.1")
}

/// Nova's `[self, bookmark]` pair for `collection/id`.
pub fn links(base: &str, collection: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/{collection}/{id}", v21_root(base))},
        {"rel": "bookmark", "href": format!("{}/{collection}/{id}", compute_root(base))},
    ])
}

/// Nova's `bookmark`-only link list (used inside other resources, such as
/// a server's `flavor` and `image`).
pub fn bookmark_links(base: &str, collection: &str, id: &str) -> Value {
    json!([{"rel": "bookmark", "href": format!("{}/{collection}/{id}", compute_root(base))}])
}

/// Nova's `<collection>_links` for a page that may have a successor: a
/// `next` link repeating the query with `marker` set to the last item.
/// `path` is relative to the v2.1 root (`flavors/detail`).
pub fn next_link(base: &str, path: &str, query: &[(String, String)], marker: &str) -> Value {
    let mut pairs: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("marker", marker));
    let qs = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    json!([{"rel": "next", "href": format!("{}/{path}?{qs}", v21_root(base))}])
}

/// Percent-encodes a query component (everything but unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A flavor in `GET /flavors`: id, name and links only.
pub fn flavor_summary(f: &Flavor, base: &str) -> Value {
    json!({
        "id": f.id.as_str(),
        "name": f.name,
        "links": links(base, "flavors", f.id.as_str()),
    })
}

/// A flavor in full, as `GET /flavors/{id}`, `/flavors/detail` and
/// `POST /flavors` show it at 2.1. `swap` is `""` when there is none
/// (Nova's quirk, which clients expect).
pub fn flavor_detail(f: &Flavor, base: &str) -> Value {
    let swap = if f.swap_mb == 0 {
        json!("")
    } else {
        json!(f.swap_mb)
    };
    json!({
        "id": f.id.as_str(),
        "name": f.name,
        "ram": f.ram_mb,
        "vcpus": f.vcpus,
        "disk": f.disk_gb,
        "swap": swap,
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": f.disabled,
        "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": f.rxtx_factor,
        "links": links(base, "flavors", f.id.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_replace_the_marker() {
        let q = vec![
            ("limit".to_owned(), "2".to_owned()),
            ("marker".to_owned(), "old".to_owned()),
            ("is_public".to_owned(), "None".to_owned()),
        ];
        let l = next_link("http://h", "flavors/detail", &q, "a b&c");
        assert_eq!(
            l[0]["href"],
            "http://h/compute/v2.1/flavors/detail?limit=2&is_public=None&marker=a%20b%26c"
        );
        assert_eq!(l[0]["rel"], "next");
    }
}
