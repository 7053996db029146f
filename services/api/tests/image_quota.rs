//! The image storage quota (issue 16, security 10): `image_size_total`,
//! the bytes of image data a project may store, from the configured
//! default or the project's own limit. An upload that would go over it is
//! refused with 413 as Glance does, whether its size is announced
//! (`Content-Length`) or only found out while streaming (chunked), and it
//! leaves the image `queued` and no data behind.

use cloud_model::ProjectId;
use cloud_test_utils::{Client, Reply, TestApi, TestDb, both_backends};
use serde_json::json;

async fn image(c: &Client, name: &str) -> String {
    let r = c
        .post(
            "/image/v2/images",
            json!({"name": name, "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn upload(c: &Client, id: &str, size: usize) -> Reply {
    Client::finish(
        c.request("PUT", &format!("/image/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(vec![1u8; size]),
    )
    .await
}

/// An upload without `Content-Length`: the size shows only as it streams.
async fn upload_chunked(c: &Client, id: &str, chunks: &[usize]) -> Reply {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        chunks.iter().map(|n| Ok(vec![2u8; *n])).collect();
    Client::finish(
        c.request("PUT", &format!("/image/v2/images/{id}/file"))
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await
}

async fn status(c: &Client, id: &str) -> String {
    let r = c.get(&format!("/image/v2/images/{id}")).await;
    r.body["status"].as_str().unwrap().to_owned()
}

fn stored_files(api: &TestApi) -> usize {
    std::fs::read_dir(api.data_dir.path().join("images"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn assert_over_quota(r: &Reply) {
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.error_message().contains("image_size_total"),
        "names the quota: {}",
        r.body
    );
}

both_backends!(
    a_projects_limit_caps_its_image_data,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let user = api.account("img-quota", "ivy", "member").await;
        let other = api.account("img-free", "otto", "member").await;
        api.db
            .store
            .quota_set(
                &ProjectId::from_string(user.project_id.clone()),
                "image_size_total",
                1000,
            )
            .await
            .unwrap();
        let c = &user.client;

        let a = image(c, "a").await;
        assert_eq!(upload(c, &a, 600).await.status, 204);
        // 600 + 600 > 1000: refused before a byte is stored.
        let b = image(c, "b").await;
        assert_over_quota(&upload(c, &b, 600).await);
        assert_eq!(status(c, &b).await, "queued");
        assert_eq!(stored_files(&api), 1);
        // What fits still goes in: 600 + 300.
        assert_eq!(upload(c, &b, 300).await.status, 204);
        // A chunked upload is stopped once it goes over (900 + 3 * 60).
        let d = image(c, "d").await;
        assert_over_quota(&upload_chunked(c, &d, &[60, 60, 60]).await);
        assert_eq!(status(c, &d).await, "queued");
        assert_eq!(stored_files(&api), 2);
        assert_eq!(upload_chunked(c, &d, &[50, 50]).await.status, 204);
        // Full: even one more byte is refused.
        let e = image(c, "e").await;
        assert_over_quota(&upload(c, &e, 1).await);
        // Deleting an image gives its bytes back.
        assert_eq!(c.delete(&format!("/image/v2/images/{a}")).await.status, 204);
        assert_eq!(upload(c, &e, 500).await.status, 204);

        // Another project is not limited by it.
        let o = image(&other.client, "o").await;
        assert_eq!(upload(&other.client, &o, 5000).await.status, 204);
    }
);
