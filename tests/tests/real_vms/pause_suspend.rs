//! Pause/unpause and suspend/resume of a real guest (issue 13): the guest
//! runs a counter on its console (from its user data) that prints its
//! number and `/proc/uptime` every second. Paused, the counter stops (the
//! vCPUs are frozen); unpaused it carries on. Suspended, the domain is off
//! with libvirt's managed-save image; resumed, the counter and the uptime
//! carry on from where they were, and the guest did not boot again.

use crate::support::{RealCloud, count, domain, domain_running};
use serde_json::json;
use std::time::{Duration, Instant};

/// Prints `TESTGUEST TICK=<n> UP=<uptime>` every second, detached from
/// the user-data run (which has a timeout).
const TICKER: &str = "#!/bin/sh\n\
setsid sh -c 'n=0; while :; do n=$((n+1)); read up idle </proc/uptime; \
echo \"TESTGUEST TICK=$n UP=$up\" >/dev/console; sleep 1; done' \
</dev/null >/dev/null 2>&1 &\n\
echo ticking\n";

/// The last `(tick, uptime)` on the console.
fn last_tick(console: &str) -> Option<(u64, f64)> {
    console.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("TESTGUEST TICK=")?;
        let (n, up) = rest.split_once(" UP=")?;
        Some((n.parse().ok()?, up.trim().parse().ok()?))
    })
}

async fn tick_after(cloud: &RealCloud, id: &str, after: u64) -> (u64, f64) {
    let started = Instant::now();
    loop {
        let console = cloud.console(id).await;
        if let Some(t) = last_tick(&console).filter(|t| t.0 > after) {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{id}: no tick after {after}; console:\n{console}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_guest_pauses_and_suspends_without_rebooting() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-pause", Some(TICKER)).await;
    let (first, _) = tick_after(&cloud, &id, 1).await;

    // Paused: libvirt's domain is paused and the guest's counter stops.
    cloud.action(&id, json!({"pause": null})).await;
    let server = cloud.wait(&id, &["PAUSED"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 3);
    let (state, _) = domain(&id).state().unwrap();
    assert!(
        matches!(
            state.unwrap_or(virt::domain::DomainState::NoState),
            virt::domain::DomainState::Paused
        ),
        "libvirt pauses the domain"
    );
    let frozen = last_tick(&cloud.console(&id).await).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        last_tick(&cloud.console(&id).await).unwrap(),
        frozen,
        "the paused guest kept running"
    );
    assert!(frozen.0 >= first);

    // Unpaused: the counter carries on from where it stopped.
    cloud.action(&id, json!({"unpause": null})).await;
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    let (after_pause, _) = tick_after(&cloud, &id, frozen.0).await;
    assert!(
        after_pause <= frozen.0 + 3,
        "{after_pause} after {frozen:?}"
    );

    // Suspended: the domain is off, its memory in the managed-save image.
    let before = tick_after(&cloud, &id, after_pause).await;
    cloud.action(&id, json!({"suspend": null})).await;
    let server = cloud.wait(&id, &["SUSPENDED"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 4);
    assert!(!domain_running(&id), "a suspended domain does not run");
    assert!(
        domain(&id).has_managed_save(0).unwrap(),
        "libvirt holds the guest's memory"
    );
    let saved = last_tick(&cloud.console(&id).await).unwrap();
    assert!(saved.0 >= before.0);

    // Resumed: the same guest carries on (counter and uptime continue,
    // no second boot), and the managed-save image is consumed.
    cloud.action(&id, json!({"resume": null})).await;
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    assert!(domain_running(&id));
    let resumed = tick_after(&cloud, &id, saved.0).await;
    assert!(
        resumed.0 <= saved.0 + 3,
        "the counter continued: {resumed:?} after {saved:?}"
    );
    assert!(
        resumed.1 > saved.1,
        "uptime went on: {resumed:?} after {saved:?}"
    );
    let console = cloud.console(&id).await;
    assert_eq!(count(&console, "BOOTED"), 1, "the guest did not boot again");
    assert!(!domain(&id).has_managed_save(0).unwrap());

    // A suspended server is deleted with its saved memory.
    cloud.action(&id, json!({"suspend": null})).await;
    cloud.wait(&id, &["SUSPENDED"]).await;
    cloud.delete(&id).await;
    assert!(!crate::support::domain_exists(&id), "domain left behind");
}
