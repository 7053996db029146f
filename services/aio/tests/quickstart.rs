//! The quickstart binary: starts on an empty data directory, serves a
//! working cloud (login, boot a server on the local fake host), and on
//! SIGTERM finishes and exits 0.

use cloud_test_utils::free_port;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn aio_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloud-aio"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--driver",
            "fake",
            "--fake-hosts",
            "1",
        ])
        .env("CLOUD_ADMIN_PASSWORD", "quickstart")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/identity/v3"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "cloud-aio did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = http
        .post(format!("{base}/identity/v3/auth/tokens"))
        .json(&serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "quickstart"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 201);
    let token = login.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_owned();
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
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "cloud-aio exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "cloud-aio did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dir.path().join("cloud.db").exists());
}
