//! `openstack server image create --wait` on a running server (issue 13,
//! snapshot): the CLI finds the new image through the 202's `Location`
//! header (our microversion is 2.1; 2.45 moved the id into the body),
//! waits for it, and `image show` has it active with the snapshot's
//! properties; the server stays ACTIVE and `server event list` shows
//! `createImage`. The image is deleted again at the end.

use super::column;
use super::osc::wait_status;
use crate::tools::Tools;

/// Snapshots `server` (ACTIVE) as `snap1`; leaves it ACTIVE, no image left.
pub async fn run(t: &Tools, server: &str) {
    let s = t.osc_json(&["server", "show", server]).await;
    let id = s["id"].as_str().unwrap().to_owned();
    t.osc(&[
        "server", "image", "create", "--name", "snap1", "--wait", server,
    ])
    .await;
    let image = t.osc_json(&["image", "show", "snap1"]).await;
    assert_eq!(image["status"], "active", "{image}");
    let props = &image["properties"];
    assert_eq!(props["image_type"], "snapshot", "{image}");
    assert_eq!(props["instance_uuid"], id.as_str(), "{image}");
    wait_status(t, server, "ACTIVE").await;
    let events = t.osc_json(&["server", "event", "list", server]).await;
    let actions = column(&events, "Action");
    assert!(
        actions.iter().any(|x| x == "createImage"),
        "createImage in {actions:?}"
    );
    t.osc(&["image", "delete", "snap1"]).await;
}
