//! `POST /servers` takes exactly Nova 2.1's schema (issue 16, finding
//! 10): a field Nova does not know at 2.1, such as the admin-only `host`
//! of later microversions, is a 400 naming it and creates nothing, where
//! it used to be ignored silently; and every field Nova 2.1 accepts, as
//! the openstack CLI, openstacksdk, Ansible and Terraform send them, is
//! still accepted.

use cloud_test_utils::{Client, Reply, TestApi, both_backends};
use serde_json::{Value, json};

async fn post(c: &Client, body: Value) -> Reply {
    c.post("/compute/v2.1/servers", body).await
}

async fn servers(c: &Client) -> usize {
    let r = c.get("/compute/v2.1/servers").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["servers"].as_array().unwrap().len()
}

both_backends!(
    unknown_fields_are_refused_known_ones_accepted,
    |db| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let admin = api.admin().await.client;
        let user = api.account("strict", "sam", "member").await;
        let c = &user.client;
        let img = cloud_test_utils::upload_image(c, "img", "raw", vec![0u8; 16], json!({})).await;
        let (net, _) = cloud_test_utils::create_network(c, "n", "10.30.0.0/24", json!({})).await;
        let r = c
        .post("/compute/v2.1/os-keypairs", json!({"keypair": {"name": "k",
            "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA5BXW5G1Iyj42wmvnMkpmOdFwnT/msLBF1XaEVBh13s"}}))
        .await;
        assert_eq!(r.status, 200, "{}", r.body);

        // The openstack CLI's request, as captured (docs: OPENSTACK_API.md).
        let osc = json!({"server": {"max_count": 1, "block_device_mapping_v2": [{"uuid": img,
        "boot_index": 0, "source_type": "image", "destination_type": "local",
        "delete_on_termination": true}], "key_name": "k", "imageRef": img, "min_count": 1,
        "networks": [{"uuid": net}], "flavorRef": "1", "name": "osc"}});
        let r = post(c, osc).await;
        assert_eq!(r.status, 202, "{}", r.body);
        // Every other field of Nova 2.1's schema, as openstacksdk (Ansible)
        // and gophercloud (Terraform) send them.
        let every = json!({
            "server": {
                "name": "every", "imageRef": img, "flavorRef": "1", "adminPass": "s3cret-pass",
                "metadata": {"role": "web"}, "networks": [{"uuid": net, "fixed_ip": "10.30.0.50"}],
                "OS-DCF:diskConfig": "AUTO", "accessIPv4": "192.0.2.1", "accessIPv6": "2001:db8::1",
                "personality": [], "block_device_mapping": [], "config_drive": true,
                "key_name": "k", "min_count": "1", "max_count": "1", "return_reservation_id": false,
                "security_groups": [{"name": "default"}], "user_data": "aGVsbG8=",
                "availability_zone": "nova"
            },
            "os:scheduler_hints": {"same_host": []},
            "OS-SCH-HNT:scheduler_hints": {}
        });
        let r = post(c, every).await;
        assert_eq!(r.status, 202, "{}", r.body);
        // Ansible's openstack.cloud.server sends an empty tag list (a 2.52
        // field) on every create.
        let ansible = json!({"server": {"name": "ansible", "imageRef": img, "flavorRef": "1",
            "networks": [{"uuid": net}], "key_name": "k", "tags": [],
            "security_groups": [{"name": "default"}]}});
        let r = post(c, ansible).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(servers(c).await, 3);

        let base = || json!({"name": "x", "imageRef": img, "flavorRef": "1", "networks": "none"});
        let with = |k: &str, v: Value| {
            let mut s = base();
            s[k] = v;
            json!({ "server": s })
        };
        let refused = [
            // Admin-only, and only from microversion 2.74: not at 2.1.
            (with("host", json!("compute-1")), "host"),
            (
                with("hypervisor_hostname", json!("compute-1")),
                "hypervisor_hostname",
            ),
            // Later microversions' fields.
            (with("description", json!("d")), "description"),
            (with("tags", json!(["a"])), "tags"),
            // Misspelt or made up.
            (with("flavor", json!("1")), "flavor"),
            (json!({"server": base(), "bogus": 1}), "bogus"),
            (
                with("networks", json!([{"uuid": net, "tag": "eth0"}])),
                "tag",
            ),
            (
                with("security_groups", json!([{"name": "default", "id": "x"}])),
                "id",
            ),
            (
                with(
                    "block_device_mapping_v2",
                    json!([{"uuid": img, "source_type": "image",
                "destination_type": "local", "boot_index": 0, "colour": "red"}]),
                ),
                "colour",
            ),
        ];
        for (body, field) in &refused {
            for who in [c, &admin] {
                let r = post(who, body.clone()).await;
                assert_eq!(r.status, 400, "{body}: {}", r.body);
                let m = r.error_message();
                assert!(
                    m.contains(field),
                    "{body}: the message names '{field}': {m}"
                );
            }
        }
        // File injection is a 2.1 field this cloud cannot honour: refused
        // with a reason, not dropped.
        let r = post(
            c,
            with(
                "personality",
                json!([{"path": "/etc/motd", "contents": "aGk="}]),
            ),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.error_message().contains("personality"), "{}", r.body);
        assert_eq!(servers(c).await, 3, "nothing refused was created");
    }
);
