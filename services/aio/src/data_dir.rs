//! The data directory is private: it holds the SQLite database, with
//! every password hash and token hash, and the image files (issue 16,
//! finding 10). cloud-aio creates it 0700 and the database 0600, and
//! tightens them when an earlier version left them world-readable.
//!
//! The one exception is the libvirt driver: QEMU runs as another user
//! (`libvirt-qemu`) and must traverse the directory to reach the guests'
//! disks under `libvirt/`, so the directory is then 0711: others may pass
//! through it but not list it, and what they could open (the database,
//! the images) stays 0600/0700.

use anyhow::Context;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The database file's name in the data directory.
pub const DATABASE: &str = "cloud.db";

/// The files SQLite keeps next to the database (it creates them with the
/// database file's mode, so they follow it once it is 0600).
const DATABASE_COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The directory's mode: private, or traversable when QEMU, running as
/// another user, needs to reach the libvirt driver's files below it.
pub fn dir_mode(qemu_traverses: bool) -> u32 {
    if qemu_traverses { 0o711 } else { 0o700 }
}

/// Creates `dir` (and its parents) with `mode`, or sets an existing one
/// to `mode`; then makes the database file (created empty if missing) and
/// SQLite's companions 0600 and the image store 0700. Returns the
/// database's path.
pub fn prepare(dir: &Path, mode: u32) -> anyhow::Result<PathBuf> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    set_mode(dir, mode)?;
    let images = dir.join("images");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&images)
        .with_context(|| format!("cannot create {}", images.display()))?;
    set_mode(&images, 0o700)?;
    let db = dir.join(DATABASE);
    // Created here, 0600, rather than by SQLite with the umask's 0644.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)
        .with_context(|| format!("cannot create {}", db.display()))?;
    set_mode(&db, 0o600)?;
    for suffix in DATABASE_COMPANIONS {
        let f = dir.join(format!("{DATABASE}{suffix}"));
        if f.exists() {
            set_mode(&f, 0o600)?;
        }
    }
    Ok(db)
}

/// Sets `path` to `mode` if it is not already, and logs the change (an
/// operator should know that an earlier version left it open).
pub fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    let current = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if current != mode {
        std::fs::set_permissions(path, Permissions::from_mode(mode)).with_context(|| {
            format!(
                "cannot restrict {} to {mode:o} (it is {current:o})",
                path.display()
            )
        })?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "restricted permissions");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Only QEMU's need to traverse opens the directory, and only for
    /// passing through (no read bit for others).
    #[test]
    fn the_mode_follows_the_driver() {
        assert_eq!(dir_mode(false), 0o700);
        assert_eq!(dir_mode(true), 0o711);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = prepare(&dir, dir_mode(true)).unwrap();
        assert_eq!(mode(&dir), 0o711);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("images")), 0o700);
        // Switching to the fake driver later closes it again.
        prepare(&dir, dir_mode(false)).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
