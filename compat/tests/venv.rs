//! `compat/venv.sh` fails loudly, never silently: without a usable Python
//! or without PyPI it exits non-zero with a message saying which, so the
//! compatibility tests fail instead of passing without their clients.

use std::process::Command;

fn venv_sh(env: &[(&str, &str)]) -> (bool, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(cloud_compat::compat_dir().join("venv.sh"))
        .env("CLOUD_COMPAT_CACHE", cache.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unusable_python_is_named() {
    let (ok, err) = venv_sh(&[("CLOUD_COMPAT_PYTHON", "/bin/false")]);
    assert!(!ok);
    assert!(
        err.contains("'/bin/false' is not a usable Python interpreter"),
        "{err}"
    );
}

#[test]
fn an_unreachable_package_index_fails_the_script() {
    // A closed local port stands in for "no network".
    let (ok, err) = venv_sh(&[
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
        ("PIP_RETRIES", "0"),
        ("PIP_TIMEOUT", "2"),
    ]);
    assert!(!ok);
    assert!(
        err.contains("from PyPI failed (is PyPI reachable?)"),
        "{err}"
    );
}
