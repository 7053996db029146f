//! `openstack console url show --serial` on a running server (issue 13):
//! the CLI, at our microversion 2.1, asks with `os-getSerialConsole` and
//! prints the console proxy's one-time `ws://` URL; the default (noVNC)
//! console is refused with a 400 (serial consoles are the only ones
//! offered), and `console log show` keeps working.

use super::assert_contains;
use crate::tools::Tools;

/// Runs the session on `server`, which is ACTIVE.
pub async fn run(t: &Tools, server: &str) {
    let c = t
        .osc_json(&["console", "url", "show", "--serial", server])
        .await;
    assert_eq!(c["type"], "serial", "{c}");
    let url = c["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("ws://"), "{c}");
    assert_contains(url, "/serial-console/");
    assert_contains(url, "?token=");
    let err = t.osc_fails(&["console", "url", "show", server]).await;
    assert_contains(&err, "400");
    assert_contains(&err, "serial consoles only");
    let log = t.osc(&["console", "log", "show", server]).await;
    assert!(!log.trim().is_empty(), "an empty console log");
}
