//! The client sessions the tests run. Each step asserts on what the
//! command printed (`-f json` parsed, or the text), not only on its exit
//! status: a client that "succeeds" while showing the wrong thing is the
//! failure mode this suite exists to catch.

pub mod ansible;
pub mod l3;
pub mod negatives;
pub mod osc;
pub mod sdk;
pub mod server_console;
pub mod server_ports;
pub mod server_rebuild;
pub mod server_rescue;
pub mod server_shelve;
pub mod server_snapshot;
pub mod server_states;

use serde_json::Value;

/// The entries of a JSON list whose `key` equals `value`.
pub fn with<'a>(list: &'a Value, key: &str, value: &str) -> Vec<&'a Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .filter(|e| e[key] == value)
        .collect()
}

/// The one entry of a JSON list whose `key` equals `value`.
pub fn one<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    let found = with(list, key, value);
    assert_eq!(found.len(), 1, "expected one {key}={value} in {list}");
    found[0]
}

/// The values of `key` in a JSON list, as strings.
pub fn column(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|e| match &e[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Asserts that `text` contains `needle`, showing both otherwise.
#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}
