//! The guests' DHCP clients: busybox `udhcpc`, one per NIC.
//!
//! Each runs inside its guest's namespace (`ip netns exec`) in the
//! foreground of its own process group, so it keeps renewing its lease for
//! as long as the guest runs, outlives a restarted agent (a VM outlives
//! one too) and is not hit by a Ctrl-C meant for the agent. It is found
//! again through its pid file, and a pid is only signalled after
//! `/proc/<pid>/cmdline` shows it is `udhcpc` with that very pid file, so
//! a recycled pid is never killed by mistake.

use anyhow::{Context, bail};
use cloud_dataplane::cmd;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

/// `PATH` of the clients and their script: the guest sees the machine's
/// programs, but not the agent's environment.
const CLIENT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// busybox, once it is known to have `udhcpc`.
static BUSYBOX: OnceLock<PathBuf> = OnceLock::new();

/// The busybox binary, after checking it has the `udhcpc` applet.
pub async fn busybox() -> anyhow::Result<PathBuf> {
    if let Some(p) = BUSYBOX.get() {
        return Ok(p.clone());
    }
    let Some(path) = cmd::find_program("busybox") else {
        bail!("busybox is not installed (Debian: busybox)");
    };
    let applets = cmd::run(path.to_string_lossy().as_ref(), ["--list"]).await?;
    if !applets.lines().any(|l| l.trim() == "udhcpc") {
        bail!(
            "{} has no udhcpc applet (Debian's busybox package has it)",
            path.display()
        );
    }
    Ok(BUSYBOX.get_or_init(|| path).clone())
}

/// What one client is started with.
#[derive(Clone, Debug)]
pub struct Client<'a> {
    /// The guest's namespace.
    pub netns: &'a str,
    /// Its interface (`eth0`).
    pub iface: &'a str,
    /// The event script.
    pub script: &'a Path,
    /// The pid file (also how it is recognised, see [`is_ours`]).
    pub pid_file: &'a Path,
    /// Hostname sent to the server (option 12), if any.
    pub hostname: Option<&'a str>,
    /// Seconds of discovery before the script hears `leasefail`.
    pub timeout_secs: u32,
}

impl Client<'_> {
    /// The arguments of `ip` that run the client: `netns exec <ns>
    /// busybox udhcpc ...`.
    pub fn args(&self, busybox: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["netns".into(), "exec".into(), self.netns.into()];
        a.push(busybox.into());
        a.push("udhcpc".into());
        // Foreground: we are its parent, it stays up and renews.
        a.push("-f".into());
        a.extend(["-i".into(), self.iface.into()]);
        a.extend(["-s".into(), self.script.into()]);
        a.extend(["-p".into(), self.pid_file.into()]);
        // One discover a second for the timeout, then `leasefail`, then
        // another round after 2 s (udhcpc's default pause is 20 s, long for
        // a guest whose network is still being wired).
        let tries = self.timeout_secs.max(1).to_string();
        a.extend(["-t".into(), tries.into(), "-T".into(), "1".into()]);
        a.extend(["-A".into(), "2".into()]);
        // Beyond the defaults (subnet, router, dns, hostname, domain...).
        a.extend([
            "-O".into(),
            "mtu".into(),
            "-O".into(),
            "staticroutes".into(),
        ]);
        if let Some(h) = self.hostname.filter(|h| !h.is_empty()) {
            a.extend(["-x".into(), format!("hostname:{h}").into()]);
        }
        a
    }
}

/// Starts the client unless it already runs. Its output goes to `log`.
pub async fn start(client: &Client<'_>, log: &Path) -> anyhow::Result<()> {
    if running_pid(client.pid_file).is_some() {
        return Ok(());
    }
    let busybox = busybox().await?;
    let args = client.args(&busybox);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let ip = cmd::find_program("ip").unwrap_or_else(|| "ip".into());
    let mut child = tokio::process::Command::new(&ip)
        .args(&args)
        .env_clear()
        .env("PATH", CLIENT_PATH)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {} {:?}", ip.display(), args))?;
    // `ip netns exec` execs udhcpc, so this is udhcpc's pid. Written now,
    // not left to udhcpc, so a destroy right after this finds it.
    if let Some(pid) = child.id() {
        std::fs::write(client.pid_file, format!("{pid}\n"))
            .with_context(|| format!("cannot write {}", client.pid_file.display()))?;
    }
    // A client that cannot start (no namespace, bad option) dies at once.
    if let Ok(status) = tokio::time::timeout(Duration::from_millis(100), child.wait()).await {
        let _ = std::fs::remove_file(client.pid_file);
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        bail!(
            "udhcpc on {} in {} exited at once ({}): {}",
            client.iface,
            client.netns,
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    // Reap it when it ends (or leave it to tokio's orphan reaper if this
    // runtime ends first).
    tokio::spawn(async move {
        let status = child.wait().await;
        tracing::debug!(?status, "udhcpc exited");
    });
    Ok(())
}

/// Stops the client with pid file `pid_file`, if it runs: SIGTERM, then
/// SIGKILL after 2 s. The pid file is removed.
pub async fn stop(pid_file: &Path) -> anyhow::Result<()> {
    if let Some(pid) = running_pid(pid_file) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if !exited(pid, pid_file, Duration::from_secs(2)).await {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            if !exited(pid, pid_file, Duration::from_secs(2)).await {
                bail!("udhcpc (pid {pid}) does not die");
            }
        }
    }
    match std::fs::remove_file(pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", pid_file.display()))
        }
        _ => Ok(()),
    }
}

/// Stops every client whose pid file is in `dir` (`udhcpc.*.pid`): a
/// guest's clients, even without its record.
pub async fn stop_all(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("udhcpc.") && name.ends_with(".pid") {
            stop(&entry.path()).await?;
        }
    }
    Ok(())
}

/// Kills whatever else runs in namespace `netns` (commands a user or a
/// test ran "in the guest"), as a VM's processes end with it.
pub async fn kill_namespace_processes(netns: &str) {
    let Ok(out) = cmd::run("ip", ["netns", "pids", netns]).await else {
        return;
    };
    for pid in out.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// The pid in `pid_file`, if that process is alive and is our client.
pub fn running_pid(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    is_ours(&cmdline, pid_file).then_some(pid)
}

/// Whether a `/proc/<pid>/cmdline` is a `udhcpc` started with `pid_file`
/// (before and after `ip netns exec` execs it). A zombie's is empty.
pub fn is_ours(cmdline: &[u8], pid_file: &Path) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.contains(&b"udhcpc".as_slice()) && args.contains(&pid_file.as_os_str().as_bytes())
}

/// Waits up to `limit` for `pid` to stop being our client.
async fn exited(pid: i32, pid_file: &Path, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| is_ours(&c, pid_file))
            .unwrap_or(false);
        if !alive {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_recognised_by_name_and_pid_file() {
        let pf = Path::new("/var/lib/cloud/netns/x/udhcpc.eth0.pid");
        let before = b"ip\0netns\0exec\0vm-x\0/usr/bin/busybox\0udhcpc\0-f\0-p\0/var/lib/cloud/netns/x/udhcpc.eth0.pid\0";
        let after = b"/usr/bin/busybox\0udhcpc\0-f\0-p\0/var/lib/cloud/netns/x/udhcpc.eth0.pid\0";
        assert!(is_ours(before, pf));
        assert!(is_ours(after, pf));
        assert!(!is_ours(b"", pf), "a zombie");
        assert!(!is_ours(b"/usr/bin/busybox\0udhcpc\0-p\0/other.pid\0", pf));
        assert!(!is_ours(
            b"sleep\0/var/lib/cloud/netns/x/udhcpc.eth0.pid\0",
            pf
        ));
    }

    #[test]
    fn arguments() {
        let c = Client {
            netns: "vm-1",
            iface: "eth1",
            script: Path::new("/s/dhcp-script"),
            pid_file: Path::new("/s/udhcpc.eth1.pid"),
            hostname: Some("web-1"),
            timeout_secs: 10,
        };
        let a: Vec<String> = c
            .args(Path::new("/bin/busybox"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a.join(" "),
            "netns exec vm-1 /bin/busybox udhcpc -f -i eth1 -s /s/dhcp-script \
             -p /s/udhcpc.eth1.pid -t 10 -T 1 -A 2 -O mtu -O staticroutes -x hostname:web-1"
        );
    }

    #[test]
    fn a_missing_or_foreign_pid_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("udhcpc.eth0.pid");
        assert_eq!(running_pid(&pf), None);
        // Our own pid is alive but is not a udhcpc.
        std::fs::write(&pf, std::process::id().to_string()).unwrap();
        assert_eq!(running_pid(&pf), None);
    }
}
