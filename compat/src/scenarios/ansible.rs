//! The Ansible session (`compat/playbook.yml` with the openstack.cloud
//! collection): `state: present` creates the stack and reports changes, a
//! second run reports `changed=0` (the modules found everything as
//! declared), `state: absent` removes it all, which the `openstack` CLI
//! then confirms.

use super::{column, with};
use crate::tools::Tools;

/// `changed=N` and `failed=N` from the play recap of `out`.
fn recap(out: &str) -> (u32, u32) {
    let line = out
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no play recap in:\n{out}"));
    let field = |name: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    (field("changed="), field("failed="))
}

/// Runs the playbook three times with names starting with `prefix`.
pub async fn run(t: &Tools, prefix: &str) {
    let image_name = format!("{prefix}-image");
    t.osc_image(&image_name, &[5u8; 65_536]).await;
    let playbook = crate::compat_dir().join("playbook.yml");
    let vars = |state: &'static str| {
        [
            ("state", state),
            ("prefix", prefix),
            ("image", image_name.as_str()),
            ("flavor", "m1.tiny"),
        ]
    };
    let vm = |i: u32| format!("{prefix}-vm{i}");

    let out = t.ansible_playbook(&playbook, &vars("present")).await;
    let (changed, failed) = recap(&out);
    assert_eq!(failed, 0);
    // network, subnet, group, rule, keypair, servers.
    assert_eq!(changed, 6, "first run:\n{out}");
    let servers = t.osc_json(&["server", "list", "--long"]).await;
    for i in [1, 2] {
        let rows = with(&servers, "Name", &vm(i));
        assert_eq!(rows.len(), 1, "{servers}");
        assert_eq!(rows[0]["Status"], "ACTIVE", "{servers}");
        assert!(
            rows[0]["Networks"][format!("{prefix}-net")].is_array(),
            "{servers}"
        );
    }
    let shown = t.osc_json(&["server", "show", &vm(1)]).await;
    assert_eq!(shown["key_name"], format!("{prefix}-key"));
    assert_eq!(
        column(&shown["security_groups"], "name"),
        [format!("{prefix}-sg")]
    );
    let sg = t
        .osc_json(&["security", "group", "rule", "list", &format!("{prefix}-sg")])
        .await;
    assert_eq!(with(&sg, "Port Range", "22:22").len(), 1, "{sg}");

    let out = t.ansible_playbook(&playbook, &vars("present")).await;
    assert_eq!(recap(&out), (0, 0), "second run changed something:\n{out}");

    let out = t.ansible_playbook(&playbook, &vars("absent")).await;
    let (changed, failed) = recap(&out);
    assert_eq!(failed, 0);
    assert!(changed >= 5, "absent run:\n{out}");
    let servers = t.osc_json(&["server", "list"]).await;
    assert!(with(&servers, "Name", &vm(1)).is_empty(), "{servers}");
    assert!(with(&servers, "Name", &vm(2)).is_empty(), "{servers}");
    let nets = t.osc_json(&["network", "list"]).await;
    assert!(
        with(&nets, "Name", &format!("{prefix}-net")).is_empty(),
        "{nets}"
    );
    let subnets = t.osc_json(&["subnet", "list"]).await;
    assert!(
        with(&subnets, "Name", &format!("{prefix}-subnet")).is_empty(),
        "{subnets}"
    );
    let groups = t.osc_json(&["security", "group", "list"]).await;
    assert!(
        with(&groups, "Name", &format!("{prefix}-sg")).is_empty(),
        "{groups}"
    );
    let keys = t.osc_json(&["keypair", "list"]).await;
    assert!(
        with(&keys, "Name", &format!("{prefix}-key")).is_empty(),
        "{keys}"
    );
    t.osc(&["image", "delete", &image_name]).await;
}
