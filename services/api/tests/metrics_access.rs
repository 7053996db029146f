//! `/metrics` is not on the API's listener (issue 16, finding 11): it is
//! served only on `[api] metrics_listen` (cloud-aio `--metrics-listen`),
//! an address for the operators' network, and is off by default.

use cloud_test_utils::{TestApi, TestDb, free_port};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_api_listener_does_not_serve_metrics() {
    let api = TestApi::start().await;
    let anonymous = api.anonymous().get("/metrics").await;
    assert_eq!(anonymous.status, 404, "{:?}", anonymous.body);
    // Not even to an admin: it is not there.
    let admin = api.admin().await;
    let r = admin.client.get("/metrics").await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let text = reqwest::get(format!("{}/metrics", api.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("# TYPE"), "{text}");
}

#[tokio::test]
async fn metrics_are_off_by_default_and_served_on_their_own_address() {
    let defaults = cloud_api::ApiConfig::for_data_dir("/nonexistent".into());
    assert_eq!(defaults.metrics_listen, None);

    let port = free_port();
    let api = TestApi::start_with(TestDb::new(cloud_store::Backend::Sqlite).await, |c| {
        c.metrics_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    // Some work to count.
    let _ = api.admin().await;
    let r = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("the metrics listener answers");
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE cloud_db_statements_total counter"),
        "{text}"
    );
    assert!(
        text.contains("cloud_bus_messages_published_total"),
        "{text}"
    );
    // Only metrics there: not the API.
    let r = reqwest::get(format!("http://127.0.0.1:{port}/identity/v3"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // And still not on the API's listener.
    assert_eq!(api.anonymous().get("/metrics").await.status, 404);
}

#[tokio::test]
async fn aio_serves_metrics_only_on_metrics_listen() {
    let bin = cloud_test_utils::build_binaries(&["cloud-aio"]).join("cloud-aio");
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (free_port(), free_port());
    let mut child = Command::new(bin)
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .args(["--driver", "fake"])
        .env("CLOUD_ADMIN_PASSWORD", "metrics-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let outcome = async {
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/identity/v3")).await
                && r.status() == 200
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("cloud-aio did not start".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let main = reqwest::get(format!("{base}/metrics")).await.unwrap();
        if main.status() != 404 {
            return Err(format!(
                "the API listener answered /metrics: {}",
                main.status()
            ));
        }
        let r = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
            .await
            .map_err(|e| e.to_string())?;
        let text = r.text().await.unwrap();
        if !text.contains("cloud_db_statements_total") {
            return Err(format!("no metrics on --metrics-listen: {text}"));
        }
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    outcome.unwrap();
}
