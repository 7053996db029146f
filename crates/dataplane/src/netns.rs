//! Network namespaces: creating and removing them, and opening a listening
//! socket inside one from this process (a socket stays in the namespace
//! it was created in, whichever thread then uses it).

use crate::cmd;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Whether the named namespace exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// The file that names the namespace.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// The named namespaces whose names start with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates the namespace with its loopback up, if it does not exist.
pub async fn ensure(name: &str) -> anyhow::Result<()> {
    if !exists(name) {
        // Another task may create it in between: that is fine.
        if let Err(e) = cmd::run("ip", ["netns", "add", name]).await
            && !exists(name)
        {
            return Err(e);
        }
        tracing::info!(namespace = name, "namespace created");
    }
    cmd::run("ip", ["-n", name, "link", "set", "lo", "up"]).await?;
    Ok(())
}

/// Deletes the namespace (and every interface in it), if it exists.
pub async fn delete(name: &str) -> anyhow::Result<()> {
    if exists(name) {
        cmd::run("ip", ["netns", "delete", name]).await?;
        tracing::info!(namespace = name, "namespace deleted");
    }
    Ok(())
}

/// Gives `dev` in namespace `ns` exactly the IPv4 addresses `want`
/// (`address/prefix`): deletes the others, adds the missing ones; returns
/// those it added.
pub async fn set_ipv4_addresses(
    ns: &str,
    dev: &str,
    want: &BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let shown = cmd::run("ip", ["-n", ns, "-o", "-4", "addr", "show", "dev", dev]).await?;
    let have: BTreeSet<String> = shown
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet")?;
            w.next().map(str::to_owned)
        })
        .collect();
    for a in have.difference(want) {
        cmd::run("ip", ["-n", ns, "addr", "del", a, "dev", dev]).await?;
    }
    let mut added = Vec::new();
    for a in want.difference(&have) {
        cmd::run("ip", ["-n", ns, "addr", "add", a, "dev", dev]).await?;
        added.push(a.clone());
    }
    Ok(added)
}

/// A TCP listener on `addr` inside namespace `name`. A short-lived thread
/// enters the namespace (`setns` changes only the calling thread), creates
/// the socket and leaves; the socket keeps its namespace.
pub fn listen_in(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let ns = path(name);
    std::thread::spawn(move || -> anyhow::Result<TcpListener> {
        let file = std::fs::File::open(&ns)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", ns.display()))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| anyhow::anyhow!("cannot enter {}: {e}", ns.display()))?;
        let listener =
            TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread entering {name} panicked"))?
}
