//! Tokens cached between invocations, so a command costs no login.
//!
//! One file per principal (auth URL + user + project, hashed: the file
//! name reveals nothing) under `$XDG_CACHE_HOME/cloud/tokens/` (default
//! `~/.cache/cloud/tokens/`), readable by the owner only (0600 in a 0700
//! directory). A cached token is used until a minute before it expires;
//! one the server rejects earlier (revoked) is renewed by the client with
//! the password and the cache rewritten. Passwords are never cached.

use cloud_client::Token;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;

/// Seconds of validity a cached token must still have to be used.
const MARGIN_SECS: i64 = 60;

/// The cache directory, if a home or cache directory is known.
fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cloud").join("tokens"))
}

fn path(key: &str) -> Option<PathBuf> {
    let name = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
    Some(dir()?.join(format!("{name}.json")))
}

/// The cached token for `key`, if there is one still valid.
pub fn load(key: &str) -> Option<Token> {
    let text = std::fs::read_to_string(path(key)?).ok()?;
    let token: Token = serde_json::from_str(&text).ok()?;
    token.valid_for(MARGIN_SECS).then_some(token)
}

/// Caches `token` under `key`. Failures are reported at debug level only:
/// the cache is an optimisation.
pub fn store(key: &str, token: &Token) {
    if let Err(e) = try_store(key, token) {
        tracing::debug!(target: "cloud_client", "cannot cache the token: {e}");
    }
}

fn try_store(key: &str, token: &Token) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let Some(path) = path(key) else {
        return Ok(());
    };
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(serde_json::to_string(token).unwrap_or_default().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// Forgets the token for `key` (after the server refused it for good).
pub fn forget(key: &str) {
    if let Some(p) = path(key) {
        let _ = std::fs::remove_file(p);
    }
}
