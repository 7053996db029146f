//! cloud-aio keeps its data private (issue 16, security 10): the data
//! directory is 0700 and the database (which holds password hashes and
//! token hashes) 0600, whether cloud-aio creates them or finds them looser
//! from an earlier version. With the libvirt driver the directory is 0711
//! instead, so that QEMU (user libvirt-qemu) can still traverse it to the
//! guests' disks; that choice is a unit test of the binary.

mod support;

use cloud_test_utils::terminate;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use support::start_aio;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory and every database file in it.
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let db = dir.join("cloud.db");
    assert_eq!(mode(&db), 0o600, "{}", db.display());
    for suffix in ["-wal", "-shm", "-journal"] {
        let f = dir.join(format!("cloud.db{suffix}"));
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    let images = dir.join("images");
    if images.exists() {
        assert_eq!(mode(&images), 0o700, "{}", images.display());
    }
}

#[tokio::test]
async fn a_new_data_directory_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    // Under a world-readable parent, as ./data usually is.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("data");
    let (mut child, _, _) = start_aio(&dir, &[]).await;
    assert_private(&dir);
    terminate(&mut child, "cloud-aio", Duration::from_secs(20));
    assert_private(&dir);
}

#[tokio::test]
async fn an_existing_loose_data_directory_is_tightened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // An empty file is an empty SQLite database.
    let db = dir.join("cloud.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut child, _, _) = start_aio(&dir, &[]).await;
    assert_private(&dir);
    terminate(&mut child, "cloud-aio", Duration::from_secs(20));
    assert_private(&dir);
}
