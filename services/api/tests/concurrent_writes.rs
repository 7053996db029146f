//! Concurrent read-modify-writes over real HTTP on both backends (issue
//! 16, finding 5): 16 concurrent metadata merges, single-key puts, tag
//! puts and image property patches must each leave their key behind, and
//! concurrent deletes of different keys must each take only their own.
//! Before the fix every handler read the whole map, changed it and wrote
//! it back, so concurrent writers answered 200/201 and silently undid each
//! other.

use cloud_test_utils::{Client, Reply, TestApi, both_backends};
use futures::future::join_all;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const N: usize = 16;

/// A server of the caller's project (only its record: no conductor runs,
/// and metadata and tags do not care about the server's state).
async fn server(c: &Client) -> String {
    let img = cloud_test_utils::upload_image(c, "img", "qcow2", vec![7u8; 64], json!({})).await;
    let r = c
        .post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": img, "networks": "none"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_owned()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `method path` with an optional JSON body, owning what it needs (so
/// many can run at once).
async fn send(c: &Client, method: &'static str, path: String, body: Option<Value>) -> Reply {
    c.send(method, &path, body.as_ref()).await
}

fn expect_all(replies: &[Reply], status: u16, what: &str) {
    for r in replies {
        assert_eq!(r.status, status, "{what}: {}", r.body);
    }
}

both_backends!(server_metadata_writes_are_not_lost, |db| async move {
    let api = TestApi::start_with(db, |_| {}).await;
    let c = api.account("cw", "alice", "member").await.client;
    let id = server(&c).await;
    let path = format!("/compute/v2.1/servers/{id}/metadata");

    // Merges of one key each and single-key puts, all at once.
    let merges = (0..N).map(|i| {
        c.post(
            &path,
            json!({"metadata": {format!("m{i}"): format!("v{i}")}}),
        )
    });
    let puts = (0..N).map(|i| {
        send(
            &c,
            "PUT",
            format!("{path}/p{i}"),
            Some(json!({"meta": {format!("p{i}"): format!("v{i}")}})),
        )
    });
    let (merged, put) = futures::join!(join_all(merges), join_all(puts));
    expect_all(&merged, 200, "metadata merge");
    expect_all(&put, 200, "metadata item put");
    let want: BTreeSet<String> = (0..N)
        .flat_map(|i| [format!("m{i}"), format!("p{i}")])
        .collect();
    let got = c.get(&path).await;
    assert_eq!(
        keys(&got.body["metadata"]),
        want,
        "every written key is kept"
    );
    assert_eq!(got.body["metadata"]["m3"], "v3");

    // Concurrent deletes of different keys each remove only their own.
    let deleted = join_all((0..N).map(|i| send(&c, "DELETE", format!("{path}/m{i}"), None))).await;
    expect_all(&deleted, 204, "metadata item delete");
    let got = c.get(&path).await;
    let left: BTreeSet<String> = (0..N).map(|i| format!("p{i}")).collect();
    assert_eq!(
        keys(&got.body["metadata"]),
        left,
        "every deleted key is gone"
    );

    // The items quota is checked against the real total, not a stale read:
    // 16 concurrent merges of 8 new keys each under a limit of 128 - 16
    // kept ones leave at most 128 keys.
    let wide = join_all((0..N).map(|i| {
        let items: serde_json::Map<String, Value> =
            (0..8).map(|j| (format!("w{i}-{j}"), json!("x"))).collect();
        c.post(&path, json!({ "metadata": items }))
    }))
    .await;
    let ok = wide.iter().filter(|r| r.status == 200).count();
    for r in &wide {
        assert!(r.status == 200 || r.status == 403, "{}", r.body);
    }
    let got = c.get(&path).await;
    let total = keys(&got.body["metadata"]).len();
    assert_eq!(total, N + 8 * ok, "each accepted merge kept all its keys");
    assert!(total <= 128, "the metadata_items limit holds: {total}");
});

both_backends!(server_tag_writes_are_not_lost, |db| async move {
    let api = TestApi::start_with(db, |_| {}).await;
    let c = api.account("cw", "alice", "member").await.client;
    let id = server(&c).await;
    let path = format!("/compute/v2.1/servers/{id}/tags");

    let added = join_all((0..N).map(|i| send(&c, "PUT", format!("{path}/t{i}"), None))).await;
    expect_all(&added, 201, "tag put");
    let got = c.get(&path).await;
    let tags: BTreeSet<String> = got.body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = (0..N).map(|i| format!("t{i}")).collect();
    assert_eq!(tags, want, "every added tag is kept");

    // The same tag put concurrently: one 201, the others 204, one copy.
    let same = join_all((0..N).map(|_| send(&c, "PUT", format!("{path}/dup"), None))).await;
    assert_eq!(same.iter().filter(|r| r.status == 201).count(), 1);
    assert_eq!(same.iter().filter(|r| r.status == 204).count(), N - 1);

    let removed =
        join_all((0..N / 2).map(|i| send(&c, "DELETE", format!("{path}/t{i}"), None))).await;
    expect_all(&removed, 204, "tag delete");
    let got = c.get(&path).await;
    let mut tags: Vec<String> = got.body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    let mut want: Vec<String> = (N / 2..N).map(|i| format!("t{i}")).collect();
    want.push("dup".to_owned());
    want.sort();
    assert_eq!(tags, want, "every removed tag is gone, the rest kept once");
});

both_backends!(image_property_patches_are_not_lost, |db| async move {
    let api = TestApi::start_with(db, |_| {}).await;
    let c = api.account("cw", "alice", "member").await.client;
    let img = cloud_test_utils::upload_image(&c, "img", "qcow2", vec![7u8; 64], json!({})).await;
    let path = format!("/image/v2/images/{img}");
    let patch = |body: Value| {
        Client::finish(
            c.request("PATCH", &path)
                .header(
                    "content-type",
                    "application/openstack-images-v2.1-json-patch",
                )
                .json(&body),
        )
    };

    let added = join_all(
        (0..N).map(|i| patch(json!([{"op": "add", "path": format!("/p{i}"), "value": "v"}]))),
    )
    .await;
    expect_all(&added, 200, "image patch");
    let got = c.get(&path).await;
    for i in 0..N {
        assert_eq!(got.body[format!("p{i}")], "v", "p{i} kept: {}", got.body);
    }

    // Removing different properties concurrently: each goes, none returns.
    let removed =
        join_all((0..N / 2).map(|i| patch(json!([{"op": "remove", "path": format!("/p{i}")}]))))
            .await;
    expect_all(&removed, 200, "image patch remove");
    let got = c.get(&path).await;
    for i in 0..N {
        let present = got.body.get(format!("p{i}")).is_some();
        assert_eq!(present, i >= N / 2, "p{i}: {}", got.body);
    }
});
