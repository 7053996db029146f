//! The compute API without servers, over real HTTP: version discovery,
//! microversion negotiation, flavors (with extra specs and access lists),
//! keypairs (checked against `ssh-keygen`), limits, quota sets and
//! availability zones. Response key sets are asserted exactly, because
//! tempest rejects any extra key.

use cloud_store::{Backend, HostReport};
use cloud_test_utils::{Client, Reply, TestApi};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

const FLAVOR_DETAIL_KEYS: &[&str] = &[
    "id",
    "name",
    "ram",
    "vcpus",
    "disk",
    "swap",
    "OS-FLV-EXT-DATA:ephemeral",
    "OS-FLV-DISABLED:disabled",
    "os-flavor-access:is_public",
    "rxtx_factor",
    "links",
];

/// A GET with extra headers.
async fn get_with(c: &Client, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = c.request("GET", path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Client::finish(req).await
}

/// The path part of one of our absolute links.
fn path_of<'a>(api: &TestApi, href: &'a str) -> &'a str {
    href.strip_prefix(api.url.as_str())
        .unwrap_or_else(|| panic!("{href} is not under {}", api.url))
}

#[tokio::test]
async fn version_documents_list_v2_first_and_links_are_followable() {
    let api = TestApi::start().await;
    let c = api.anonymous();
    for root in ["/compute", "/compute/"] {
        let r = c.get(root).await;
        assert_eq!(r.status, 200, "{root}: {:?}", r.body);
        let versions = r.body["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0]["id"], "v2.0");
        assert_eq!(versions[0]["status"], "SUPPORTED");
        assert_eq!(versions[1]["id"], "v2.1");
        assert_eq!(versions[1]["status"], "CURRENT");
        assert_eq!(versions[1]["version"], "2.1");
        assert_eq!(versions[1]["min_version"], "2.1");
        for v in versions {
            assert_eq!(
                keys(v),
                sorted(&["id", "links", "min_version", "status", "updated", "version"])
            );
            let href = v["links"][0]["href"].as_str().unwrap();
            assert_eq!(v["links"][0]["rel"], "self");
            let doc = c.get(path_of(&api, href)).await;
            assert_eq!(doc.status, 200, "{href}");
            let d = &doc.body["version"];
            assert_eq!(
                keys(d),
                sorted(&[
                    "id",
                    "links",
                    "media-types",
                    "min_version",
                    "status",
                    "updated",
                    "version"
                ])
            );
            assert_eq!(d["id"], v["id"]);
            assert_eq!(d["links"][0]["href"], href, "self links agree");
            assert_eq!(d["links"][1]["rel"], "describedby");
            assert_eq!(d["media-types"][0]["base"], "application/json");
        }
    }
    // The catalog URL itself, with and without the slash.
    for path in ["/compute/v2.1", "/compute/v2.1/"] {
        let r = c.get(path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["version"]["version"], "2.1");
        assert_eq!(
            r.body["version"]["media-types"][0]["type"],
            "application/vnd.openstack.compute+json;version=2.1"
        );
    }
}

#[tokio::test]
async fn microversions_are_negotiated_and_echoed() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let echoed = |r: &Reply| {
        assert_eq!(r.header("openstack-api-version"), Some("compute 2.1"));
        assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.1"));
        assert_eq!(
            r.header("vary"),
            Some("OpenStack-API-Version, X-OpenStack-Nova-API-Version")
        );
    };
    for headers in [
        vec![],
        vec![("OpenStack-API-Version", "compute 2.1")],
        vec![
            ("OpenStack-API-Version", "compute 2.1"),
            ("X-OpenStack-Nova-API-Version", "2.1"),
        ],
        vec![("X-OpenStack-Nova-API-Version", "latest")],
        vec![("OpenStack-API-Version", "image 2.9")],
        // The SDK sends an empty Accept header.
        vec![("Accept", "")],
    ] {
        let r = get_with(&admin, "/compute/v2.1/flavors", &headers).await;
        assert_eq!(r.status, 200, "{headers:?}: {:?}", r.body);
        echoed(&r);
    }
    for (headers, status, kind) in [
        (
            vec![("OpenStack-API-Version", "compute 2.2")],
            406,
            "notAcceptable",
        ),
        (
            vec![("X-OpenStack-Nova-API-Version", "3.0")],
            406,
            "notAcceptable",
        ),
        (
            vec![("OpenStack-API-Version", "compute garbage")],
            400,
            "badRequest",
        ),
        (
            vec![("X-OpenStack-Nova-API-Version", "2")],
            400,
            "badRequest",
        ),
    ] {
        let r = get_with(&admin, "/compute/v2.1/flavors", &headers).await;
        assert_eq!(r.status, status, "{headers:?}: {:?}", r.body);
        assert_eq!(r.body[kind]["code"], status, "{:?}", r.body);
        echoed(&r);
    }
    let r = get_with(
        &admin,
        "/compute/v2.1/flavors",
        &[("OpenStack-API-Version", "compute 2.2")],
    )
    .await;
    assert!(
        r.error_message()
            .contains("Minimum is 2.1 and maximum is 2.1"),
        "{}",
        r.error_message()
    );
    // Faults outside any handler carry the headers and Nova's format too.
    let r = admin.get("/compute/v2.1/no-such-thing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["itemNotFound"]["code"], 404);
    echoed(&r);
    // The version documents answer whatever the client asks for.
    let r = get_with(
        &api.anonymous(),
        "/compute",
        &[("OpenStack-API-Version", "compute 9.9")],
    )
    .await;
    assert_eq!(r.status, 200);
}

async fn create_flavor(c: &Client, body: Value) -> Reply {
    c.post("/compute/v2.1/flavors", json!({ "flavor": body }))
        .await
}

#[tokio::test]
async fn flavors_are_created_listed_shown_and_deleted() {
    let api = TestApi::start().await;
    let admin = api.admin().await.client;
    let r = create_flavor(
        &admin,
        json!({"name": "c_m1", "ram": 512, "vcpus": 1, "disk": 1, "swap": 0,
               "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true, "id": null}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let f = &r.body["flavor"];
    assert_eq!(keys(f), sorted(FLAVOR_DETAIL_KEYS));
    let id = f["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "generated id {id}");
    assert_eq!(f["swap"], "");
    assert_eq!(f["rxtx_factor"], 1.0);
    assert_eq!(f["OS-FLV-DISABLED:disabled"], false);
    assert_eq!(f["links"][0]["rel"], "self");
    assert_eq!(
        f["links"][0]["href"],
        format!("{}/compute/v2.1/flavors/{id}", api.url)
    );
    assert_eq!(
        f["links"][1]["href"],
        format!("{}/compute/flavors/{id}", api.url)
    );

    // Numbers as strings, a chosen id, swap shown as a number.
    let r = create_flavor(
        &admin,
        json!({"name": "strs", "ram": "1024", "vcpus": "2", "disk": "10", "swap": "256",
               "rxtx_factor": "2.5", "id": "custom-1"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["flavor"]["id"], "custom-1");
    assert_eq!(r.body["flavor"]["ram"], 1024);
    assert_eq!(r.body["flavor"]["swap"], 256);
    assert_eq!(r.body["flavor"]["rxtx_factor"], 2.5);

    // Lists: exact key sets.
    let r = admin.get("/compute/v2.1/flavors").await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body), ["flavors"]);
    let list = r.body["flavors"].as_array().unwrap();
    assert_eq!(list.len(), 5, "{list:?}");
    for f in list {
        assert_eq!(keys(f), sorted(&["id", "name", "links"]));
    }
    for q in ["", "?is_public=True", "?is_public=None", "?deleted=False"] {
        let r = admin.get(&format!("/compute/v2.1/flavors/detail{q}")).await;
        assert_eq!(r.status, 200, "{q}");
        let list = r.body["flavors"].as_array().unwrap();
        assert_eq!(list.len(), 5, "{q}");
        for f in list {
            assert_eq!(keys(f), sorted(FLAVOR_DETAIL_KEYS));
        }
    }
    let r = admin.get(&format!("/compute/v2.1/flavors/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body["flavor"]), sorted(FLAVOR_DETAIL_KEYS));
    assert_eq!(r.body["flavor"]["name"], "c_m1");
    // Name-or-id lookups: a name is not an id.
    let r = admin.get("/compute/v2.1/flavors/c_m1").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["itemNotFound"]["code"], 404);

    // Duplicates, permissions and validation.
    let dup = json!({"name": "c_m1", "ram": 1, "vcpus": 1, "disk": 0});
    assert_eq!(create_flavor(&admin, dup).await.status, 409);
    let dup_id = json!({"name": "other", "ram": 1, "vcpus": 1, "disk": 0, "id": "custom-1"});
    assert_eq!(create_flavor(&admin, dup_id).await.status, 409);
    let member = api.account("p1", "u1", "member").await.client;
    let r = create_flavor(
        &member,
        json!({"name": "mine", "ram": 1, "vcpus": 1, "disk": 0}),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["forbidden"]["code"], 403);
    for (body, field) in [
        (json!({"name": "", "ram": 1, "vcpus": 1, "disk": 0}), "name"),
        (
            json!({"name": "   ", "ram": 1, "vcpus": 1, "disk": 0}),
            "name",
        ),
        (json!({"name": "b", "ram": 0, "vcpus": 1, "disk": 0}), "ram"),
        (
            json!({"name": "b", "ram": "x", "vcpus": 1, "disk": 0}),
            "ram",
        ),
        (
            json!({"name": "b", "ram": 1, "vcpus": -1, "disk": 0}),
            "vcpus",
        ),
        (
            json!({"name": "b", "ram": 1, "vcpus": 1, "disk": -1}),
            "disk",
        ),
        (
            json!({"name": "b", "ram": 1, "vcpus": 1, "disk": 0, "swap": -1}),
            "swap",
        ),
        (
            json!({"name": "b", "ram": 1, "vcpus": 1, "disk": 0, "OS-FLV-EXT-DATA:ephemeral": -1}),
            "ephemeral",
        ),
        (
            json!({"name": "b", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0}),
            "rxtx_factor",
        ),
        (json!({"name": "b", "vcpus": 1, "disk": 0}), "ram"),
    ] {
        let r = create_flavor(&admin, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(
            r.error_message().contains(field),
            "{body}: {}",
            r.error_message()
        );
    }

    assert_eq!(
        admin
            .delete(&format!("/compute/v2.1/flavors/{id}"))
            .await
            .status,
        202
    );
    assert_eq!(
        admin
            .get(&format!("/compute/v2.1/flavors/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        admin
            .delete(&format!("/compute/v2.1/flavors/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(member.delete("/compute/v2.1/flavors/1").await.status, 403);
}

/// Listing filters and paging; run on both backends (they exercise SQL).
async fn flavor_filters(api: &TestApi) {
    let admin = api.admin().await.client;
    let names = |r: &Reply| -> Vec<String> {
        r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = admin.get("/compute/v2.1/flavors/detail?minRam=2048").await;
    assert_eq!(names(&r), ["m1.small", "m1.medium"]);
    let r = admin
        .get("/compute/v2.1/flavors?minDisk=30&sort_key=name")
        .await;
    assert_eq!(names(&r), ["m1.medium"]);
    let r = admin.get("/compute/v2.1/flavors?limit=2").await;
    assert_eq!(names(&r), ["m1.tiny", "m1.small"]);
    let next = r.body["flavors_links"][0]["href"].as_str().unwrap();
    let r = admin.get(path_of(api, next)).await;
    assert_eq!(names(&r), ["m1.medium"]);
    let r = admin.get("/compute/v2.1/flavors?marker=1").await;
    assert_eq!(names(&r), ["m1.small", "m1.medium"]);
    let r = admin.get("/compute/v2.1/flavors?marker=nope").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    for bad in ["minRam=x", "minDisk=1.5", "limit=-1", "is_public=maybe"] {
        let r = admin.get(&format!("/compute/v2.1/flavors?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn flavor_filters_sqlite() {
    flavor_filters(&TestApi::start().await).await;
}

#[tokio::test]
async fn flavor_filters_postgres() {
    flavor_filters(&TestApi::start_on(Backend::Postgres).await).await;
}

/// Private flavors, access lists and extra specs; run on both backends.
async fn private_flavors_and_extra_specs(api: &TestApi) {
    let admin = api.admin().await.client;
    let a = api.account("pa", "ua", "member").await;
    let b = api.account("pb", "ub", "member").await;
    let r = create_flavor(
        &admin,
        json!({"name": "secret", "ram": 64, "vcpus": 1, "disk": 0,
               "os-flavor-access:is_public": false, "id": "priv"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["flavor"]["os-flavor-access:is_public"], false);
    let sees = |c: Client| async move {
        let show = c.get("/compute/v2.1/flavors/priv").await.status;
        let listed = c
            .get("/compute/v2.1/flavors/detail?is_public=None")
            .await
            .body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "priv");
        (show, listed)
    };
    assert_eq!(sees(a.client.clone()).await, (404, false));
    assert_eq!(sees(b.client.clone()).await, (404, false));
    // Admins: all with None, only private ones with False, not by default.
    let ids = |r: Reply| -> Vec<String> {
        r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(ids(admin.get("/compute/v2.1/flavors?is_public=None").await).contains(&"priv".into()));
    assert_eq!(
        ids(admin.get("/compute/v2.1/flavors?is_public=false").await),
        ["priv"]
    );
    assert!(!ids(admin.get("/compute/v2.1/flavors").await).contains(&"priv".into()));

    let action = |tenant: &str, add: bool| {
        let name = if add {
            "addTenantAccess"
        } else {
            "removeTenantAccess"
        };
        json!({ name: {"tenant": tenant} })
    };
    let r = admin
        .post(
            "/compute/v2.1/flavors/priv/action",
            action(&a.project_id, true),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"flavor_access": [{"flavor_id": "priv", "tenant_id": a.project_id}]})
    );
    assert_eq!(sees(a.client.clone()).await, (200, true));
    assert_eq!(sees(b.client.clone()).await, (404, false));
    let r = admin
        .get("/compute/v2.1/flavors/priv/os-flavor-access")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["flavor_access"][0]["tenant_id"], a.project_id);
    // Repeats, public flavors, unknown projects and non-admins.
    let r = admin
        .post(
            "/compute/v2.1/flavors/priv/action",
            action(&a.project_id, true),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = admin
        .post(
            "/compute/v2.1/flavors/1/action",
            action(&a.project_id, true),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        admin
            .get("/compute/v2.1/flavors/1/os-flavor-access")
            .await
            .status,
        404
    );
    let r = admin
        .post(
            "/compute/v2.1/flavors/priv/action",
            action("no-such-project", true),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = admin
        .post(
            "/compute/v2.1/flavors/priv/action",
            json!({"frobnicate": {}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = a
        .client
        .post(
            "/compute/v2.1/flavors/priv/action",
            action(&b.project_id, true),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        a.client
            .get("/compute/v2.1/flavors/priv/os-flavor-access")
            .await
            .status,
        403
    );

    // Extra specs: readable by who sees the flavor, written by admins.
    let specs = "/compute/v2.1/flavors/priv/os-extra_specs";
    let r = admin
        .post(
            specs,
            json!({"extra_specs": {"hw:numa_nodes": "1", "hw:cpu_policy": "shared", "n": 2}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"extra_specs": {"hw:numa_nodes": "1", "hw:cpu_policy": "shared", "n": "2"}})
    );
    let r = a.client.get(specs).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["extra_specs"]["hw:cpu_policy"], "shared");
    assert_eq!(b.client.get(specs).await.status, 404);
    let r = a.client.get(&format!("{specs}/hw:numa_nodes")).await;
    assert_eq!(r.body, json!({"hw:numa_nodes": "1"}));
    let r = admin
        .put(
            &format!("{specs}/hw:numa_nodes"),
            json!({"hw:numa_nodes": "2"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"hw:numa_nodes": "2"}));
    let r = admin
        .put(&format!("{specs}/hw:numa_nodes"), json!({"other": "2"}))
        .await;
    assert_eq!(r.status, 400);
    let r = admin
        .put(
            &format!("{specs}/hw:numa_nodes"),
            json!({"hw:numa_nodes": "2", "x": "1"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = admin
        .post(specs, json!({"extra_specs": {"bad/key": "1"}}))
        .await;
    assert_eq!(r.status, 400);
    let r = a
        .client
        .post(specs, json!({"extra_specs": {"k": "v"}}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        admin.delete(&format!("{specs}/hw:numa_nodes")).await.status,
        200
    );
    assert_eq!(
        admin.get(&format!("{specs}/hw:numa_nodes")).await.status,
        404
    );
    assert_eq!(
        admin.delete(&format!("{specs}/hw:numa_nodes")).await.status,
        404
    );
    let r = admin.get(specs).await;
    assert_eq!(
        r.body,
        json!({"extra_specs": {"hw:cpu_policy": "shared", "n": "2"}})
    );

    // Taking access away hides the flavor again.
    let r = admin
        .post(
            "/compute/v2.1/flavors/priv/action",
            action(&a.project_id, false),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"flavor_access": []}));
    assert_eq!(sees(a.client.clone()).await, (404, false));
    let r = admin
        .post(
            "/compute/v2.1/flavors/priv/action",
            action(&a.project_id, false),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn private_flavors_and_extra_specs_sqlite() {
    private_flavors_and_extra_specs(&TestApi::start().await).await;
}

#[tokio::test]
async fn private_flavors_and_extra_specs_postgres() {
    private_flavors_and_extra_specs(&TestApi::start_on(Backend::Postgres).await).await;
}

/// Runs `ssh-keygen` with `args`, failing the test if it does not work.
fn ssh_keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen must be installed for the keypair tests");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh public key of `kind` (`ed25519`, `ecdsa`...) and its MD5
/// fingerprint as `ssh-keygen -l -E md5` prints it.
fn new_public_key(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let file = dir.join(name);
    let file = file.to_str().unwrap();
    let mut all = vec!["-q", "-N", "", "-C", "test@cloud", "-f", file];
    all.extend_from_slice(args);
    ssh_keygen(&all);
    let public = std::fs::read_to_string(format!("{file}.pub")).unwrap();
    (public.trim().to_owned(), md5_of(&format!("{file}.pub")))
}

/// The MD5 fingerprint of a public key file, from `ssh-keygen`.
fn md5_of(pub_file: &str) -> String {
    let out = ssh_keygen(&["-l", "-E", "md5", "-f", pub_file]);
    let fp = out
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.strip_prefix("MD5:"))
        .unwrap_or_else(|| panic!("unexpected ssh-keygen output: {out}"));
    fp.to_owned()
}

#[tokio::test]
async fn keypairs_are_imported_with_ssh_keygen_fingerprints() {
    let api = TestApi::start().await;
    let user = api.account("kp", "alice", "member").await;
    let c = &user.client;
    let dir = tempfile::tempdir().unwrap();
    let mut imported = Vec::new();
    for (name, args) in [
        ("ed", &["-t", "ed25519"][..]),
        ("ec384", &["-t", "ecdsa", "-b", "384"][..]),
        ("rsa", &["-t", "rsa", "-b", "2048"][..]),
    ] {
        let (public, md5) = new_public_key(dir.path(), name, args);
        let r = c
            .post(
                "/compute/v2.1/os-keypairs",
                json!({"keypair": {"name": name, "public_key": public}}),
            )
            .await;
        assert_eq!(r.status, 200, "{name}: {:?}", r.body);
        let kp = &r.body["keypair"];
        assert_eq!(
            keys(kp),
            sorted(&["name", "public_key", "fingerprint", "user_id"])
        );
        assert_eq!(kp["fingerprint"], md5, "{name}");
        assert_eq!(kp["public_key"], public);
        assert_eq!(kp["user_id"], user.user_id);
        imported.push(name);
    }
    let r = c.get("/compute/v2.1/os-keypairs").await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body), ["keypairs"]);
    let list = r.body["keypairs"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for k in list {
        assert_eq!(keys(k), ["keypair"]);
        assert_eq!(
            keys(&k["keypair"]),
            sorted(&["name", "public_key", "fingerprint"])
        );
    }
    let r = c.get("/compute/v2.1/os-keypairs/ed").await;
    assert_eq!(r.status, 200);
    let kp = &r.body["keypair"];
    assert_eq!(
        keys(kp),
        sorted(&[
            "id",
            "name",
            "public_key",
            "fingerprint",
            "user_id",
            "created_at",
            "updated_at",
            "deleted",
            "deleted_at"
        ])
    );
    assert!(kp["id"].is_i64());
    assert_eq!(kp["deleted"], false);
    assert!(kp["updated_at"].is_null() && kp["deleted_at"].is_null());
    assert!(kp["created_at"].as_str().unwrap().contains('T'));
    // Duplicates conflict; delete is 202 once, then 404.
    let (public, _) = new_public_key(dir.path(), "again", &["-t", "ed25519"]);
    let r = c
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "ed", "public_key": public}}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["conflictingRequest"]["code"], 409);
    assert_eq!(c.delete("/compute/v2.1/os-keypairs/ed").await.status, 202);
    assert_eq!(c.delete("/compute/v2.1/os-keypairs/ed").await.status, 404);
    assert_eq!(c.get("/compute/v2.1/os-keypairs/ed").await.status, 404);
}

#[tokio::test]
async fn generated_keypairs_return_a_private_key_ssh_keygen_accepts() {
    let api = TestApi::start().await;
    let user = api.account("kp", "bob", "member").await;
    let r = user
        .client
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "gen"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let kp = &r.body["keypair"];
    assert_eq!(
        keys(kp),
        sorted(&[
            "name",
            "public_key",
            "fingerprint",
            "user_id",
            "private_key"
        ])
    );
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("gen");
    std::fs::write(&key_file, kp["private_key"].as_str().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let derived = ssh_keygen(&["-y", "-f", key_file.to_str().unwrap()]);
    let first_two = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let stored = kp["public_key"].as_str().unwrap();
    assert_eq!(first_two(&derived), first_two(stored));
    let pub_file = dir.path().join("gen.pub");
    std::fs::write(&pub_file, format!("{stored}\n")).unwrap();
    assert_eq!(kp["fingerprint"], md5_of(pub_file.to_str().unwrap()));
    // The private key is never shown again.
    let r = user.client.get("/compute/v2.1/os-keypairs/gen").await;
    assert!(r.body["keypair"].get("private_key").is_none());
}

#[tokio::test]
async fn bad_keypairs_are_refused_and_others_keypairs_are_invisible() {
    let api = TestApi::start().await;
    let alice = api.account("kp", "alice", "member").await;
    let bob = api.account("kp", "bob", "member").await;
    let post = |c: &Client, body: Value| {
        let c = c.clone();
        async move { c.post("/compute/v2.1/os-keypairs", body).await }
    };
    for body in [
        json!({"keypair": {"name": "k", "public_key": "ssh-rsa JUNK nova@ubuntu"}}),
        json!({"keypair": {"name": "k", "public_key": ""}}),
        json!({"keypair": {"name": "k", "public_key": format!("ssh-rsa {} x", "A".repeat(2048))}}),
        json!({"keypair": {"name": ""}}),
        json!({"keypair": {"name": "    "}}),
        json!({"keypair": {"name": "key_/."}}),
        json!({"keypair": {"name": "k".repeat(256)}}),
        json!({"keypair": {"name": "k", "type": "ssh"}}),
        json!({"keypair": {}}),
        json!({"name": "k"}),
    ] {
        let r = post(&alice.client, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.body["badRequest"]["code"], 400);
    }
    let r = post(&alice.client, json!({"keypair": {"name": "a key.1@x-y_z"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Bob, in the same project, does not see Alice's keypair.
    let path = "/compute/v2.1/os-keypairs/a%20key.1@x-y_z";
    assert_eq!(alice.client.get(path).await.status, 200);
    assert_eq!(bob.client.get(path).await.status, 404);
    assert_eq!(bob.client.delete(path).await.status, 404);
    let r = bob.client.get("/compute/v2.1/os-keypairs").await;
    assert_eq!(r.body, json!({"keypairs": []}));
    let as_alice = format!("{path}?user_id={}", alice.user_id);
    assert_eq!(bob.client.get(&as_alice).await.status, 403);
    // Admins may name the user.
    let admin = api.admin().await.client;
    assert_eq!(admin.get(&as_alice).await.status, 200);
    let r = admin
        .get(&format!(
            "/compute/v2.1/os-keypairs?user_id={}",
            alice.user_id
        ))
        .await;
    assert_eq!(r.body["keypairs"].as_array().unwrap().len(), 1);
    // Readers may list but not create.
    let reader = api.account("kp", "carol", "reader").await;
    assert_eq!(
        reader.client.get("/compute/v2.1/os-keypairs").await.status,
        200
    );
    let r = post(&reader.client, json!({"keypair": {"name": "r"}})).await;
    assert_eq!(r.status, 403);
}

const LIMIT_KEYS: &[&str] = &[
    "maxServerMeta",
    "maxPersonality",
    "maxPersonalitySize",
    "maxImageMeta",
    "maxTotalKeypairs",
    "maxSecurityGroupRules",
    "maxSecurityGroups",
    "maxServerGroups",
    "maxServerGroupMembers",
    "maxTotalCores",
    "maxTotalFloatingIps",
    "maxTotalInstances",
    "maxTotalRAMSize",
    "totalCoresUsed",
    "totalRAMUsed",
    "totalInstancesUsed",
    "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed",
    "totalServerGroupsUsed",
];

const QUOTA_KEYS: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "floating_ips",
    "fixed_ips",
    "metadata_items",
    "key_pairs",
    "security_groups",
    "security_group_rules",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "server_groups",
    "server_group_members",
];

/// Limits and quota sets; run on both backends.
async fn limits_and_quotas(api: &TestApi) {
    let admin = api.admin().await.client;
    let member = api.account("q", "quser", "member").await;
    let other = api.account("q2", "quser2", "member").await;
    let p = &member.project_id;

    let r = member.client.get("/compute/v2.1/limits").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(keys(&r.body["limits"]), ["absolute", "rate"]);
    assert_eq!(r.body["limits"]["rate"], json!([]));
    let abs = &r.body["limits"]["absolute"];
    assert_eq!(keys(abs), sorted(LIMIT_KEYS));
    assert!(LIMIT_KEYS.iter().all(|k| abs[k].is_i64()), "{abs}");
    assert_eq!(abs["maxTotalCores"], 20);
    assert_eq!(abs["totalSecurityGroupsUsed"], 1, "the default group");

    let mut with_id = QUOTA_KEYS.to_vec();
    with_id.push("id");
    let r = member
        .client
        .get(&format!("/compute/v2.1/os-quota-sets/{p}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body["quota_set"]), sorted(&with_id));
    assert_eq!(r.body["quota_set"]["id"], p.as_str());
    let r = member
        .client
        .get(&format!(
            "/compute/v2.1/os-quota-sets/{p}?user_id={}",
            member.user_id
        ))
        .await;
    assert_eq!(r.status, 200);
    let r = member
        .client
        .get(&format!("/compute/v2.1/os-quota-sets/{}", other.project_id))
        .await;
    assert_eq!(r.status, 403);

    // An admin raises and lowers limits; the project sees them in /limits.
    let r = admin
        .put(
            &format!("/compute/v2.1/os-quota-sets/{p}"),
            json!({"quota_set": {"cores": 7, "instances": "3", "ram": -1, "key_pairs": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(keys(&r.body["quota_set"]), sorted(QUOTA_KEYS), "no id");
    assert_eq!(r.body["quota_set"]["cores"], 7);
    assert_eq!(r.body["quota_set"]["instances"], 3);
    let r = member.client.get("/compute/v2.1/limits").await;
    let abs = &r.body["limits"]["absolute"];
    assert_eq!(abs["maxTotalCores"], 7);
    assert_eq!(abs["maxTotalInstances"], 3);
    assert_eq!(abs["maxTotalRAMSize"], -1);
    let r = admin
        .get(&format!("/compute/v2.1/os-quota-sets/{p}/detail"))
        .await;
    assert_eq!(
        r.body["quota_set"]["cores"],
        json!({"limit": 7, "in_use": 0, "reserved": 0})
    );
    // The keypair quota applies.
    let r = member
        .client
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "one"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = member
        .client
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "two"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.error_message().contains("key pairs"),
        "{}",
        r.error_message()
    );

    // Bad updates change nothing.
    for body in [
        json!({"quota_set": {"cores": "abc"}}),
        json!({"quota_set": {"cores": -2}}),
        json!({"quota_set": {"cores": 1.5}}),
        json!({"quota_set": {"cores": 5, "bogus": 1}}),
        json!({"quota_set": {"cores": 5, "instances": "x"}}),
        json!({"cores": 5}),
    ] {
        let r = admin
            .put(&format!("/compute/v2.1/os-quota-sets/{p}"), body.clone())
            .await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
    }
    let r = admin
        .put(
            "/compute/v2.1/os-quota-sets/no-such-project",
            json!({"quota_set": {"cores": 5}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = member
        .client
        .get(&format!("/compute/v2.1/os-quota-sets/{p}"))
        .await;
    assert_eq!(r.body["quota_set"]["cores"], 7);
    let r = member
        .client
        .put(
            &format!("/compute/v2.1/os-quota-sets/{p}"),
            json!({"quota_set": {"cores": 100}}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        member
            .client
            .delete(&format!("/compute/v2.1/os-quota-sets/{p}"))
            .await
            .status,
        403
    );

    // Per-user limits: within the project's, shown with ?user_id=, and
    // the keypair limit is the user's.
    let for_user = format!("/compute/v2.1/os-quota-sets/{p}?user_id={}", member.user_id);
    let r = admin
        .put(
            &format!("/compute/v2.1/os-quota-sets/{p}"),
            json!({"quota_set": {"key_pairs": 5}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = member
        .client
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "two"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = admin
        .put(
            &for_user,
            json!({"quota_set": {"key_pairs": 2, "cores": 3}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["quota_set"]["key_pairs"], 2);
    assert_eq!(r.body["quota_set"]["cores"], 3);
    let r = member.client.get(&for_user).await;
    assert_eq!(r.body["quota_set"]["key_pairs"], 2);
    let r = member
        .client
        .get(&format!("/compute/v2.1/os-quota-sets/{p}"))
        .await;
    assert_eq!(r.body["quota_set"]["key_pairs"], 5);
    let r = member
        .client
        .post(
            "/compute/v2.1/os-keypairs",
            json!({"keypair": {"name": "three"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    for body in [
        json!({"quota_set": {"cores": 8}}),
        json!({"quota_set": {"cores": -1}}),
    ] {
        let r = admin.put(&for_user, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
    }
    let r = admin
        .put(
            &format!("/compute/v2.1/os-quota-sets/{p}?user_id=nobody"),
            json!({"quota_set": {"cores": 1}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(admin.delete(&for_user).await.status, 202);
    let r = member.client.get(&for_user).await;
    assert_eq!(r.body["quota_set"]["key_pairs"], 5);
    assert_eq!(r.body["quota_set"]["cores"], 7);
    let r = admin
        .put(&for_user, json!({"quota_set": {"cores": 2}}))
        .await;
    assert_eq!(r.status, 200);

    // Reset to the defaults, the users' limits included.
    let r = admin
        .delete(&format!("/compute/v2.1/os-quota-sets/{p}"))
        .await;
    assert_eq!(r.status, 202);
    let r = member
        .client
        .get(&format!("/compute/v2.1/os-quota-sets/{p}"))
        .await;
    assert_eq!(r.body["quota_set"]["cores"], 20);
    let r = member.client.get(&for_user).await;
    assert_eq!(r.body["quota_set"]["cores"], 20);
    let r = member
        .client
        .get(&format!("/compute/v2.1/os-quota-sets/{p}/defaults"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body["quota_set"]), sorted(&with_id));
    assert_eq!(r.body["quota_set"]["instances"], 10);
}

#[tokio::test]
async fn limits_and_quotas_sqlite() {
    limits_and_quotas(&TestApi::start().await).await;
}

#[tokio::test]
async fn limits_and_quotas_postgres() {
    limits_and_quotas(&TestApi::start_on(Backend::Postgres).await).await;
}

/// Availability zones before and after a host registers; both backends.
async fn availability_zones(api: &TestApi) {
    let admin = api.admin().await.client;
    let member = api.account("az", "azuser", "member").await.client;
    let nova_only = json!({"availabilityZoneInfo": [
        {"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}
    ]});
    let r = member.get("/compute/v2.1/os-availability-zone").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, nova_only);
    assert_eq!(
        member
            .get("/compute/v2.1/os-availability-zone/detail")
            .await
            .status,
        403
    );
    let r = admin.get("/compute/v2.1/os-availability-zone/detail").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, nova_only);

    api.db
        .store
        .host_register(&HostReport {
            host: "node1".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            cpu_arch: "x86_64".into(),
            vcpus: 8,
            memory_mb: 8192,
            disk_gb: 100,
            numa_topology: json!([]),
            availability_zone: "az1".into(),
            host_ip: None,
            network_node: false,
            inventory: vec![],
        })
        .await
        .unwrap();
    let r = member.get("/compute/v2.1/os-availability-zone").await;
    assert_eq!(
        r.body,
        json!({"availabilityZoneInfo": [
            {"zoneName": "az1", "zoneState": {"available": true}, "hosts": null}
        ]})
    );
    let r = admin.get("/compute/v2.1/os-availability-zone/detail").await;
    let zone = &r.body["availabilityZoneInfo"][0];
    assert_eq!(zone["zoneName"], "az1");
    let svc = &zone["hosts"]["node1"]["cloud-compute"];
    assert_eq!(svc["available"], true, "{}", r.body);
    assert_eq!(svc["active"], true);
    assert!(svc["updated_at"].is_string());
}

#[tokio::test]
async fn availability_zones_sqlite() {
    availability_zones(&TestApi::start().await).await;
}

#[tokio::test]
async fn availability_zones_postgres() {
    availability_zones(&TestApi::start_on(Backend::Postgres).await).await;
}

#[test]
fn the_openapi_document_lists_the_compute_routes() {
    let doc: Value = serde_json::from_str(&cloud_api::openapi::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}",
        "/compute/v2.1/os-keypairs/{keypair_name}",
        "/compute/v2.1/os-quota-sets/{project_id}/defaults",
        "/compute/v2.1/os-availability-zone/detail",
        "/compute/v2.1/limits",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
}
