//! Running host tools (`ip`, `bridge`, `nft`, `dnsmasq`, `qemu-img`...).
//!
//! The crates that drive the host are the only ones allowed to spawn
//! processes. Arguments are passed as a vector, never through a shell, and
//! a failure names the command and carries its stderr.

use anyhow::{Context, bail};
use std::ffi::{OsStr, OsString};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

fn shown(program: &str, args: &[OsString]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `program args...` and returns its stdout; a non-zero exit is an
/// error naming the command and carrying its stderr.
pub async fn run<I, S>(program: &str, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_input(program, args, None).await
}

/// [`run`], with `input` written to the command's stdin (for `nft -f -`).
pub async fn run_with_input<I, S>(
    program: &str,
    args: I,
    input: Option<&str>,
) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run `{}`", shown(program, &args)))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .with_context(|| format!("cannot feed `{}`", shown(program, &args)))?;
    }
    let out = child
        .wait_with_output()
        .await
        .with_context(|| format!("cannot run `{}`", shown(program, &args)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            shown(program, &args),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args...` inside network namespace `netns` (through
/// `ip netns exec`), or in ours when `netns` is `None`.
pub async fn run_in<I, S>(netns: Option<&str>, program: &str, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_in_with_input(netns, program, args, None).await
}

/// [`run_in`] with `input` on stdin.
pub async fn run_in_with_input<I, S>(
    netns: Option<&str>,
    program: &str,
    args: I,
    input: Option<&str>,
) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    match netns {
        None => run_with_input(program, args, input).await,
        Some(ns) => {
            let mut all: Vec<OsString> = vec!["netns".into(), "exec".into(), ns.into()];
            all.push(program.into());
            all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
            run_with_input("ip", all, input).await
        }
    }
}

/// Whether `program` is found on `PATH` (or `/usr/sbin`, `/sbin`, where
/// Debian puts `ip`, `nft` and `dnsmasq` and a non-login root shell may
/// not look).
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
