//! The image API (Glance v2) over real HTTP: records, data upload and
//! download, the two PATCH dialects, listings, and who may do what.

use cloud_test_utils::{Client, Reply, TestApi};
use md5::{Digest, Md5};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::Sha512;
use std::time::Duration;

const V21: &str = "application/openstack-images-v2.1-json-patch";
const V20: &str = "application/openstack-images-v2.0-json-patch";

/// Creates an image, asserting 201; returns its document.
async fn create(c: &Client, body: Value) -> Value {
    let r = c.post("/image/v2/images", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

/// Creates a qcow2/bare image named `name`; returns its id.
async fn create_named(c: &Client, name: &str) -> String {
    let img = create(
        c,
        json!({"name": name, "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await;
    img["id"].as_str().unwrap().to_owned()
}

async fn upload(c: &Client, id: &str, data: Vec<u8>) -> Reply {
    let req = c
        .request("PUT", &format!("/image/v2/images/{id}/file"))
        .header("Content-Type", "application/octet-stream")
        .body(data);
    Client::finish(req).await
}

async fn patch(c: &Client, id: &str, content_type: &str, ops: Value) -> Reply {
    let req = c
        .request("PATCH", &format!("/image/v2/images/{id}"))
        .header("Content-Type", content_type)
        .body(ops.to_string());
    Client::finish(req).await
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut data);
    data
}

/// Names of the files in the API's image store.
fn stored_files(api: &TestApi) -> Vec<String> {
    match std::fs::read_dir(api.data_dir.path().join("images")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn ids(list: &Reply) -> Vec<String> {
    list.body["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images in {:?}", list.body))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn version_discovery_lists_v2_minor_versions() {
    let api = TestApi::start().await;
    for path in ["/image", "/image/"] {
        let r = api.anonymous().get(path).await;
        assert_eq!(r.status, 300, "{path}: {:?}", r.body);
        let versions = r.body["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 17);
        assert_eq!(versions[0]["id"], "v2.16");
        assert_eq!(versions[0]["status"], "CURRENT");
        assert_eq!(versions[16]["id"], "v2.0");
        assert_eq!(versions[16]["status"], "SUPPORTED");
        for v in versions {
            assert_eq!(v["links"][0]["rel"], "self");
            assert_eq!(v["links"][0]["href"], format!("{}/image/v2/", api.url));
        }
    }
    let r = api.anonymous().get("/image/v2").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["version"]["id"], "v2.16");
}

/// Create as OSC does, upload 5 MiB, read it back, and check every field
/// a client reads.
async fn upload_round_trip(api: &TestApi) {
    let user = api.account("demo", "demo", "member").await;
    let c = &user.client;
    let img = create(
        c,
        json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare",
               "owner_specified.openstack.md5": "", "owner_specified.openstack.sha256": "",
               "owner_specified.openstack.object": "images/cirros"}),
    )
    .await;
    let id = img["id"].as_str().unwrap().to_owned();
    assert_eq!(img["status"], "queued");
    assert_eq!(img["visibility"], "shared");
    assert_eq!(img["owner"], user.project_id.as_str());
    assert_eq!(img["owner_specified.openstack.object"], "images/cirros");
    assert_eq!(img["size"], Value::Null);
    assert_eq!(img["self"], format!("/v2/images/{id}"));
    assert_eq!(img["file"], format!("/v2/images/{id}/file"));
    assert_eq!(img["schema"], "/v2/schemas/image");
    let created = img["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20, "YYYY-MM-DDTHH:MM:SSZ: {created}");
    assert!(created.ends_with('Z'));

    let data = random_bytes(5 * 1024 * 1024);
    let md5 = hex::encode(Md5::digest(&data));
    let sha512 = hex::encode(Sha512::digest(&data));
    let r = upload(c, &id, data.clone()).await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    let r = c.get(&format!("/image/v2/images/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["size"], data.len());
    assert_eq!(r.body["checksum"], md5.as_str());
    assert_eq!(r.body["os_hash_algo"], "sha512");
    assert_eq!(r.body["os_hash_value"], sha512.as_str());
    assert_eq!(
        r.body["virtual_size"],
        Value::Null,
        "random bytes are no qcow2"
    );

    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("content-md5"), Some(md5.as_str()));
    assert_eq!(r.header("content-length"), Some("5242880"));
    assert!(r.bytes == data, "downloaded data differs from the upload");

    // Data goes in once: a second upload conflicts and names the status.
    let r = upload(c, &id, b"again".to_vec()).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.error_message().contains("active"),
        "{}",
        r.error_message()
    );
    // The store holds exactly the final file, no temporary leftovers.
    assert_eq!(stored_files(api), [id.as_str()]);
    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert!(r.bytes == data, "a refused upload must not touch the data");
}

#[tokio::test]
async fn upload_and_download_round_trip() {
    let api = TestApi::start().await;
    upload_round_trip(&api).await;
}

#[tokio::test]
async fn upload_and_download_round_trip_on_postgres() {
    let api = TestApi::start_on(cloud_store::Backend::Postgres).await;
    upload_round_trip(&api).await;
}

#[tokio::test]
async fn chunked_qcow2_upload_records_the_virtual_size() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let id = create_named(&c, "q").await;
    let mut header = vec![0u8; 4096];
    header[..4].copy_from_slice(b"QFI\xfb");
    header[4..8].copy_from_slice(&3u32.to_be_bytes());
    header[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(header[..10].to_vec()),
        Ok(header[10..].to_vec()),
        Ok(random_bytes(300_000)),
    ];
    let req = c
        .request("PUT", &format!("/image/v2/images/{id}/file"))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    let r = Client::finish(req).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = c.get(&format!("/image/v2/images/{id}")).await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["size"], 4096 + 300_000);
    assert_eq!(r.body["virtual_size"], 1u64 << 30);
}

#[tokio::test]
async fn an_interrupted_upload_leaves_the_image_queued_and_no_file() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let id = create_named(&c, "broken").await;
    // Send 2 MiB, wait until the server has claimed the image and is
    // writing a temporary file, then break the body off.
    let (watcher, image, store) = (c.clone(), id.clone(), api.data_dir.path().join("images"));
    let first: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(random_bytes(1 << 20)), Ok(random_bytes(1 << 20))];
    let failure = futures::stream::once(async move {
        for _ in 0..100 {
            let status =
                watcher.get(&format!("/image/v2/images/{image}")).await.body["status"].clone();
            let partial = std::fs::read_dir(&store)
                .map(|d| d.count() == 1)
                .unwrap_or(false);
            if status == "saving" && partial {
                return Err(std::io::Error::other("client gave up"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server never started saving the upload");
    });
    let body = futures::StreamExt::chain(futures::stream::iter(first), failure);
    let req = c
        .request("PUT", &format!("/image/v2/images/{id}/file"))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body));
    assert!(req.send().await.is_err(), "the client aborts the request");
    // The server notices the broken body on its own schedule.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = c.get(&format!("/image/v2/images/{id}")).await.body["status"].clone();
        if status == "queued" && stored_files(&api).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "queued");
    assert_eq!(stored_files(&api), Vec::<String>::new());
    // The upload can be retried.
    let r = upload(&c, &id, b"complete".to_vec()).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert_eq!(r.bytes, b"complete");
}

#[tokio::test]
async fn an_upload_abandoned_by_a_dead_api_can_be_redone() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let id = create_named(&c, "stranded").await;
    // An API process claims the upload, then dies: nothing puts the image
    // back to `queued` and nothing renews its claim.
    let image = id.parse().unwrap();
    api.db
        .store
        .image_begin_upload(image, cloud_model::Timestamp::from_micros(0))
        .await
        .unwrap();
    let r = c.get(&format!("/image/v2/images/{id}")).await;
    assert_eq!(r.body["status"], "saving");
    // While the claim is fresh, it may still be a live upload: refused.
    let r = upload(&c, &id, b"too soon".to_vec()).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    // Once the claim has gone unrenewed for minutes, the upload is redone.
    api.db
        .execute(&format!(
            "UPDATE images SET updated_at = updated_at - 600000000 WHERE id = '{id}'"
        ))
        .await;
    let r = upload(&c, &id, b"complete".to_vec()).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = c.get(&format!("/image/v2/images/{id}")).await;
    assert_eq!(r.body["status"], "active");
    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert_eq!(r.bytes, b"complete");
}

#[tokio::test]
async fn a_queued_image_has_no_data_yet() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let id = create_named(&c, "empty").await;
    let r = c.get(&format!("/image/v2/images/{id}/file")).await;
    assert_eq!(r.status, 204);
    assert!(r.bytes.is_empty());
}

#[tokio::test]
async fn protected_images_must_be_unprotected_before_delete() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let img = create(
        &c,
        json!({"name": "keep", "disk_format": "raw", "container_format": "bare",
               "protected": true}),
    )
    .await;
    let id = img["id"].as_str().unwrap();
    assert_eq!(upload(&c, id, b"data".to_vec()).await.status, 204);
    let r = c.delete(&format!("/image/v2/images/{id}")).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.error_message().contains("protected"),
        "{}",
        r.error_message()
    );
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["protected"], false);
    let r = c.delete(&format!("/image/v2/images/{id}")).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(c.get(&format!("/image/v2/images/{id}")).await.status, 404);
    assert_eq!(
        c.delete(&format!("/image/v2/images/{id}")).await.status,
        404
    );
    assert_eq!(stored_files(&api), Vec::<String>::new(), "data removed");
}

#[tokio::test]
async fn another_projects_private_image_is_not_found() {
    let api = TestApi::start().await;
    let owner = api.account("alpha", "alice", "member").await.client;
    let other = api.account("beta", "bob", "member").await.client;
    let id = create_named(&owner, "mine").await;
    assert_eq!(upload(&owner, &id, b"secret".to_vec()).await.status, 204);
    let path = format!("/image/v2/images/{id}");
    assert_eq!(other.get(&path).await.status, 404);
    assert_eq!(other.get(&format!("{path}/file")).await.status, 404);
    let r = patch(
        &other,
        &id,
        V21,
        json!([{"op": "replace", "path": "/name", "value": "x"}]),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(other.delete(&path).await.status, 404);
    assert!(!ids(&other.get("/image/v2/images").await).contains(&id));
    // Still there for its owner.
    assert_eq!(owner.get(&path).await.body["name"], "mine");

    // A public image is visible to all but changeable only by its owner.
    let admin = api.admin().await.client;
    let public = create(
        &admin,
        json!({"name": "pub", "disk_format": "raw", "container_format": "bare",
               "visibility": "public"}),
    )
    .await;
    let pid = public["id"].as_str().unwrap();
    assert_eq!(
        other.get(&format!("/image/v2/images/{pid}")).await.status,
        200
    );
    assert!(ids(&other.get("/image/v2/images").await).contains(&pid.to_owned()));
    let r = other.delete(&format!("/image/v2/images/{pid}")).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(upload(&other, pid, b"x".to_vec()).await.status, 403);
}

#[tokio::test]
async fn roles_decide_who_may_create_and_publish() {
    let api = TestApi::start().await;
    let member = api.account("demo", "demo", "member").await.client;
    let reader = api.account("demo", "ro", "reader").await.client;
    let r = reader
        .post(
            "/image/v2/images",
            json!({"name": "x", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let id = create_named(&member, "shared-in-project").await;
    // A reader of the project may look and download, not change.
    assert_eq!(reader.get("/image/v2/images").await.status, 200);
    assert_eq!(
        reader.get(&format!("/image/v2/images/{id}")).await.status,
        200
    );
    assert_eq!(upload(&reader, &id, b"x".to_vec()).await.status, 403);
    assert_eq!(
        reader
            .delete(&format!("/image/v2/images/{id}"))
            .await
            .status,
        403
    );
    // Only admins make images public, at create time or by PATCH.
    let r = member
        .post(
            "/image/v2/images",
            json!({"name": "p", "disk_format": "raw", "container_format": "bare",
                   "visibility": "public"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.error_message().contains("admin"), "{}", r.error_message());
    let r = patch(
        &member,
        &id,
        V21,
        json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = patch(
        &member,
        &id,
        V21,
        json!([{"op": "replace", "path": "/visibility", "value": "community"}]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn patch_speaks_both_dialects() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let img = create(
        &c,
        json!({"name": "a", "disk_format": "qcow2", "container_format": "bare",
               "architecture": "x86_64", "tags": ["t1"]}),
    )
    .await;
    let id = img["id"].as_str().unwrap();

    // v2.1 (openstacksdk).
    let r = patch(
        &c,
        id,
        V21,
        json!([
            {"op": "replace", "path": "/name", "value": "b"},
            {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
            {"op": "remove", "path": "/architecture"},
            {"op": "replace", "path": "/tags", "value": ["x", "y", "x"]},
            {"op": "replace", "path": "/min_ram", "value": 512},
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "b");
    assert_eq!(r.body["hw_disk_bus"], "virtio");
    assert!(r.body.get("architecture").is_none(), "{:?}", r.body);
    assert_eq!(r.body["tags"], json!(["x", "y"]));
    assert_eq!(r.body["min_ram"], 512);

    // v2.0 (tempest).
    let r = patch(
        &c,
        id,
        V20,
        json!([{"replace": "/name", "value": "c"}, {"add": "/os_distro", "value": "cirros"}]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "c");
    assert_eq!(r.body["os_distro"], "cirros");
    let r = patch(
        &c,
        id,
        V20,
        json!([{"add": "/os_distro", "value": "again"}]),
    )
    .await;
    assert_eq!(
        r.status, 409,
        "v2.0 add of an existing property: {:?}",
        r.body
    );

    // Other media types are 415 and name the accepted ones.
    let r = patch(
        &c,
        id,
        "application/json",
        json!([{"op": "replace", "path": "/name", "value": "d"}]),
    )
    .await;
    assert_eq!(r.status, 415, "{:?}", r.body);
    assert!(r.error_message().contains(V21), "{}", r.error_message());

    // Read-only attributes are 403; bad operations and paths are 400.
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "replace", "path": "/status", "value": "active"}]),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.error_message().contains("status"),
        "{}",
        r.error_message()
    );
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "move", "path": "/name", "value": "x"}]),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_message().contains("move"), "{}", r.error_message());
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "replace", "path": "name", "value": "x"}]),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_message().contains("path"), "{}", r.error_message());
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "replace", "path": "/disk_format", "value": "floppy"}]),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_message().contains("disk_format"),
        "{}",
        r.error_message()
    );
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "remove", "path": "/nonexistent"}]),
    )
    .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let r = patch(&c, id, V21, json!({"op": "replace"})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);

    // A patch that fails half-way changes nothing.
    let r = patch(
        &c,
        id,
        V21,
        json!([{"op": "replace", "path": "/name", "value": "half"},
               {"op": "replace", "path": "/size", "value": 1}]),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        c.get(&format!("/image/v2/images/{id}")).await.body["name"],
        "c"
    );
}

#[tokio::test]
async fn listing_filters_and_pages() {
    listing(&TestApi::start().await).await;
}

#[tokio::test]
async fn listing_filters_and_pages_on_postgres() {
    listing(&TestApi::start_on(cloud_store::Backend::Postgres).await).await;
}

async fn listing(api: &TestApi) {
    let c = api.account("demo", "demo", "member").await.client;
    let mut all = Vec::new();
    for i in 0..5 {
        let fmt = if i % 2 == 0 { "qcow2" } else { "raw" };
        let img = create(
            &c,
            json!({"name": format!("img{i}"), "disk_format": fmt, "container_format": "bare",
                   "visibility": if i == 0 { "private" } else { "shared" },
                   "tags": if i == 1 { json!(["gold"]) } else { json!([]) }}),
        )
        .await;
        all.push(img["id"].as_str().unwrap().to_owned());
    }
    let hidden = create(
        &c,
        json!({"name": "hidden", "disk_format": "raw", "container_format": "bare",
               "os_hidden": true}),
    )
    .await;
    let hidden = hidden["id"].as_str().unwrap().to_owned();

    let r = c.get("/image/v2/images").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["first"], "/v2/images");
    assert_eq!(r.body["schema"], "/v2/schemas/images");
    assert!(r.body.get("next").is_none(), "{:?}", r.body);
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(ids(&r), newest_first, "newest first, hidden left out");

    // Paging by limit and marker, following `next`.
    let mut seen = Vec::new();
    let mut url = "/v2/images?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let r = c.get(&format!("/image{url}")).await;
        assert_eq!(r.status, 200, "{url}: {:?}", r.body);
        seen.extend(ids(&r));
        pages += 1;
        match r.body["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    // Filters.
    assert_eq!(
        ids(&c.get("/image/v2/images?name=img3").await),
        [all[3].clone()]
    );
    assert_eq!(
        ids(&c.get("/image/v2/images?disk_format=qcow2").await),
        [all[4].clone(), all[2].clone(), all[0].clone()]
    );
    assert_eq!(
        ids(&c.get("/image/v2/images?visibility=private").await),
        [all[0].clone()]
    );
    assert_eq!(
        ids(&c.get("/image/v2/images?tag=gold").await),
        [all[1].clone()]
    );
    assert_eq!(
        ids(&c.get("/image/v2/images?os_hidden=true").await),
        [hidden.as_str()]
    );
    assert_eq!(
        ids(&c.get("/image/v2/images?status=active").await),
        Vec::<String>::new()
    );
    let q = format!(
        "/image/v2/images?id=in%3A{}%2C{}%2Cnot-a-uuid",
        all[1], all[3]
    );
    assert_eq!(ids(&c.get(&q).await), [all[3].clone(), all[1].clone()]);
    assert_eq!(
        ids(&c.get(&format!("/image/v2/images?id={}", all[2])).await),
        [all[2].clone()]
    );
    // Unknown parameters are ignored.
    assert_eq!(ids(&c.get("/image/v2/images?deleted=False").await).len(), 5);

    // Bad paging and filter values are 400s that say what is wrong.
    let r = c.get("/image/v2/images?marker=nope").await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("marker"),
        "{}",
        r.error_message()
    );
    let r = c
        .get(&format!("/image/v2/images?marker={}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_message().contains("marker"),
        "{}",
        r.error_message()
    );
    let r = c.get("/image/v2/images?limit=x").await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("limit"), "{}", r.error_message());
    let r = c.get("/image/v2/images?status=bogus").await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("status"),
        "{}",
        r.error_message()
    );
}

#[tokio::test]
async fn bad_input_gets_a_message_naming_the_problem() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let r = c
        .post(
            "/image/v2/images",
            json!({"name": "x", "disk_format": "floppy", "container_format": "bare"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let m = r.error_message();
    assert!(m.contains("disk_format") && m.contains("qcow2"), "{m}");
    let r = c
        .post("/image/v2/images", json!({"container_format": "crate"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("container_format"),
        "{}",
        r.error_message()
    );
    let r = c.post("/image/v2/images", json!({"min_ram": -1})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("min_ram"),
        "{}",
        r.error_message()
    );
    let r = c.post("/image/v2/images", json!({"kernel_id": 5})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("kernel_id"),
        "{}",
        r.error_message()
    );
    let r = c
        .post("/image/v2/images", json!({"status": "active"}))
        .await;
    assert_eq!(r.status, 403, "read-only attribute: {:?}", r.body);
    assert!(
        r.error_message().contains("status"),
        "{}",
        r.error_message()
    );
    let r = c
        .post("/image/v2/images", json!({"id": "not-a-uuid"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("'id'"), "{}", r.error_message());
    let r = c.post("/image/v2/images", json!(["a list"])).await;
    assert_eq!(r.status, 400);

    let bad_json = c
        .request("POST", "/image/v2/images")
        .header("Content-Type", "application/json")
        .body("{\"name\": ");
    let r = Client::finish(bad_json).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("Malformed"),
        "{}",
        r.error_message()
    );
    assert!(
        r.body["title"].is_string(),
        "Glance's error format: {:?}",
        r.body
    );

    // A client-chosen id works once.
    let id = uuid::Uuid::new_v4().to_string();
    let img = create(&c, json!({"id": id, "name": "chosen"})).await;
    assert_eq!(img["id"], id.as_str());
    let r = c.post("/image/v2/images", json!({"id": id})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(r.error_message().contains(&id), "{}", r.error_message());

    // Names where ids belong are 404s (clients then search by name).
    assert_eq!(c.get("/image/v2/images/chosen").await.status, 404);
    assert_eq!(c.get("/image/v2/images/chosen/file").await.status, 404);
    assert_eq!(
        c.get(&format!("/image/v2/images/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        404
    );

    // Data needs formats first, and must be octet-stream.
    let r = upload(&c, &id, b"x".to_vec()).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_message().contains("disk_format"),
        "{}",
        r.error_message()
    );
    let fmt = patch(
        &c,
        &id,
        V21,
        json!([{"op": "add", "path": "/disk_format", "value": "raw"},
               {"op": "add", "path": "/container_format", "value": "bare"}]),
    )
    .await;
    assert_eq!(fmt.status, 200, "{:?}", fmt.body);
    let wrong_type = c
        .request("PUT", &format!("/image/v2/images/{id}/file"))
        .header("Content-Type", "application/json")
        .body("{}");
    let r = Client::finish(wrong_type).await;
    assert_eq!(r.status, 415, "{:?}", r.body);
    assert_eq!(
        c.get(&format!("/image/v2/images/{id}")).await.body["status"],
        "queued"
    );
}

#[tokio::test]
async fn schemas_are_served() {
    let api = TestApi::start().await;
    let c = api.account("demo", "demo", "member").await.client;
    let r = c.get("/image/v2/schemas/image").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "image");
    assert_eq!(r.body["additionalProperties"]["type"], "string");
    let r = c.get("/image/v2/schemas/images").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "images");
}
