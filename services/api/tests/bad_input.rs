//! Malformed requests across the APIs: each gets the right 4xx, in the
//! service's fault format, with a message that names the problem, and
//! changes nothing.

use cloud_test_utils::TestApi;
use serde_json::{Value, json};

/// `(method, path, body, status, words the message must contain)`.
type Case = (
    &'static str,
    String,
    Option<Value>,
    u16,
    &'static [&'static str],
);

/// A body that is not JSON at all.
fn raw(s: &str) -> Option<Value> {
    Some(Value::String(format!("RAW:{s}")))
}

#[tokio::test]
async fn malformed_requests_get_clear_4xx() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let image = admin
        .client
        .post(
            "/image/v2/images",
            json!({"name": "img", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    assert_eq!(image.status, 201, "{}", image.body);
    let queued_id = image.body["id"].as_str().unwrap().to_owned();
    let image = admin
        .client
        .post(
            "/image/v2/images",
            json!({"name": "img2", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let image_id = image.body["id"].as_str().unwrap().to_owned();
    let up = admin
        .client
        .request("PUT", &format!("/image/v2/images/{image_id}/file"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 4096]);
    assert_eq!(cloud_test_utils::Client::finish(up).await.status, 204);
    let bogus = "00000000-0000-0000-0000-000000000000";
    let cases: Vec<Case> = vec![
        // Identity.
        (
            "POST",
            "/identity/v3/auth/tokens".into(),
            raw("{not json"),
            400,
            &["Malformed"],
        ),
        (
            "POST",
            "/identity/v3/auth/tokens".into(),
            Some(json!({"auth": 5})),
            400,
            &["auth"],
        ),
        (
            "POST",
            "/identity/v3/auth/tokens".into(),
            Some(json!({"auth": {"identity": {"methods": ["password"]}}})),
            400,
            &["auth.identity.password"],
        ),
        (
            "POST",
            "/identity/v3/auth/tokens".into(),
            Some(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}),
            ),
            400,
            &["domain"],
        ),
        (
            "POST",
            "/identity/v3/auth/tokens".into(),
            Some(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}}}}}}),
            ),
            400,
            &["password"],
        ),
        (
            "POST",
            "/identity/v3/projects".into(),
            Some(json!({"project": {"name": ""}})),
            400,
            &["project.name"],
        ),
        (
            "POST",
            "/identity/v3/projects".into(),
            Some(json!({"project": {"name": "x", "enabled": "yes"}})),
            400,
            &["project.enabled"],
        ),
        (
            "POST",
            "/identity/v3/users".into(),
            Some(json!({"user": {"name": "u"}})),
            400,
            &["user.password"],
        ),
        (
            "POST",
            "/identity/v3/roles".into(),
            Some(json!({"role": {}})),
            400,
            &["role.name"],
        ),
        // Compute.
        (
            "POST",
            "/compute/v2.1/flavors".into(),
            Some(json!({"flavor": {"name": "f", "ram": -1, "vcpus": 1, "disk": 0}})),
            400,
            &["ram"],
        ),
        (
            "POST",
            "/compute/v2.1/flavors".into(),
            Some(json!({"flavor": {"name": "f", "ram": 512, "vcpus": "many", "disk": 0}})),
            400,
            &["vcpus"],
        ),
        (
            "POST",
            "/compute/v2.1/flavors".into(),
            Some(json!({"flavor": {"name": "  ", "ram": 512, "vcpus": 1, "disk": 0}})),
            400,
            &["name"],
        ),
        (
            "POST",
            "/compute/v2.1/os-keypairs".into(),
            Some(json!({"keypair": {"name": "k", "public_key": "ssh-rsa JUNK nova@ubuntu"}})),
            400,
            &["not a valid ssh-rsa key"],
        ),
        (
            "POST",
            "/compute/v2.1/os-keypairs".into(),
            Some(json!({"keypair": {"name": "bad/name"}})),
            400,
            &["name"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"server": {"flavorRef": "1", "imageRef": image_id}})),
            400,
            &["server.name"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"server": {"name": "v", "flavorRef": -1, "imageRef": image_id}})),
            400,
            &["server.flavorRef"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"server": {"name": "v", "flavorRef": "nope", "imageRef": image_id}})),
            400,
            &["Flavor nope"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"server": {"name": "v", "flavorRef": "1", "imageRef": "not-a-uuid"}})),
            400,
            &["imageRef"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"server": {"name": "v", "flavorRef": "1", "imageRef": bogus}})),
            400,
            &["Image"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"server": {"name": "v", "flavorRef": "1", "imageRef": queued_id}})),
            400,
            &["not active"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(
                json!({"server": {"name": "v", "flavorRef": "1", "imageRef": image_id, "networks": [{"uuid": "nope"}]}}),
            ),
            400,
            &["networks[0].uuid"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(
                json!({"server": {"name": "v", "flavorRef": "1", "imageRef": image_id, "min_count": 3, "max_count": 2}}),
            ),
            400,
            &["max_count"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(
                json!({"server": {"name": "v", "flavorRef": "1", "imageRef": image_id, "accessIPv4": "1.2.3"}}),
            ),
            400,
            &["accessIPv4"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(
                json!({"server": {"name": "v", "flavorRef": "1", "imageRef": image_id, "user_data": "%%%"}}),
            ),
            400,
            &["user_data"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(
                json!({"server": {"name": "v", "flavorRef": "1", "imageRef": image_id, "key_name": "missing"}}),
            ),
            400,
            &["key_name"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            Some(json!({"nothing": 1})),
            400,
            &["server"],
        ),
        (
            "POST",
            "/compute/v2.1/servers".into(),
            raw(""),
            400,
            &["empty"],
        ),
        (
            "GET",
            "/compute/v2.1/servers/not-a-uuid".into(),
            None,
            404,
            &["could not be found"],
        ),
        (
            "GET",
            format!("/compute/v2.1/servers/{bogus}"),
            None,
            404,
            &["could not be found"],
        ),
        (
            "GET",
            "/compute/v2.1/servers?limit=-5".into(),
            None,
            400,
            &["limit"],
        ),
        (
            "GET",
            "/compute/v2.1/servers?changes-since=yesterday".into(),
            None,
            400,
            &["changes-since"],
        ),
        (
            "GET",
            "/compute/v2.1/servers?name=(".into(),
            None,
            400,
            &["name"],
        ),
        (
            "GET",
            "/compute/v2.1/servers?marker=nope".into(),
            None,
            400,
            &["marker"],
        ),
        (
            "POST",
            "/compute/v2.1/os-server-groups".into(),
            Some(json!({"server_group": {"name": "g", "policies": ["sideways"]}})),
            400,
            &["policies"],
        ),
        (
            "PUT",
            "/compute/v2.1/os-quota-sets/x".into(),
            Some(json!({"quota_set": {"instances": "lots"}})),
            400,
            &["instances"],
        ),
        // Image.
        (
            "POST",
            "/image/v2/images".into(),
            Some(json!({"name": "i", "disk_format": "floppy"})),
            400,
            &["disk_format"],
        ),
        (
            "POST",
            "/image/v2/images".into(),
            Some(json!({"name": "i", "container_format": "crate"})),
            400,
            &["container_format"],
        ),
        (
            "POST",
            "/image/v2/images".into(),
            Some(json!({"name": "i", "visibility": "everyone"})),
            400,
            &["visibility"],
        ),
        ("GET", "/image/v2/images/not-a-uuid".into(), None, 404, &[]),
        (
            "GET",
            "/image/v2/images?limit=abc".into(),
            None,
            400,
            &["limit"],
        ),
        // Oversized body (the limit is 1 MiB).
        (
            "POST",
            "/compute/v2.1/os-keypairs".into(),
            Some(json!({"keypair": {"name": "big", "public_key": "x".repeat(2 * 1024 * 1024)}})),
            413,
            &["too large"],
        ),
        (
            "POST",
            "/network/v2.0/networks".into(),
            Some(json!({"network": {"name": 5}})),
            400,
            &["network.name"],
        ),
        (
            "POST",
            "/network/v2.0/subnets".into(),
            Some(json!({"subnet": {"network_id": bogus, "cidr": "10.0.0.0/24", "ip_version": 4}})),
            404,
            &[],
        ),
        (
            "POST",
            "/network/v2.0/ports".into(),
            Some(json!({"port": {"network_id": "nope"}})),
            400,
            &["network_id"],
        ),
    ];
    assert!(cases.len() >= 30);
    let before = api
        .db
        .store
        .instance_list(
            &cloud_store::InstanceFilter::scope(cloud_store::Scope::All),
            None,
            None,
        )
        .await
        .unwrap()
        .len();
    for (method, path, body, status, words) in &cases {
        let mut req = admin.client.request(method, path);
        match body {
            Some(Value::String(s)) if s.starts_with("RAW:") => {
                req = req
                    .header("content-type", "application/json")
                    .body(s[4..].to_owned());
            }
            Some(b) => req = req.json(b),
            None => {}
        }
        let r = cloud_test_utils::Client::finish(req).await;
        assert_eq!(
            r.status, *status,
            "{method} {path} {body:?}: got {} {}",
            r.status, r.body
        );
        let msg = r.error_message();
        for w in *words {
            assert!(
                msg.contains(w),
                "{method} {path}: message {msg:?} should mention {w:?}"
            );
        }
        assert!(r.header("x-openstack-request-id").is_some());
        // The service's own fault format.
        let b = &r.body;
        if path.starts_with("/compute") {
            assert!(
                b.as_object()
                    .is_some_and(|o| o.len() == 1 && o.values().all(|v| v["code"] == *status)),
                "{b}"
            );
        } else if path.starts_with("/identity") {
            assert_eq!(b["error"]["code"], *status, "{b}");
        }
    }
    let after = api
        .db
        .store
        .instance_list(
            &cloud_store::InstanceFilter::scope(cloud_store::Scope::All),
            None,
            None,
        )
        .await
        .unwrap()
        .len();
    assert_eq!(before, after, "no partial write");
}
