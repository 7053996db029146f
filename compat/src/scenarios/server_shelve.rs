//! `openstack server shelve` / `unshelve` on a running server (issue 13,
//! shelve): with the cloud's default `shelved_offload_time` 0 the server
//! goes SHELVED_OFFLOADED with its snapshot `<name>-shelved` in
//! `image list`; unshelve brings it back ACTIVE with the same id and
//! address, deletes the snapshot, and both are in `server event list`.

use super::column;
use super::osc::wait_status;
use crate::tools::Tools;

/// Shelves and unshelves `server` (ACTIVE); leaves it ACTIVE.
pub async fn run(t: &Tools, server: &str) {
    let before = t.osc_json(&["server", "show", server]).await;
    let snapshot = format!("{server}-shelved");
    t.osc(&["server", "shelve", server]).await;
    wait_status(t, server, "SHELVED_OFFLOADED").await;
    let images = t.osc_json(&["image", "list", "--name", &snapshot]).await;
    assert_eq!(column(&images, "Name"), vec![snapshot.clone()], "{images}");
    t.osc(&["server", "unshelve", server]).await;
    wait_status(t, server, "ACTIVE").await;
    let after = t.osc_json(&["server", "show", server]).await;
    assert_eq!(after["id"], before["id"], "{after}");
    assert_eq!(after["addresses"], before["addresses"], "{after}");
    let images = t.osc_json(&["image", "list", "--name", &snapshot]).await;
    assert!(column(&images, "Name").is_empty(), "{images}");
    let events = t.osc_json(&["server", "event", "list", server]).await;
    let actions = column(&events, "Action");
    for a in ["shelve", "unshelve"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
