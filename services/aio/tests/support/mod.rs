//! Helpers shared by the cloud-aio integration tests: starting the binary
//! as an operator would, on a data directory of the test's.

use cloud_test_utils::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts cloud-aio on `dir` with the fake driver and `extra` arguments,
/// and waits until it answers an admin login; returns the process, its
/// base URL and the admin's token. Fails the test when cloud-aio exits
/// or does not answer within 30 s.
#[allow(clippy::zombie_processes)] // the caller stops it and waits for it
pub async fn start_aio(dir: &Path, extra: &[&str]) -> (Child, String, String) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloud-aio"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--driver",
            "fake",
        ])
        .args(extra)
        .env("CLOUD_ADMIN_PASSWORD", "quickstart")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let login = http
            .post(format!("{base}/identity/v3/auth/tokens"))
            .json(&serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "quickstart"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
            .send()
            .await;
        if let Ok(r) = login
            && r.status() == 201
        {
            let token = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
            return (child, base, token);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cloud-aio exited with {status}");
        }
        assert!(Instant::now() < deadline, "cloud-aio did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
