//! The quickstart binary: starts on an empty data directory, serves a
//! working cloud (login, boot a server on the local fake host), and on
//! SIGTERM finishes and exits 0.

mod support;

use cloud_test_utils::terminate;
use std::time::{Duration, Instant};
use support::start_aio;

#[tokio::test]
async fn aio_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, token) = start_aio(dir.path(), &["--fake-hosts", "1"]).await;
    let http = reqwest::Client::new();
    let flavors: serde_json::Value = http
        .get(format!("{base}/compute/v2.1/flavors"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = flavors["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m1.tiny", "m1.small", "m1.medium"]);
    // SIGTERM: stop accepting, finish, exit 0.
    terminate(&mut child, "cloud-aio", Duration::from_secs(20));
    assert!(dir.path().join("cloud.db").exists());
}

/// Boots a server of a 20-vCPU flavor (the quota allows 20 cores) on a cloud whose only host has 16
/// CPUs; returns its final status.
async fn boot_big(base: &str, token: &str) -> String {
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .header("X-Auth-Token", token)
            .json(&body)
            .send()
    };
    let r = post(
        "/compute/v2.1/flavors",
        serde_json::json!({"flavor": {"name": "big", "id": "big", "vcpus": 20, "ram": 512, "disk": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post(
        "/image/v2/images",
        serde_json::json!({"name": "img", "disk_format": "raw", "container_format": "bare"}),
    )
    .await
    .unwrap();
    let image: serde_json::Value = r.json().await.unwrap();
    let image = image["id"].as_str().unwrap().to_owned();
    let r = http
        .put(format!("{base}/image/v2/images/{image}/file"))
        .header("X-Auth-Token", token)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = post(
        "/compute/v2.1/servers",
        serde_json::json!({"server": {"name": "big", "flavorRef": "big", "imageRef": image, "networks": "none"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let server: serde_json::Value = r.json().await.unwrap();
    let id = server["server"]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s: serde_json::Value = http
            .get(format!("{base}/compute/v2.1/servers/{id}"))
            .header("X-Auth-Token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = s["server"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "ACTIVE" || status == "ERROR" {
            return status;
        }
        assert!(Instant::now() < deadline, "server stuck: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The local host overcommits CPUs 4:1 by default (Nova's ratio), so a
/// server bigger than the host's CPUs fits; `--cpu-allocation-ratio 1`
/// turns that off.
#[tokio::test]
async fn the_local_host_uses_novas_allocation_ratios() {
    for (args, expected) in [
        (&[][..], "ACTIVE"),
        (&["--cpu-allocation-ratio", "1.0"][..], "ERROR"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, base, token) = start_aio(dir.path(), args).await;
        let status = boot_big(&base, &token).await;
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, expected, "with {args:?}");
    }
}
