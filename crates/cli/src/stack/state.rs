//! The state file: which cloud resources a stack owns, and what was
//! applied to each (see docs/adr/0004-declarative-state.md for why a file).
//!
//! It is rewritten (atomically: temporary file, fsync, rename) after every
//! single change an apply makes, so an interruption loses at most the
//! change in flight, and that one is covered by its idempotency key: a
//! create is recorded as pending, with its key and exact body, *before*
//! it is sent; resuming re-sends the same request and gets the first
//! answer back instead of a second resource.

use crate::exit::{CliError, CliResult};
use crate::stack::spec::{Addr, ResKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A create sent (or about to be) whose answer is not recorded yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Its `Idempotency-Key`.
    pub key: String,
    /// The exact body sent.
    pub body: Value,
    /// The inputs it was made from.
    pub inputs: Value,
    /// When it was first sent.
    pub since: DateTime<Utc>,
}

/// One resource the stack owns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Kind.
    pub kind: ResKind,
    /// Name (address within the kind).
    pub name: String,
    /// Cloud id (keypairs: the name); empty while only pending.
    #[serde(default)]
    pub id: String,
    /// The inputs last applied.
    #[serde(default)]
    pub inputs: Value,
    /// Addresses (`kind.name`) it depends on, to order its deletion even
    /// after it left the file.
    #[serde(default)]
    pub deps: Vec<String>,
    /// An unfinished create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

impl Entry {
    /// Its address.
    pub fn addr(&self) -> Addr {
        Addr::new(self.kind, &self.name)
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// The stack's name.
    pub stack: String,
    /// The identity URL of the cloud the resources live in.
    pub auth_url: String,
    /// The project that owns them.
    pub project_id: String,
    /// Resources by address (`kind.name`).
    pub resources: BTreeMap<String, Entry>,
}

impl State {
    /// Reads `path`, or an empty state if it does not exist.
    pub fn load(path: &Path) -> CliResult<State> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::usage(format!("{}: not a stack state file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                version: 1,
                ..State::default()
            }),
            Err(e) => Err(CliError::usage(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the state atomically.
    pub fn save(&self, path: &Path) -> CliResult {
        let fail = |e: std::io::Error| {
            CliError::failure(format!("cannot write the state {}: {e}", path.display()))
        };
        let tmp = path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(fail)?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.write_all(b"\n").map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }

    /// Checks that this state belongs to the cloud and project in use (a
    /// new state is bound to them).
    pub fn bind(&mut self, stack: &str, auth_url: &str, project_id: &str) -> CliResult {
        if self.resources.is_empty() {
            self.stack = stack.to_owned();
            self.auth_url = auth_url.to_owned();
            self.project_id = project_id.to_owned();
            return Ok(());
        }
        if self.project_id != project_id || self.auth_url != auth_url {
            return Err(CliError::usage(format!(
                "this state belongs to project {} at {}, but you are using project {} at {}: \
                 pick the right credentials, or another --state file",
                self.project_id, self.auth_url, project_id, auth_url
            )));
        }
        if self.stack != stack {
            return Err(CliError::usage(format!(
                "this state is of stack '{}', the file declares stack '{stack}'",
                self.stack
            )));
        }
        Ok(())
    }

    /// The entry at `addr`.
    pub fn get(&self, addr: &Addr) -> Option<&Entry> {
        self.resources.get(&addr.key())
    }
}

/// The default state file of a stack file: `stack.yaml` ->
/// `stack.state.json` beside it.
pub fn default_path(stack_file: &Path) -> PathBuf {
    let stem = stack_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stack".into());
    stack_file.with_file_name(format!("{stem}.state.json"))
}

/// An exclusive lock on a state file, held for the whole apply so two
/// applies of one stack cannot interleave. Released when dropped (also
/// when the process dies: it is an OS file lock).
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock, or fails at once naming the other holder's file.
    pub fn take(state: &Path) -> CliResult<Lock> {
        let path = state.with_extension("json.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::failure(format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(_) => Err(CliError::new(
                crate::exit::CONFLICT,
                format!(
                    "another apply or destroy of this stack is running (lock {} is held)",
                    path.display()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_binds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.state.json");
        let mut s = State::load(&p).unwrap();
        s.bind("demo", "http://x/v3", "p1").unwrap();
        s.resources.insert(
            "network.app".into(),
            Entry {
                kind: ResKind::Network,
                name: "app".into(),
                id: "n1".into(),
                inputs: serde_json::json!({"description": ""}),
                deps: vec![],
                pending: None,
            },
        );
        s.save(&p).unwrap();
        let mut back = State::load(&p).unwrap();
        assert_eq!(back, s);
        assert!(back.bind("demo", "http://x/v3", "p2").is_err());
        assert!(back.bind("other", "http://x/v3", "p1").is_err());
        let _l = Lock::take(&p).unwrap();
        assert!(Lock::take(&p).is_err(), "second lock refused");
        assert_eq!(
            default_path(Path::new("/a/stack.yaml")),
            PathBuf::from("/a/stack.state.json")
        );
    }
}
