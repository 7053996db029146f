//! What real OpenStack clients ask for besides the resources themselves:
//! Neutron's extension list (openstacksdk, the `openstack` CLI and
//! Ansible probe it), network quotas (`openstack quota show`) and a
//! server's security groups with their ids (Ansible's
//! `openstack.cloud.server` on every run). Found by running those clients
//! against the API (compat/); each gap is pinned here in the API's own
//! terms.

use cloud_test_utils::{Client, TestApi};
use serde_json::json;
use support::{aliases, network, post_port};

mod support;

async fn image(c: &Client) -> String {
    cloud_test_utils::upload_image(c, "img", "raw", vec![7u8; 64], json!({})).await
}

#[tokio::test]
async fn neutron_extensions_list_only_what_is_implemented() {
    let api = TestApi::start().await;
    let c = api.account("ext", "erin", "member").await.client;
    let r = c.get("/network/v2.0/extensions").await;
    let aliases = aliases(&r);
    for want in ["security-group", "quotas", "port-security", "net-mtu"] {
        assert!(aliases.contains(&want), "{want} missing from {aliases:?}");
    }
    // Nothing we do not implement: clients would then send it.
    for absent in [
        "l3-ha",
        "qos",
        "dns-integration",
        "tag-ports-during-bulk-creation",
    ] {
        assert!(!aliases.contains(&absent), "{absent} listed");
    }
    let e = &r.body["extensions"][0];
    for key in ["alias", "name", "description", "updated", "links"] {
        assert!(e.get(key).is_some(), "{key} missing from {e}");
    }

    let r = c.get("/network/v2.0/extensions/security-group").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["extension"]["alias"], "security-group");
    // An unknown alias is Neutron's 404, which the clients read as
    // "feature absent".
    let r = c.get("/network/v2.0/extensions/qos").await;
    assert_eq!(r.status, 404);
    assert!(r.body["NeutronError"].is_object(), "{}", r.body);
    assert!(r.error_message().contains("qos"), "{}", r.error_message());
    // A token is needed, as for every other network call.
    assert_eq!(
        api.anonymous().get("/network/v2.0/extensions").await.status,
        401
    );
}

#[tokio::test]
async fn network_quotas_show_limits_defaults_and_use() {
    let api = TestApi::start().await;
    let alice = api.account("netq", "alice", "member").await;
    let c = &alice.client;
    let p = &alice.project_id;
    let r = c.get(&format!("/network/v2.0/quotas/{p}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let q = &r.body["quota"];
    assert_eq!(q["network"], 100);
    assert_eq!(q["security_group"], 10, "from the compute quota set: {q}");
    assert!(q["security_group_rule"].is_i64());

    // The limit follows the compute quota set an admin changes.
    let admin = api.admin().await.client;
    let r = admin
        .put(
            &format!("/compute/v2.1/os-quota-sets/{p}"),
            json!({"quota_set": {"security_groups": 3}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.get(&format!("/network/v2.0/quotas/{p}")).await;
    assert_eq!(r.body["quota"]["security_group"], 3);
    let r = c.get(&format!("/network/v2.0/quotas/{p}/default")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["quota"]["security_group"], 10);

    let (net, _) = network(c, "n1", "10.7.0.0/24", json!({})).await;
    let r = post_port(c, json!({"network_id": net})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.get(&format!("/network/v2.0/quotas/{p}/details")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let q = &r.body["quota"];
    assert_eq!(
        q["network"],
        json!({"limit": 100, "used": 1, "reserved": 0})
    );
    assert_eq!(q["subnet"]["used"], 1, "{q}");
    assert_eq!(q["port"]["used"], 1, "{q}");
    assert_eq!(q["security_group"]["limit"], 3);
    // The default group exists once the project touched the network API.
    assert_eq!(q["security_group"]["used"], 1, "{q}");

    // Another project's quotas are an admin's business.
    let bob = api.account("other", "bob", "member").await;
    let r = bob.client.get(&format!("/network/v2.0/quotas/{p}")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["NeutronError"].is_object(), "{}", r.body);
    assert_eq!(
        admin.get(&format!("/network/v2.0/quotas/{p}")).await.status,
        200
    );
}

#[tokio::test]
async fn server_security_groups_carry_ids_and_ingress_rules() {
    let api = TestApi::start().await;
    let alice = api.account("sgs", "alice", "member").await;
    let c = &alice.client;
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web", "description": "http in"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let web = r.body["security_group"]["id"].as_str().unwrap().to_owned();
    let r = c
        .post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": web, "direction": "ingress",
                "protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
                "remote_ip_prefix": "0.0.0.0/0"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let img = image(c).await;
    let r = c
        .post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "s", "flavorRef": "1", "imageRef": img,
                "networks": "none", "security_groups": [{"name": "web"}]}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();

    let r = c
        .get(&format!("/compute/v2.1/servers/{id}/os-security-groups"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let groups = r.body["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{}", r.body);
    let g = &groups[0];
    assert_eq!(g["id"], web.as_str());
    assert_eq!(g["name"], "web");
    assert_eq!(g["description"], "http in");
    assert_eq!(g["tenant_id"], alice.project_id.as_str());
    // Only the ingress rule (the default egress rules are not Nova's).
    let rules = g["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{g}");
    assert_eq!(rules[0]["ip_protocol"], "tcp");
    assert_eq!(rules[0]["from_port"], 80);
    assert_eq!(rules[0]["ip_range"]["cidr"], "0.0.0.0/0");
    assert_eq!(rules[0]["parent_group_id"], web.as_str());

    // Unknown server: Nova's 404; another project's server too.
    let r = c
        .get("/compute/v2.1/servers/not-a-server/os-security-groups")
        .await;
    assert_eq!(r.status, 404);
    assert!(r.body["itemNotFound"].is_object(), "{}", r.body);
    let bob = api.account("other", "bob", "member").await;
    let r = bob
        .client
        .get(&format!("/compute/v2.1/servers/{id}/os-security-groups"))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn role_assignments_include_names_on_request() {
    let api = TestApi::start().await;
    let alice = api.account("names", "alice", "member").await;
    let admin = api.admin().await.client;
    let base = format!("/identity/v3/role_assignments?user.id={}", alice.user_id);

    let r = admin.get(&base).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = &r.body["role_assignments"][0];
    assert_eq!(a["user"], json!({"id": alice.user_id}));
    assert_eq!(a["scope"]["project"], json!({"id": alice.project_id}));

    // `openstack role assignment list --names` and Ansible send this.
    let r = admin.get(&format!("{base}&include_names=True")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.body["role_assignments"].as_array().unwrap();
    assert!(!list.is_empty());
    for a in list {
        assert_eq!(a["user"]["name"], "alice", "{a}");
        assert_eq!(
            a["user"]["domain"],
            json!({"id": "default", "name": "Default"})
        );
        assert_eq!(a["scope"]["project"]["name"], "names", "{a}");
        assert_eq!(a["scope"]["project"]["domain"]["name"], "Default");
        assert!(a["role"]["name"].is_string(), "{a}");
    }
    let roles: Vec<&str> = list
        .iter()
        .map(|a| a["role"]["name"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"member"), "{roles:?}");

    // Not a boolean: Keystone's 400, naming the parameter.
    let r = admin.get(&format!("{base}&include_names=perhaps")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("include_names")
    );
}
