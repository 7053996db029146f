//! Tests that run the real service binaries as processes: a free port to
//! give them, and the binaries themselves, built on demand.

use std::path::PathBuf;
use std::process::Command;

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Builds `packages` with cargo (cheap when they are up to date) and
/// returns the directory of their binaries: the calling test binary lives
/// in `target/<profile>/deps`, so they are one level up, in the same
/// profile. Panics (fails the test) when the build fails.
pub fn build_binaries(packages: &[&str]) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build");
    for p in packages {
        cmd.args(["-p", p]);
    }
    let status = cmd
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .status()
        .expect("cargo build runs");
    assert!(status.success(), "building {packages:?} failed");
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}
