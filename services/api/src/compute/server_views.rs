//! JSON views of servers at microversion 2.1, with exactly the keys
//! Nova shows (tempest's schemas reject any other key).

use cloud_model::instance::{Instance, VmState};
use cloud_store::ServerNic;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha224};

/// Self and bookmark links of a compute resource.
pub fn links(base: &str, collection: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/compute/v2.1/{collection}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/compute/{collection}/{id}")},
    ])
}

/// Nova's `hostId`: a per-project hash of the host, so users can tell
/// whether two of their servers share a host without learning its name.
pub fn host_id(inst: &Instance) -> String {
    match &inst.host {
        Some(h) => hex::encode(Sha224::digest(format!("{}{h}", inst.project_id).as_bytes())),
        None => String::new(),
    }
}

/// `addresses`: IPs grouped by network name, each port's fixed IPs
/// followed by its floating IPs (`OS-EXT-IPS:type` says which, with the
/// port's MAC, as Nova shows them).
pub fn addresses(nics: &[ServerNic], with_mac: bool) -> Value {
    let mut out = Map::new();
    for nic in nics {
        let entry = out
            .entry(nic.network_name.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            let fixed = nic.ips.iter().map(|ip| (ip, "fixed"));
            let floating = nic.floating_ips.iter().map(|ip| (ip, "floating"));
            for (ip, kind) in fixed.chain(floating) {
                let mut a = json!({"version": 4, "addr": ip.to_string()});
                if with_mac {
                    a["OS-EXT-IPS:type"] = json!(kind);
                    a["OS-EXT-IPS-MAC:mac_addr"] = json!(nic.mac);
                }
                list.push(a);
            }
        }
    }
    Value::Object(out)
}

fn shows_progress(status: &str) -> bool {
    matches!(
        status,
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
    )
}

/// The basic view (what `PUT /servers/{id}` answers).
pub fn basic(inst: &Instance, nics: &[ServerNic], base: &str) -> Value {
    let id = inst.id.to_string();
    let status = inst.status();
    let mut v = json!({
        "id": id,
        "name": inst.name,
        "status": status,
        "tenant_id": inst.project_id.as_str(),
        "user_id": inst.user_id.as_str(),
        "metadata": inst.metadata,
        "hostId": host_id(inst),
        "image": {
            "id": inst.image_id.to_string(),
            "links": [{"rel": "bookmark", "href": format!("{base}/compute/images/{}", inst.image_id)}],
        },
        "flavor": {
            "id": inst.flavor.id,
            "links": [{"rel": "bookmark", "href": format!("{base}/compute/flavors/{}", inst.flavor.id)}],
        },
        "created": inst.created_at.iso_seconds(),
        "updated": inst.updated_at.iso_seconds(),
        "addresses": addresses(nics, true),
        "accessIPv4": inst.access_ipv4,
        "accessIPv6": inst.access_ipv6,
        "links": links(base, "servers", &id),
        "OS-DCF:diskConfig": "MANUAL",
    });
    if shows_progress(status) {
        v["progress"] = json!(inst.progress);
    }
    if inst.vm_state == VmState::Error
        && let Some(f) = &inst.fault
    {
        v["fault"] = json!({
            "code": f.code,
            "created": f.created.iso_seconds(),
            "message": f.message,
        });
    }
    v
}

/// The full view (show and detail listings).
pub fn full(inst: &Instance, nics: &[ServerNic], base: &str, admin: bool) -> Value {
    let mut v = basic(inst, nics, base);
    let o = v.as_object_mut().expect("object");
    o.insert("OS-EXT-AZ:availability_zone".into(), json!(inst.zone()));
    o.insert("config_drive".into(), json!(inst.config_drive));
    o.insert("key_name".into(), json!(inst.key_name));
    o.insert(
        "OS-SRV-USG:launched_at".into(),
        json!(inst.launched_at.map(|t| t.naive_micros())),
    );
    o.insert(
        "OS-SRV-USG:terminated_at".into(),
        json!(inst.terminated_at.map(|t| t.naive_micros())),
    );
    o.insert(
        "OS-EXT-STS:task_state".into(),
        json!(inst.task_state.map(|t| t.as_str())),
    );
    o.insert("OS-EXT-STS:vm_state".into(), json!(inst.vm_state.as_str()));
    o.insert(
        "OS-EXT-STS:power_state".into(),
        json!(inst.power_state.code()),
    );
    o.insert("os-extended-volumes:volumes_attached".into(), json!([]));
    o.insert(
        "security_groups".into(),
        Value::Array(
            inst.security_groups
                .iter()
                .map(|n| json!({"name": n}))
                .collect(),
        ),
    );
    if admin {
        o.insert("OS-EXT-SRV-ATTR:host".into(), json!(inst.host));
        o.insert(
            "OS-EXT-SRV-ATTR:instance_name".into(),
            json!(format!("instance-{}", inst.id)),
        );
        o.insert(
            "OS-EXT-SRV-ATTR:hypervisor_hostname".into(),
            json!(inst.node),
        );
    }
    v
}

/// The minimal view of `GET /servers`.
pub fn minimal(inst: &Instance, base: &str) -> Value {
    let id = inst.id.to_string();
    json!({"id": id, "name": inst.name, "links": links(base, "servers", &id)})
}
