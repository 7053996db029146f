//! cloud-api warns at start-up when `public_url` is unset (issue 16,
//! security 10): catalog and resource links then follow each request's
//! `Host` header, which any client chooses.

use std::process::{Command, Stdio};

/// Runs cloud-api with `api_section` (it stops at the unreachable
/// database) and returns what it printed.
fn start_output(api_section: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("api.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
             database_url = \"postgres://nobody@127.0.0.1:1/none\"\n{api_section}\n\
             [bus]\namqp_url = \"amqp://guest:guest@127.0.0.1:1/%2f\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cloud-api"))
        .arg("--config")
        .arg(&config)
        .env_remove("DATABASE_URL")
        .env_remove("CLOUD_AMQP_URL")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "no database: it must not start");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn without_public_url_it_warns() {
    let out = start_output("");
    assert!(
        out.contains("public_url is not set") && out.contains("Host"),
        "{out}"
    );
}

#[test]
fn with_public_url_it_does_not() {
    let out = start_output("public_url = \"https://cloud.example.com\"");
    assert!(!out.contains("public_url is not set"), "{out}");
}
