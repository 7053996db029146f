//! The agent's image downloads against a real API server: login with the
//! service account, the image endpoint from the catalog, the bytes
//! streamed exactly, a second login after the token is revoked, and clear
//! errors for a wrong password or a missing image.

use cloud_compute::{HttpImageFetcher, ImageApiConfig};
use cloud_driver::ImageFetcher;
use cloud_test_utils::{ADMIN_PASSWORD, TestApi, upload_image};
use serde_json::json;

fn config(api: &TestApi, password: &str) -> ImageApiConfig {
    ImageApiConfig {
        // Without the `/v3`: the fetcher adds it.
        auth_url: format!("{}/identity", api.url),
        username: "admin".to_owned(),
        password: Some(password.to_owned()),
        user_domain_name: "Default".to_owned(),
        project_name: "admin".to_owned(),
        project_domain_name: "Default".to_owned(),
    }
}

async fn fetch(fetcher: &HttpImageFetcher, id: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = fetcher.fetch(id, &mut out).await?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_images_and_logs_in_again_when_the_token_is_revoked() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    // Larger than one read, not a multiple of the chunk size.
    let data: Vec<u8> = (0..3_000_123u32).map(|i| (i % 251) as u8).collect();
    let id = upload_image(&admin.client, "blob", "raw", data.clone(), json!({})).await;

    let fetcher = HttpImageFetcher::new(config(&api, ADMIN_PASSWORD)).unwrap();
    assert_eq!(fetch(&fetcher, &id).await.unwrap(), data);
    let first = fetcher.current_token().await.unwrap();
    // The token is reused.
    assert_eq!(fetch(&fetcher, &id).await.unwrap().len(), data.len());
    assert_eq!(fetcher.current_token().await.unwrap(), first);

    // Revoke it (a password change revokes the user's tokens): the next
    // download gets a 401, logs in again and succeeds.
    let user = cloud_model::UserId::from_string(&admin.user_id);
    let hash = cloud_api::auth::password::hash_password(ADMIN_PASSWORD.to_owned())
        .await
        .unwrap();
    api.db.store.user_set_password(&user, &hash).await.unwrap();
    assert_eq!(fetch(&fetcher, &id).await.unwrap(), data);
    assert_ne!(fetcher.current_token().await.unwrap(), first);

    // A missing image: the API's own message.
    let missing = "7f2c1a8e-0000-4000-8000-000000000000";
    let err = fetch(&fetcher, missing).await.unwrap_err().to_string();
    assert!(err.contains("404") && err.contains(missing), "{err}");

    // An image without data (the old admin token was revoked too).
    let admin = api.admin().await;
    let r = admin
        .client
        .post(
            "/image/v2/images",
            json!({"name": "empty", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let queued = r.body["id"].as_str().unwrap().to_owned();
    let err = fetch(&fetcher, &queued).await.unwrap_err().to_string();
    assert!(err.contains("no data"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_says_who_could_not_log_in() {
    let api = TestApi::start().await;
    let fetcher = HttpImageFetcher::new(config(&api, "wrong")).unwrap();
    let err = fetch(&fetcher, "7f2c1a8e-0000-4000-8000-000000000000")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("login as user admin") && err.contains("401"),
        "{err}"
    );
    // An unreachable identity API names the URL.
    let mut c = config(&api, ADMIN_PASSWORD);
    c.auth_url = "http://127.0.0.1:9/identity/v3".to_owned();
    let err = fetch(&HttpImageFetcher::new(c).unwrap(), "x")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("http://127.0.0.1:9/identity/v3/auth/tokens"),
        "{err}"
    );
}

#[test]
fn a_missing_password_is_refused_at_start() {
    let c = ImageApiConfig {
        auth_url: "http://h/identity/v3".to_owned(),
        username: "compute".to_owned(),
        password: None,
        user_domain_name: "Default".to_owned(),
        project_name: "service".to_owned(),
        project_domain_name: "Default".to_owned(),
    };
    if std::env::var_os(cloud_compute::image_fetcher::PASSWORD_ENV).is_none() {
        let err = HttpImageFetcher::new(c).err().unwrap().to_string();
        assert!(err.contains("CLOUD_COMPUTE_PASSWORD"), "{err}");
    }
}

/// Snapshot uploads: into a queued image (its disk_format corrected to
/// what was captured), again after the token was revoked, a no-op for an
/// image already active, and a clear error for a deleted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_snapshots_into_queued_images() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let queued = |name: &'static str| {
        let client = admin.client.clone();
        async move {
            let r = client
                .post(
                    "/image/v2/images",
                    json!({"name": name, "disk_format": "qcow2", "container_format": "bare"}),
                )
                .await;
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let file = std::env::temp_dir().join(format!("snapshot-upload-{}", std::process::id()));
    let data: Vec<u8> = (0..700_001u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let fetcher = HttpImageFetcher::new(config(&api, ADMIN_PASSWORD)).unwrap();

    let first = queued("snap-a").await;
    fetcher.upload(&first, &file, "raw").await.unwrap();
    let image = admin.client.get(&format!("/image/v2/images/{first}")).await;
    assert_eq!(image.body["status"], "active", "{}", image.body);
    assert_eq!(image.body["disk_format"], "raw", "{}", image.body);
    assert_eq!(image.body["size"], data.len() as u64);
    assert_eq!(fetch(&fetcher, &first).await.unwrap(), data);
    // Already active (a repeated request): nothing to do.
    fetcher.upload(&first, &file, "raw").await.unwrap();

    // After the token is revoked the upload logs in again.
    let user = cloud_model::UserId::from_string(&admin.user_id);
    let hash = cloud_api::auth::password::hash_password(ADMIN_PASSWORD.to_owned())
        .await
        .unwrap();
    api.db.store.user_set_password(&user, &hash).await.unwrap();
    let admin = api.admin().await;
    let r = admin
        .client
        .post(
            "/image/v2/images",
            json!({"name": "snap-b", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let second = r.body["id"].as_str().unwrap().to_owned();
    fetcher.upload(&second, &file, "qcow2").await.unwrap();
    let image = admin
        .client
        .get(&format!("/image/v2/images/{second}"))
        .await;
    assert_eq!(image.body["status"], "active", "{}", image.body);
    assert_eq!(image.body["disk_format"], "qcow2", "{}", image.body);

    let missing = "7f2c1a8e-0000-4000-8000-000000000001";
    let err = fetcher
        .upload(missing, &file, "qcow2")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("404") && err.contains(missing), "{err}");
    let _ = std::fs::remove_file(&file);
}
