//! `openstack server add port` / `server remove port` and `server add
//! network` on a running server (issue 13): the port shows the server as
//! its device and the server a second address on the network; removing
//! it unbinds the user's port (kept) and deletes the port the cloud made
//! for `add network`; both actions are in `server event list`.

use super::osc::wait_status;
use super::{assert_contains, column};
use crate::tools::Tools;

/// Runs the session on `server` (ACTIVE, with one port on `network`);
/// leaves it ACTIVE with that one port.
pub async fn run(t: &Tools, server: &str, network: &str) {
    let vm = t.osc_json(&["server", "show", server]).await;
    let vm_id = vm["id"].as_str().unwrap().to_owned();
    let p = t
        .osc_json(&["port", "create", "--network", network, "c-if-port"])
        .await;
    let ip = p["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    t.osc(&["server", "add", "port", server, "c-if-port"]).await;
    let p = t.osc_json(&["port", "show", "c-if-port"]).await;
    assert_eq!(p["device_id"], vm_id.as_str(), "{p}");
    let s = t.osc_json(&["server", "show", server]).await;
    let addresses = s["addresses"].to_string();
    assert_contains(&addresses, &ip);
    wait_status(t, server, "ACTIVE").await;

    t.osc(&["server", "remove", "port", server, "c-if-port"])
        .await;
    let p = t.osc_json(&["port", "show", "c-if-port"]).await;
    assert_eq!(p["device_id"], "", "the user's port is kept, unbound: {p}");
    let s = t.osc_json(&["server", "show", server]).await;
    assert!(!s["addresses"].to_string().contains(&ip), "{s}");
    t.osc(&["port", "delete", "c-if-port"]).await;

    // add network: the cloud makes the port, and deletes it on removal.
    let before = t.osc_json(&["port", "list", "--server", server]).await;
    t.osc(&["server", "add", "network", server, network]).await;
    let after = t.osc_json(&["port", "list", "--server", server]).await;
    let old = column(&before, "ID");
    let made: Vec<String> = column(&after, "ID")
        .into_iter()
        .filter(|id| !old.contains(id))
        .collect();
    assert_eq!(made.len(), 1, "{after}");
    t.osc(&["server", "remove", "port", server, &made[0]]).await;
    let all = t.osc_json(&["port", "list"]).await;
    assert!(!column(&all, "ID").contains(&made[0]), "{all}");
    let left = t.osc_json(&["port", "list", "--server", server]).await;
    assert_eq!(column(&left, "ID"), old);
    let events = t.osc_json(&["server", "event", "list", server]).await;
    let actions = column(&events, "Action");
    for a in ["attach_interface", "detach_interface"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
