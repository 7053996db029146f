//! A hard reboot of a paused and of a suspended real guest (issue 13):
//! libvirt destroys the paused domain and starts it, and drops a suspended
//! one's managed-save image before starting it, so the guest boots again
//! (a second, third READY on its console) instead of carrying on.

use crate::support::{RealCloud, count, domain, domain_running};
use serde_json::json;

fn has_managed_save(id: &str) -> bool {
    domain(id).has_managed_save(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_or_suspended_real_guest_boots_again_on_a_hard_reboot() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-hard", None).await;

    for (freeze, status, boots) in [("pause", "PAUSED", 2), ("suspend", "SUSPENDED", 3)] {
        cloud.action(&id, json!({ freeze: null })).await;
        cloud.wait(&id, &[status]).await;
        cloud.action(&id, json!({"reboot": {"type": "HARD"}})).await;
        let console = cloud.wait_marker(&id, "READY", boots).await;
        assert_eq!(count(&console, "BOOTED"), boots, "{freeze}: booted again");
        let server = cloud.wait(&id, &["ACTIVE"]).await;
        assert_eq!(server["OS-EXT-STS:power_state"], 1, "{freeze}");
        assert!(domain_running(&id), "{freeze}: the domain runs");
        assert!(!has_managed_save(&id), "{freeze}: no saved memory left");
    }
    cloud.delete(&id).await;
}
