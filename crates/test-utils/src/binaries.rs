//! Tests that run the real service binaries as processes: a free port to
//! give them, and the binaries themselves, built on demand.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

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

/// Sends `child` (the service `name`) SIGTERM and asserts it exits 0
/// within `within`, as an operator's `systemctl stop` expects; killed (and
/// the test failed) when it does not stop in time. Blocks the thread: the
/// service is another process.
pub fn terminate(child: &mut Child, name: &str, within: Duration) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{name} exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
