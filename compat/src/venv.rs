//! The virtualenv with the clients, made or reused by `compat/venv.sh`.
//!
//! A test that cannot get its clients fails: a compatibility suite that
//! passes without running a client would be a lie. The error says whether
//! we were under CI (`CI=true`), where the venv must be creatable, or on a
//! developer's machine, where the likely cause is no access to PyPI.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The virtualenv's directory, creating it on first use in this process.
/// Panics (fails the test) when it cannot be created.
pub fn ensure() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = crate::compat_dir().join("venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            panic!(
                "compat/venv.sh failed ({}): the OpenStack clients are needed for this test{}.\n{stderr}",
                out.status,
                if ci {
                    " and CI must be able to install them from PyPI"
                } else {
                    " (it installs them from PyPI; is it reachable?)"
                }
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(
            path.join("bin/openstack").is_file(),
            "compat/venv.sh printed {path:?}, which has no bin/openstack\n{stderr}"
        );
        path
    })
    .clone()
}
