//! What a host remembers about its guests, in files under `state_dir`.
//!
//! A namespace keeps no metadata of its own, so each guest has a directory
//! `<state_dir>/<instance id>/` holding a JSON record (its [`VmSpec`] and
//! power state), its console log, its DHCP client script, pid files and
//! logs, and the DNS servers it was given. Files rather than memory so that
//! a restarted agent still knows its guests, and the spec is kept so that
//! `power_on` can rebuild NICs whose host side disappeared (a simulated
//! host's namespace recreated).

use anyhow::Context;
use cloud_driver::VmSpec;
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One guest's record (`record.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestRecord {
    /// What it was spawned from (NICs are rebuilt from it).
    pub spec: VmSpec,
    /// `Running` or `Shutdown`, as last set by the driver.
    pub power: PowerState,
    /// Whether spawn finished: a redelivered spawn of a finished guest is
    /// left alone, one of an unfinished guest completes it.
    pub spawned: bool,
}

/// The files of one guest.
#[derive(Clone, Debug)]
pub struct GuestFiles {
    /// `<state_dir>/<instance id>`.
    pub dir: PathBuf,
}

impl GuestFiles {
    /// The files of guest `id` under `state_dir`.
    pub fn new(state_dir: &Path, id: InstanceId) -> GuestFiles {
        GuestFiles {
            dir: state_dir.join(id.to_string()),
        }
    }

    /// The record.
    pub fn record(&self) -> PathBuf {
        self.dir.join("record.json")
    }

    /// The console log the driver and the DHCP script append markers to.
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// The DHCP client's event script.
    pub fn dhcp_script(&self) -> PathBuf {
        self.dir.join("dhcp-script")
    }

    /// Per-boot flags of the DHCP script (which NICs reported, READY);
    /// emptied at every boot.
    pub fn boot_dir(&self) -> PathBuf {
        self.dir.join("boot")
    }

    /// The DNS servers the primary NIC was given (`nameserver` lines), in
    /// place of the guest's `/etc/resolv.conf`, which it does not have.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// The pid file of the DHCP client of `iface`.
    pub fn pid_file(&self, iface: &str) -> PathBuf {
        self.dir.join(format!("udhcpc.{iface}.pid"))
    }

    /// The output of the DHCP client of `iface`.
    pub fn client_log(&self, iface: &str) -> PathBuf {
        self.dir.join(format!("udhcpc.{iface}.log"))
    }

    /// The record, or `None` if the guest is unknown.
    pub fn load(&self) -> anyhow::Result<Option<GuestRecord>> {
        let path = self.record();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("cannot parse {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the record (through a temporary file, so a crash never
    /// leaves half a record).
    pub fn save(&self, record: &GuestRecord) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let tmp = self.dir.join("record.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.record())
            .with_context(|| format!("cannot write {}", self.record().display()))
    }

    /// Appends `lines` to the console log.
    pub fn console_append(&self, lines: &[String]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.console();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The last `max_bytes` of the console log (cut at a character
    /// boundary); empty if nothing was written yet.
    pub fn console_tail(&self, max_bytes: usize) -> anyhow::Result<String> {
        let path = self.console();
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(tail(&text, max_bytes).to_owned())
    }

    /// Removes everything of the guest. `Ok` if it is already gone.
    pub fn remove(&self) -> anyhow::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", self.dir.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Every guest with a directory under `state_dir`, as `(id, files)`.
/// Entries that are not instance ids are not ours and are skipped.
pub fn all(state_dir: &Path) -> anyhow::Result<Vec<(InstanceId, GuestFiles)>> {
    let entries = match std::fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", state_dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", state_dir.display()))?;
        if let Some(id) = entry.file_name().to_str().and_then(InstanceId::parse) {
            out.push((id, GuestFiles::new(state_dir, id)));
        }
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

/// The end of `text`, at most `max_bytes` long, starting on a character.
fn tail(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut cut = text.len() - max_bytes;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    &text[cut..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_tail_is_cut_on_a_character() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 2), "ef");
        // "é" is two bytes: a cut inside it moves past it.
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("aéb", 2), "b");
    }

    #[test]
    fn unknown_guests_and_foreign_entries() {
        let dir = tempfile::tempdir().unwrap();
        let id = InstanceId::new();
        let files = GuestFiles::new(dir.path(), id);
        assert!(files.load().unwrap().is_none());
        assert_eq!(files.console_tail(100).unwrap(), "");
        files.console_append(&["one".into(), "two".into()]).unwrap();
        assert_eq!(files.console_tail(4).unwrap(), "two\n");
        std::fs::create_dir(dir.path().join("not-an-id")).unwrap();
        let ids: Vec<_> = all(dir.path())
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ids, vec![id]);
        files.remove().unwrap();
        files.remove().unwrap();
        assert!(all(&dir.path().join("missing")).unwrap().is_empty());
    }
}
