//! `openstack server pause/unpause`, `suspend/resume`, `lock/unlock` and
//! `dump create` on a running server (issue 13): the statuses and power
//! states the CLI shows, the actions in `server event list`, and the CLI's
//! own refusal of `lock --reason` at our microversion (2.1; a reason needs
//! 2.73). `dump create` documents 2.17 but the CLI sends it at 2.1 without
//! checking, and we accept trigger_crash_dump at 2.1 as an extension.

use super::osc::wait_status;
use super::{assert_contains, column};
use crate::tools::Tools;

/// Runs the session on `server`, which is ACTIVE; leaves it ACTIVE and
/// unlocked.
pub async fn run(t: &Tools, server: &str) {
    for (action, status, power, back) in [
        ("pause", "PAUSED", 3, "unpause"),
        ("suspend", "SUSPENDED", 4, "resume"),
    ] {
        t.osc(&["server", action, server]).await;
        wait_status(t, server, status).await;
        let s = t.osc_json(&["server", "show", server]).await;
        assert_eq!(s["OS-EXT-STS:power_state"], power, "{s}");
        let err = t.osc_fails(&["server", action, server]).await;
        assert_contains(&err, "409");
        t.osc(&["server", back, server]).await;
        wait_status(t, server, "ACTIVE").await;
    }
    t.osc(&["server", "lock", server]).await;
    let err = t
        .osc_fails(&["server", "lock", "--reason", "why", server])
        .await;
    assert_contains(&err, "2.73");
    t.osc(&["server", "unlock", server]).await;
    t.osc(&["server", "dump", "create", server]).await;
    wait_status(t, server, "ACTIVE").await;
    let events = t.osc_json(&["server", "event", "list", server]).await;
    let actions = column(&events, "Action");
    for a in [
        "pause",
        "unpause",
        "suspend",
        "resume",
        "lock",
        "unlock",
        "trigger_crash_dump",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
