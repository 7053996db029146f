//! `trigger_crash_dump` on a real guest (issue 13): libvirt injects the
//! NMI (`virsh inject-nmi`, i.e. `virDomainInjectNMI`) and the action
//! succeeds; the test guest's kernel is not set up for crash dumps and
//! prints nothing under TCG, so what is checked is that the host reported
//! success and the guest carries on: the server stays ACTIVE, its domain
//! runs, and it did not boot again.

use crate::support::{RealCloud, count, domain_running};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_guest_takes_an_nmi_and_keeps_running() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-nmi", None).await;

    // 202 only once the host sent the NMI (the action is a call).
    cloud.action(&id, json!({"trigger_crash_dump": null})).await;
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    assert!(domain_running(&id), "the domain runs after the NMI");
    let r = cloud
        .client()
        .get(&format!("/compute/v2.1/servers/{id}/os-instance-actions"))
        .await;
    let req = r.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "trigger_crash_dump")
        .expect("a trigger_crash_dump action")["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = cloud
        .client()
        .get(&format!(
            "/compute/v2.1/servers/{id}/os-instance-actions/{req}"
        ))
        .await;
    assert_eq!(
        r.body["instanceAction"]["events"][0]["result"], "Success",
        "{}",
        r.body
    );
    // Still the same boot, still answering on its console.
    let console = cloud.console(&id).await;
    assert_eq!(count(&console, "BOOTED"), 1, "the guest did not boot again");
    cloud.delete(&id).await;
}
