//! The guests' metadata API (`/metadata`) over real HTTP, as the host data
//! plane's proxy calls it: a server booted through the whole control plane
//! (fake host) on a network, then asked for its documents with
//! `X-Instance-ID` and its HMAC signature. Only the signature is trusted:
//! wrong or missing signatures are 403, deleted servers 404, and an API
//! without a shared secret serves nothing.

use base64::Engine;
use cloud_api::{ApiConfig, AppState};
use cloud_driver::metadata::sign_instance_id;
use cloud_store::{Backend, Store};
use cloud_test_utils::{ControlPlane, PlaneOptions, boot, record_active_image, wait_for_status};
use serde_json::{Value, json};
use std::time::Duration;
use support::network;

mod support;

const SECRET: &str = "metadata-proxy-test-secret";
const T: Duration = Duration::from_secs(60);
/// User data with bytes that are not UTF-8: served exactly as given.
const USER_DATA: &[u8] = b"#!/bin/sh\necho hello\n\xff\xfe\x00end\n";

/// An API over `store` with `secret` as the metadata shared secret (the
/// plane's own API has none, as `ApiConfig::for_data_dir` leaves it).
struct MetadataApi {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn metadata_api(store: &Store, secret: Option<&str>) -> MetadataApi {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ApiConfig::for_data_dir(dir.path().to_owned());
    config.metadata.shared_secret = secret.map(str::to_owned);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = cloud_api::serve(listener, AppState::new(store.clone(), config), async {
        let _ = rx.await;
    })
    .unwrap();
    MetadataApi {
        url: format!("http://{}", handle.addr),
        _stop: tx,
        _dir: dir,
    }
}

/// A reply: status, content type, body bytes.
struct Got {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn request(method: &str, url: &str, path: &str, headers: &[(&str, String)]) -> Got {
    let mut req = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{url}{path}"),
    );
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    Got {
        status: r.status().as_u16(),
        content_type: r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// The headers the data plane's proxy adds for instance `id`, signed with
/// `secret`.
fn proxy_headers(id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Instance-ID", id.to_owned()),
        ("X-Instance-ID-Signature", sign_instance_id(secret, id)),
        ("X-Tenant-ID", "whatever-the-proxy-says".to_owned()),
        ("X-Forwarded-For", "10.20.0.99".to_owned()),
    ]
}

/// A GET of `path` for instance `id`, signed as the proxy does.
async fn get(api: &MetadataApi, id: &str, path: &str) -> Got {
    request("GET", &api.url, path, &proxy_headers(id, SECRET)).await
}

/// A booted server: its id, key, project and fixed address.
struct Booted {
    plane: ControlPlane,
    id: String,
    key_name: String,
    public_key: String,
    project_id: String,
    ip: String,
    mac: String,
}

/// One fake host; a server `md-vm` on a network, with a keypair, user
/// data and metadata, ACTIVE.
async fn booted() -> Booted {
    let plane =
        ControlPlane::start(PlaneOptions::hosts(Backend::Sqlite, 1, Default::default())).await;
    let admin = plane.api.admin().await;
    let c = &admin.client;
    let image = record_active_image(&plane.api.db.store, &admin.project_id, "cirros")
        .await
        .unwrap();
    let (net, _) = network(c, "md-net", "10.20.0.0/24", json!({})).await;
    let r = c
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "md-key"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let public_key = r.body["keypair"]["public_key"].as_str().unwrap().to_owned();
    let r = boot(
        c,
        "md-vm",
        "1",
        &image.to_string(),
        json!({
            "networks": [{"uuid": net}],
            "key_name": "md-key",
            "user_data": base64::engine::general_purpose::STANDARD.encode(USER_DATA),
            "metadata": {"role": "web"},
        }),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = wait_for_status(c, &id, &["ACTIVE", "ERROR"], T).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let addr = &s["addresses"]["md-net"][0];
    let ip = addr["addr"].as_str().expect("a fixed address").to_owned();
    let mac = addr["OS-EXT-IPS-MAC:mac_addr"].as_str().unwrap().to_owned();
    Booted {
        plane,
        id,
        key_name: "md-key".to_owned(),
        public_key,
        project_id: admin.project_id,
        ip,
        mac,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serves_the_signed_instances_own_documents() {
    let b = booted().await;
    let api = metadata_api(&b.plane.api.db.store, Some(SECRET)).await;
    let id = b.id.as_str();

    // meta_data.json: the config drive's keys, from the instance record.
    let r = get(&api, id, "/metadata/openstack/latest/meta_data.json").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, "application/json");
    let m = r.json();
    let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "availability_zone",
            "devices",
            "hostname",
            "keys",
            "launch_index",
            "meta",
            "name",
            "project_id",
            "public_keys",
            "uuid"
        ]
    );
    assert_eq!(m["uuid"], id);
    assert_eq!(m["name"], "md-vm");
    assert_eq!(m["hostname"], "md-vm");
    assert_eq!(m["project_id"], b.project_id.as_str());
    assert_eq!(m["meta"], json!({"role": "web"}));
    assert_eq!(
        m["public_keys"],
        json!({ b.key_name.clone(): b.public_key })
    );
    assert_eq!(
        m["keys"],
        json!([{"name": b.key_name, "type": "ssh", "data": b.public_key}])
    );
    assert_eq!(m["devices"], json!([]));

    // user_data: the bytes given at boot, exactly.
    let r = get(&api, id, "/metadata/openstack/latest/user_data").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, USER_DATA);
    let r = get(&api, id, "/metadata/latest/user-data").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, USER_DATA);

    // network_data.json: the port's link and address.
    let r = get(&api, id, "/metadata/openstack/latest/network_data.json").await;
    assert_eq!(r.status, 200);
    let n = r.json();
    assert_eq!(n["links"][0]["ethernet_mac_address"], b.mac.as_str());
    assert_eq!(n["links"][0]["type"], "phy");
    assert_eq!(n["networks"][0]["ip_address"], b.ip.as_str());
    assert_eq!(n["networks"][0]["netmask"], "255.255.255.0");
    assert_eq!(n["networks"][0]["link"], n["links"][0]["id"]);
    assert_eq!(n["networks"][0]["routes"][0]["gateway"], "10.20.0.1");
    for vendor in ["vendor_data.json", "vendor_data2.json"] {
        let r = get(&api, id, &format!("/metadata/openstack/latest/{vendor}")).await;
        assert_eq!((r.status, r.json()), (200, json!({})), "{vendor}");
    }

    // Listings, newline-separated as Nova prints them.
    let r = get(&api, id, "/metadata/openstack/latest/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        r.text(),
        "meta_data.json\nuser_data\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    );
    let versions = get(&api, id, "/metadata/openstack").await.text();
    let versions: Vec<&str> = versions.lines().collect();
    assert_eq!(versions.first(), Some(&"2012-08-10"));
    assert!(versions.contains(&"2018-08-27"));
    assert_eq!(versions.last(), Some(&"latest"));
    let r = get(&api, id, "/metadata/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().lines().any(|l| l == "2009-04-04"), "{}", r.text());
    assert_eq!(r.text().lines().last(), Some("latest"));
    // An older version has only what it had then.
    assert_eq!(
        get(&api, id, "/metadata/openstack/2012-08-10").await.text(),
        "meta_data.json\nuser_data"
    );
    assert_eq!(
        get(&api, id, "/metadata/openstack/2012-08-10/network_data.json")
            .await
            .status,
        404
    );

    // The EC2 tree.
    let ec2 = |key: &'static str| {
        let api = &api;
        async move {
            let r = get(api, id, &format!("/metadata/latest/meta-data/{key}")).await;
            assert_eq!(r.status, 200, "{key}: {}", String::from_utf8_lossy(&r.body));
            r.text()
        }
    };
    assert_eq!(ec2("instance-id").await, format!("i-{}", &id[..8]));
    assert_eq!(ec2("hostname").await, "md-vm");
    assert_eq!(ec2("local-hostname").await, "md-vm");
    assert_eq!(ec2("public-hostname").await, "md-vm");
    assert_eq!(ec2("local-ipv4").await, b.ip);
    assert_eq!(ec2("instance-type").await, "m1.tiny");
    assert_eq!(ec2("placement/availability-zone").await, "nova");
    assert_eq!(ec2("security-groups").await, "default");
    assert!(ec2("reservation-id").await.starts_with("r-"));
    assert!(ec2("ami-id").await.starts_with("ami-"));
    assert_eq!(ec2("public-keys").await, format!("0={}", b.key_name));
    assert_eq!(ec2("public-keys/0").await, "openssh-key");
    assert_eq!(ec2("public-keys/0/openssh-key").await, b.public_key);
    let listing = ec2("").await;
    for key in [
        "ami-id",
        "hostname",
        "instance-id",
        "instance-type",
        "local-hostname",
        "local-ipv4",
        "placement/",
        "public-hostname",
        "public-keys/",
        "reservation-id",
        "security-groups",
    ] {
        assert!(listing.lines().any(|l| l == key), "{key} in {listing}");
    }
    let r = get(&api, id, "/metadata/2009-04-04/meta-data/instance-id").await;
    assert_eq!(r.text(), format!("i-{}", &id[..8]));
    assert_eq!(
        get(&api, id, "/metadata/latest").await.text(),
        "meta-data/\nuser-data"
    );

    // Unknown paths 404; HEAD answers; other methods 405.
    for path in [
        "/metadata/openstack/latest/nope.json",
        "/metadata/openstack/1999-01-01/meta_data.json",
        "/metadata/latest/meta-data/nope",
        "/metadata/latest/meta-data/hostname/deeper",
        "/metadata/nope",
    ] {
        assert_eq!(get(&api, id, path).await.status, 404, "{path}");
    }
    let headers = proxy_headers(id, SECRET);
    let path = "/metadata/openstack/latest/meta_data.json";
    assert_eq!(request("HEAD", &api.url, path, &headers).await.status, 200);
    for method in ["POST", "PUT", "DELETE"] {
        let r = request(method, &api.url, path, &headers).await;
        assert_eq!(r.status, 405, "{method}");
    }

    // The same signed request to the plane's API, which has no secret:
    // not served.
    let r = request("GET", &b.plane.api.url, path, &headers).await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("not enabled"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_without_a_valid_signature_are_forbidden() {
    let b = booted().await;
    let api = metadata_api(&b.plane.api.db.store, Some(SECRET)).await;
    let id = b.id.as_str();
    let path = "/metadata/openstack/latest/meta_data.json";
    let sig = sign_instance_id(SECRET, id);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no headers", vec![]),
        ("no signature", vec![("X-Instance-ID", id.to_owned())]),
        (
            "no instance id",
            vec![("X-Instance-ID-Signature", sig.clone())],
        ),
        (
            "signature of another id",
            vec![
                ("X-Instance-ID", id.to_owned()),
                (
                    "X-Instance-ID-Signature",
                    sign_instance_id(SECRET, &uuid::Uuid::new_v4().to_string()),
                ),
            ],
        ),
        (
            "signed with a wrong key",
            vec![
                ("X-Instance-ID", id.to_owned()),
                (
                    "X-Instance-ID-Signature",
                    sign_instance_id("not-the-secret", id),
                ),
            ],
        ),
        (
            "truncated signature",
            vec![
                ("X-Instance-ID", id.to_owned()),
                ("X-Instance-ID-Signature", sig[..sig.len() - 2].to_owned()),
            ],
        ),
        (
            "not hex",
            vec![
                ("X-Instance-ID", id.to_owned()),
                ("X-Instance-ID-Signature", "zz".repeat(32)),
            ],
        ),
        (
            "tenant and forwarded-for alone",
            vec![
                ("X-Tenant-ID", b.project_id.clone()),
                ("X-Forwarded-For", b.ip.clone()),
            ],
        ),
    ];
    for (what, headers) in cases {
        for p in [path, "/metadata", "/metadata/latest/meta-data/instance-id"] {
            let r = request("GET", &api.url, p, &headers).await;
            assert_eq!(
                r.status,
                403,
                "{what} {p}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert!(!r.body.windows(id.len()).any(|w| w == id.as_bytes()));
        }
    }
    // A correctly signed id that names no instance: 404, and an id that is
    // no UUID too.
    for other in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let r = get(&api, &other, path).await;
        assert_eq!(r.status, 404, "{other}");
    }
    // The signed id decides, not what the proxy claims besides.
    let mut headers = proxy_headers(id, SECRET);
    headers.push(("X-Tenant-ID", "another-project".to_owned()));
    let r = request("GET", &api.url, path, &headers).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["project_id"], b.project_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_instance_is_not_found() {
    let b = booted().await;
    let api = metadata_api(&b.plane.api.db.store, Some(SECRET)).await;
    let path = "/metadata/openstack/latest/meta_data.json";
    assert_eq!(get(&api, &b.id, path).await.status, 200);
    let admin = b.plane.api.admin().await;
    let r = admin
        .client
        .send("DELETE", &format!("/compute/v2.1/servers/{}", b.id), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    wait_for_status(&admin.client, &b.id, &["DELETED"], T).await;
    for p in [path, "/metadata/latest/meta-data/instance-id", "/metadata"] {
        assert_eq!(get(&api, &b.id, p).await.status, 404, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_secret_nothing_is_served() {
    let b = booted().await;
    let path = "/metadata/openstack/latest/meta_data.json";
    for secret in [None, Some("")] {
        let api = metadata_api(&b.plane.api.db.store, secret).await;
        // Whatever the proxy signs with, even the empty key.
        for key in [SECRET, ""] {
            for p in [path, "/metadata", "/metadata/latest/user-data"] {
                let r = request("GET", &api.url, p, &proxy_headers(&b.id, key)).await;
                assert_eq!(r.status, 404, "{secret:?} {key:?} {p}");
                assert!(r.text().contains("not enabled"), "{}", r.text());
            }
        }
    }
}
