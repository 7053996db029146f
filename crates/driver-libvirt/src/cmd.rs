//! Running host tools (`qemu-img`, `ip`, `dnsmasq`, `genisoimage`).
//!
//! This crate is one of the few allowed to spawn processes. Arguments are
//! passed as a vector, never through a shell, and a failure names the
//! command and carries its stderr.

use anyhow::{Context, bail};
use std::ffi::OsStr;
use tokio::process::Command;

/// Runs `program args...` and returns its stdout; a non-zero exit is an
/// error naming the command and carrying its stderr.
pub async fn run<I, S>(program: &str, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = || {
        let mut s = program.to_string();
        for a in &args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    };
    let out = Command::new(program)
        .args(&args)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run `{}`", shown()))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            shown(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program` is found on `PATH` (or `/usr/sbin`, `/sbin`, where
/// Debian puts `ip` and `dnsmasq` and a non-login root shell may not look).
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
