//! Neutron list filters: any attribute of the rendered resource may be
//! given as `?attr=value`; a repeated attribute matches any of its values.
//!
//! Filtering runs on the JSON view, so every attribute a client can see it
//! can also filter by, with the same spelling (`router:external`,
//! `tenant_id`, ...). The store narrows the common single-valued filters
//! first; this module applies all of them exactly. Query parameters that
//! name no attribute (`fields`, paging, sorting, unknown keys) are ignored,
//! as Neutron ignores them.

use crate::extract::{QueryPairs, parse_bool};
use serde_json::Value;
use std::collections::BTreeMap;

/// Parameters that never filter.
const NOT_FILTERS: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "page_reverse",
    "sort_key",
    "sort_dir",
    "verbose",
];

/// The filters of one list request: attribute -> accepted values.
#[derive(Clone, Debug, Default)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Collects the filters of a query string.
    pub fn from_query(q: &QueryPairs) -> Filters {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &q.0 {
            if !NOT_FILTERS.contains(&k.as_str()) {
                map.entry(k.clone()).or_default().push(v.clone());
            }
        }
        Filters(map)
    }

    /// The value of `key` when it was given exactly once (what the store
    /// can filter on).
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.0.get(key).map(Vec::as_slice) {
            Some([v]) => Some(v.as_str()),
            _ => None,
        }
    }

    /// The single-valued filters among `keys`, for the store.
    pub fn store_map(&self, keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .filter_map(|k| self.single(k).map(|v| ((*k).to_owned(), v.to_owned())))
            .collect()
    }

    /// Whether a rendered resource passes every filter. Filters naming an
    /// attribute the resource does not have are ignored.
    pub fn matches(&self, view: &Value) -> bool {
        self.0.iter().all(|(key, wanted)| match view.get(key) {
            None => true,
            Some(actual) => wanted.iter().any(|w| value_matches(actual, w)),
        })
    }

    /// Keeps the views that pass every filter.
    pub fn apply(&self, views: Vec<Value>) -> Vec<Value> {
        views.into_iter().filter(|v| self.matches(v)).collect()
    }
}

/// Whether one attribute value matches one filter value.
fn value_matches(actual: &Value, wanted: &str) -> bool {
    match actual {
        Value::Null => wanted.is_empty() || wanted == "None" || wanted == "null",
        Value::Bool(b) => parse_bool(wanted) == Some(*b),
        Value::Number(n) => n.to_string() == wanted,
        Value::String(s) => s == wanted,
        // A list matches when one element does: `subnets=<id>`,
        // `security_groups=<id>`, and for `fixed_ips` the
        // `fixed_ips=ip_address=X` / `fixed_ips=subnet_id=Y` form.
        Value::Array(items) => items.iter().any(|item| match item {
            Value::Object(_) => match wanted.split_once('=') {
                Some((k, v)) => item.get(k).is_some_and(|a| value_matches(a, v)),
                None => false,
            },
            other => value_matches(other, wanted),
        }),
        Value::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(q: &str) -> Filters {
        let pairs = q
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Filters::from_query(&QueryPairs(pairs))
    }

    #[test]
    fn matches_by_any_attribute() {
        let port = json!({
            "name": "p", "admin_state_up": true, "device_id": "",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
            "security_groups": ["g1", "g2"],
        });
        assert!(filters("name=p&admin_state_up=True").matches(&port));
        assert!(filters("name=q&name=p").matches(&port));
        assert!(!filters("name=q").matches(&port));
        assert!(filters("fixed_ips=ip_address=10.0.0.5").matches(&port));
        assert!(!filters("fixed_ips=ip_address=10.0.0.6").matches(&port));
        assert!(filters("security_groups=g2").matches(&port));
        assert!(filters("device_id=").matches(&port));
        assert!(filters("fields=id&unknown=1&limit=3").matches(&port));
    }
}
