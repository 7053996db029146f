//! `openstack server rescue` and `server unrescue` on a running server
//! (issue 13): RESCUE (the CLI sends `{"rescue": null}` without a password
//! or image), back to ACTIVE, and both in `server event list`.

use super::column;
use super::osc::wait_status;
use crate::tools::Tools;

/// Rescues `server` (ACTIVE) and unrescues it; leaves it ACTIVE.
pub async fn run(t: &Tools, server: &str) {
    t.osc(&["server", "rescue", server]).await;
    wait_status(t, server, "RESCUE").await;
    let s = t.osc_json(&["server", "show", server]).await;
    assert_eq!(s["OS-EXT-STS:vm_state"], "rescued", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 1, "{s}");
    t.osc(&["server", "unrescue", server]).await;
    wait_status(t, server, "ACTIVE").await;
    let events = t.osc_json(&["server", "event", "list", server]).await;
    let actions = column(&events, "Action");
    for a in ["rescue", "unrescue"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
