//! The openstacksdk session (`compat/sdk_scenario.py`): image upload,
//! network, subnet, keypair, a server waited to ACTIVE with
//! `wait_for_server`, an unknown flavor, deletion waited with
//! `wait_for_delete`. The script prints what it saw as JSON; this checks it.

use super::assert_contains;
use crate::tools::Tools;
use serde_json::{Value, json};

/// Runs the script with names starting with `prefix`.
pub async fn run(t: &Tools, prefix: &str) {
    let image = t.path("sdk-image.qcow2");
    std::fs::write(&image, vec![3u8; 65_536]).unwrap();
    let script = crate::compat_dir().join("sdk_scenario.py");
    let r = t.python(&script, &[prefix, image.to_str().unwrap()]).await;
    assert!(r.success, "sdk_scenario.py failed:\n{}", r.stderr);
    let seen: Value = serde_json::from_str(r.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("sdk_scenario.py printed no JSON ({e}):\n{}", r.stdout));

    assert_eq!(seen["image"], json!({"status": "active", "size": 65_536}));
    assert_eq!(
        seen["subnet"],
        json!({"cidr": "10.77.0.0/24", "gateway_ip": "10.77.0.1"})
    );
    assert_eq!(seen["keypair"]["name"], format!("{prefix}-key"));
    assert_eq!(seen["keypair"]["has_private_key"], true, "{seen}");
    assert_eq!(
        seen["keypair"]["fingerprint"]
            .as_str()
            .map(|f| f.split(':').count()),
        Some(16),
        "{seen}"
    );
    let server = &seen["server"];
    assert_eq!(server["status"], "ACTIVE", "{seen}");
    assert_eq!(server["name"], format!("{prefix}-vm"));
    assert_eq!(server["key_name"], format!("{prefix}-key"));
    assert_eq!(server["flavor_id"], "1");
    let nic = &server["addresses"][format!("{prefix}-net")][0];
    assert_eq!(nic["version"], 4, "{seen}");
    assert!(
        nic["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("10.77.0.")),
        "{seen}"
    );
    assert_eq!(seen["listed"], json!([format!("{prefix}-vm")]));
    // The SDK settled on the one microversion we advertise.
    assert_eq!(seen["compute_microversion"], json!([2, 1]));
    let bad = &seen["unknown_flavor"];
    assert_eq!(bad["status"], 400, "{seen}");
    assert_contains(
        bad["message"].as_str().unwrap_or_default(),
        "Flavor no-such-flavor could not be found",
    );
    assert_eq!(seen["after_delete"], json!([]));
    assert_eq!(seen["networks_left"], json!([]));
    assert_eq!(seen["images_left"], json!([]));
}
