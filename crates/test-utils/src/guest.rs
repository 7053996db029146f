//! The shared test guest (`shared/images`): where its build script is,
//! and one build per set of inputs, shared by every test process of a run
//! (the real-VM tests of the e2e crate and of cloud-aio).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The directory with the test guest's build script and guest files.
pub fn images_dir() -> PathBuf {
    std::env::var_os("CLOUD_TEST_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/images"))
}

/// A key for what the build reads: the script and guest files, and the
/// kernels in /boot. Tests of one run (and later runs with the same
/// inputs) share one build.
fn inputs_key(dir: &Path) -> u64 {
    fn walk(p: &Path, h: &mut std::collections::hash_map::DefaultHasher) {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            let name = e
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name == "out" || name.starts_with('.') {
                continue;
            }
            name.hash(h);
            if e.is_dir() {
                walk(&e, h);
            } else if let Ok(bytes) = std::fs::read(&e) {
                bytes.hash(h);
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    walk(dir, &mut h);
    let mut kernels: Vec<String> = std::fs::read_dir("/boot")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("vmlinuz-"))
                .collect()
        })
        .unwrap_or_default();
    kernels.sort();
    kernels.hash(&mut h);
    h.finish()
}

/// The built test guest (`testguest.qcow2`, `-vmlinuz`, `-initrd.img`):
/// built with `build-test-image.sh` under `cache_root` (a test crate's
/// `CARGO_TARGET_TMPDIR`) unless a build of the same inputs is there; concurrent test
/// processes wait for one build under a file lock.
pub fn test_guest(cache_root: &Path) -> PathBuf {
    let dir = images_dir();
    let script = dir.join("build-test-image.sh");
    assert!(
        script.is_file(),
        "{} not found; set CLOUD_TEST_IMAGES_DIR to the test image directory",
        script.display()
    );
    let root = cache_root.join("testguest");
    std::fs::create_dir_all(&root).expect("guest cache dir");
    let out = root.join(format!("{:016x}", inputs_key(&dir)));
    let lock = std::fs::File::create(root.join(".lock")).expect("lock file");
    lock.lock().expect("lock the guest cache");
    if !out.join("SHA256SUMS").is_file() {
        let started = Instant::now();
        let _ = std::fs::remove_dir_all(&out);
        let status = std::process::Command::new(&script)
            .arg("-o")
            .arg(&out)
            .arg("--no-raw")
            .status()
            .expect("cannot run build-test-image.sh");
        assert!(status.success(), "build-test-image.sh failed: {status}");
        eprintln!("test guest built in {:.1?}", started.elapsed());
    }
    drop(lock);
    out
}
