//! An instance's directory under `instances_path`: its disk overlay,
//! kernel/ramdisk copies, config drive, console log, and `instance.json`,
//! the spec it was built from (to rebuild plumbing after a host restart
//! and to know which cached images are in use).

use anyhow::Context;
use cloud_driver::VmSpec;
use cloud_model::InstanceId;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The files of one instance.
#[derive(Clone, Debug)]
pub struct InstanceDir {
    dir: PathBuf,
}

/// What `instance.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The spec the instance was spawned from.
    pub spec: VmSpec,
    /// Cached images it uses (root, kernel, ramdisk).
    pub image_ids: Vec<String>,
}

impl InstanceDir {
    /// The directory of `id` under `root`.
    pub fn new(root: &Path, id: InstanceId) -> Self {
        InstanceDir {
            dir: root.join(id.to_string()),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The qcow2 overlay.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk")
    }

    /// The config drive ISO.
    pub fn config_drive(&self) -> PathBuf {
        self.dir.join("disk.config")
    }

    /// The serial console log.
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// The kernel copy for direct boot.
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("kernel")
    }

    /// The ramdisk copy for direct boot.
    pub fn ramdisk(&self) -> PathBuf {
        self.dir.join("ramdisk")
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("instance.json")
    }

    /// Creates the directory. QEMU runs as another user, so it must be
    /// able to traverse (not list) it.
    pub fn create(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .and_then(|_| {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o711))
            })
            .with_context(|| format!("cannot create {}", self.dir.display()))
    }

    /// Writes `instance.json` (owner-only: it holds user data).
    pub fn write_record(&self, record: &InstanceRecord) -> anyhow::Result<()> {
        let path = self.record_path();
        std::fs::write(&path, serde_json::to_vec_pretty(record)?)
            .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads `instance.json`, `None` if there is none.
    pub fn read_record(&self) -> anyhow::Result<Option<InstanceRecord>> {
        let path = self.record_path();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .with_context(|| format!("{} is not valid", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Whether the directory exists.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// Removes the directory and everything in it. `Ok` if absent.
    pub fn remove(&self) -> anyhow::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", self.dir.display())),
        }
    }

    /// The last `max_bytes` of the console log, lossily decoded (a cut
    /// UTF-8 sequence at the start becomes U+FFFD). Empty if no log yet.
    pub fn console_tail(&self, max_bytes: usize) -> anyhow::Result<String> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.console_log();
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        let len = f.metadata()?.len();
        let start = len.saturating_sub(max_bytes as u64);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        f.take(max_bytes as u64).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Image ids used by any instance directory under `root`.
pub fn images_in_use(root: &Path) -> HashSet<String> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return HashSet::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let id = InstanceId::parse(e.file_name().to_str()?)?;
            InstanceDir::new(root, id).read_record().ok().flatten()
        })
        .flat_map(|r| r.image_ids)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::spec;

    #[test]
    fn console_tail_returns_the_last_bytes() {
        let root = tempfile::tempdir().unwrap();
        let d = InstanceDir::new(root.path(), InstanceId::new());
        assert_eq!(d.console_tail(10).unwrap(), "");
        d.create().unwrap();
        std::fs::write(d.console_log(), "line one\r\nTESTGUEST READY\r\n").unwrap();
        assert_eq!(d.console_tail(17).unwrap(), "TESTGUEST READY\r\n");
        assert_eq!(
            d.console_tail(1000).unwrap(),
            "line one\r\nTESTGUEST READY\r\n"
        );
        d.remove().unwrap();
        d.remove().unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn records_tell_which_images_are_in_use() {
        let root = tempfile::tempdir().unwrap();
        let s = spec();
        let d = InstanceDir::new(root.path(), s.id);
        d.create().unwrap();
        let rec = InstanceRecord {
            spec: s,
            image_ids: vec!["img".into(), "kern".into()],
        };
        d.write_record(&rec).unwrap();
        assert_eq!(d.read_record().unwrap(), Some(rec));
        std::fs::create_dir(root.path().join("not-an-instance")).unwrap();
        let used = images_in_use(root.path());
        assert_eq!(used, HashSet::from(["img".to_string(), "kern".to_string()]));
    }
}
