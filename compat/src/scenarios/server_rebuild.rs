//! `openstack server rebuild --image IMG SERVER --wait` on a running
//! server (issue 13): the CLI waits through REBUILD to ACTIVE, and the
//! server keeps its id and address, shows the image, and has a `rebuild`
//! in `server event list`.

use super::osc::wait_status;
use super::{assert_contains, column};
use crate::tools::Tools;

/// Rebuilds `server` (ACTIVE) from `image`; leaves it ACTIVE.
pub async fn run(t: &Tools, server: &str, image: &str) {
    let before = t.osc_json(&["server", "show", server]).await;
    t.osc(&["server", "rebuild", "--image", image, "--wait", server])
        .await;
    wait_status(t, server, "ACTIVE").await;
    let after = t.osc_json(&["server", "show", server]).await;
    assert_eq!(after["id"], before["id"], "{after}");
    assert_eq!(after["addresses"], before["addresses"], "{after}");
    assert_contains(after["image"].as_str().unwrap_or_default(), image);
    let events = t.osc_json(&["server", "event", "list", server]).await;
    let actions = column(&events, "Action");
    assert!(actions.iter().any(|a| a == "rebuild"), "{actions:?}");
}
