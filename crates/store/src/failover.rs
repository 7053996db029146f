//! A PostgreSQL primary and its standbys behind one store URL.
//!
//! A store URL may name several hosts the way libpq does
//! (`postgres://cloud@db1:5432,db2:5432/cloud?target_session_attrs=read-write`),
//! so that every service keeps working when a standby is promoted. sqlx
//! knows one host per URL and has no `target_session_attrs`, so the store
//! splits such a URL into one URL per host ([`split_hosts`]), opens its pool
//! on the host that is not in recovery ([`Failover::find_primary`]) and
//! watches that host ([`watch`]): when it stops answering or turns into a
//! standby, the pool's future connections go to the host that was promoted,
//! and connections opened before the switch are dropped rather than handed
//! to a request. A connection that would land on a standby is refused
//! ([`refuse_standby`]), so writes never meet a read-only server.

use crate::db::redact;
use cloud_model::Error;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a probe waits for a host: a host that takes longer is treated
/// as down (a powered-off machine drops SYNs rather than refusing them).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the watcher asks the current host whether it is still the
/// primary: the longest a pool keeps dialling a dead primary after a
/// standby took over.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The URL parameter naming which host a session may use (libpq's).
const SESSION_ATTRS: &str = "target_session_attrs";

/// `url` split into one URL per host, in the order given, when it names
/// more than one host; `None` for an ordinary one-host URL.
/// `target_session_attrs` is taken out (sqlx does not know it); the only
/// values accepted are those meaning "a host that takes writes", because
/// every service writes.
pub(crate) fn split_hosts(url: &str) -> Result<Option<Vec<String>>, Error> {
    let invalid = |why: &str| Error::invalid(format!("database URL '{}': {why}", redact(url)));
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Ok(None);
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    if !hosts.contains(',') {
        return Ok(None);
    }
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((SESSION_ATTRS, "read-write" | "primary")) => {}
            Some((SESSION_ATTRS, other)) => {
                return Err(invalid(&format!(
                    "{SESSION_ATTRS}={other} is not supported: the services write, \
                     so they connect only to a host that accepts writes \
                     (read-write or primary)"
                )));
            }
            _ => params.push(pair),
        }
    }
    let hosts: Vec<&str> = hosts.split(',').collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return Err(invalid("an empty host in the host list"));
    }
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    Ok(Some(
        hosts
            .iter()
            .map(|h| format!("{}{userinfo}{h}{path}{query}", &url[..scheme_end]))
            .collect(),
    ))
}

/// The candidate hosts of a store and which one its pool dials now.
#[derive(Debug)]
pub(crate) struct Failover {
    hosts: Vec<Host>,
    current: AtomicUsize,
    clock: Arc<SwitchClock>,
}

/// One candidate host.
struct Host {
    /// For logs and errors, without the password.
    label: String,
    options: AnyConnectOptions,
}

/// Only the label: the connect options hold the password.
impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// When the pool last moved to another host, read by the pool's
/// `before_acquire` hook to drop connections opened before that.
#[derive(Debug)]
pub(crate) struct SwitchClock(Mutex<Instant>);

impl SwitchClock {
    /// Whether a connection of age `age` was opened on the current host.
    pub(crate) fn opened_since_switch(&self, age: Duration) -> bool {
        age <= self.0.lock().expect("switch clock").elapsed()
    }

    fn reset(&self) {
        *self.0.lock().expect("switch clock") = Instant::now();
    }
}

/// What a host said when asked whether it is in recovery.
enum Probe {
    Primary(AnyConnection),
    Standby,
    Down(String),
}

impl Failover {
    /// The hosts of `urls` (from [`split_hosts`]).
    pub(crate) fn new(urls: &[String]) -> Result<Failover, Error> {
        let hosts = urls
            .iter()
            .map(|u| {
                let options = AnyConnectOptions::from_str(u)
                    .map_err(|e| Error::invalid(format!("database URL '{}': {e}", redact(u))))?
                    .disable_statement_logging();
                Ok(Host {
                    label: host_label(u),
                    options,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Failover {
            hosts,
            current: AtomicUsize::new(0),
            clock: Arc::new(SwitchClock(Mutex::new(Instant::now()))),
        })
    }

    /// The clock the pool's hooks read.
    pub(crate) fn clock(&self) -> Arc<SwitchClock> {
        self.clock.clone()
    }

    /// The connect options of the host the pool dials now.
    pub(crate) fn current_options(&self) -> AnyConnectOptions {
        self.hosts[self.current.load(Ordering::SeqCst)]
            .options
            .clone()
    }

    /// Finds the host that takes writes, trying the current one first and
    /// then the others in the order given, makes it the current one and
    /// returns a connection to it. Unavailable, naming what each host
    /// said, when none is a primary (all down, or a promotion not done).
    pub(crate) async fn find_primary(&self) -> Result<(usize, AnyConnection), Error> {
        let current = self.current.load(Ordering::SeqCst);
        let order = std::iter::once(current).chain((0..self.hosts.len()).filter(|&i| i != current));
        let mut said = Vec::new();
        for i in order {
            let host = &self.hosts[i];
            match probe(&host.options).await {
                Probe::Primary(conn) => {
                    if i != current {
                        self.current.store(i, Ordering::SeqCst);
                        self.clock.reset();
                    }
                    return Ok((i, conn));
                }
                Probe::Standby => said.push(format!("{} is a standby", host.label)),
                Probe::Down(e) => said.push(format!("{} is unreachable ({e})", host.label)),
            }
        }
        Err(Error::unavailable(format!(
            "no database host accepts writes: {}",
            said.join("; ")
        )))
    }
}

/// Connects to one host and asks whether it is in recovery.
async fn probe(options: &AnyConnectOptions) -> Probe {
    let conn = match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Probe::Down(e.to_string()),
        Err(_) => return Probe::Down("timed out".to_owned()),
    };
    let mut conn = conn;
    match in_recovery(&mut conn).await {
        Ok(false) => Probe::Primary(conn),
        Ok(true) => {
            let _ = conn.close().await;
            Probe::Standby
        }
        Err(e) => Probe::Down(e.to_string()),
    }
}

/// Whether the server behind `conn` is a standby.
async fn in_recovery(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    tokio::time::timeout(
        PROBE_TIMEOUT,
        sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(conn),
    )
    .await
    .map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// The pool's `after_connect` check: a connection to a standby (the pool
/// dialled a host just before it was demoted, or before the watcher saw
/// the promotion) is an error, so the pool drops it and dials again.
pub(crate) async fn refuse_standby(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if in_recovery(conn).await? {
        return Err(sqlx::Error::Protocol(
            "the database host is a standby (in recovery); waiting for the primary".to_owned(),
        ));
    }
    Ok(())
}

/// Keeps `pool` on the primary for as long as the store (which holds the
/// [`Failover`]) lives and the pool is open: every [`WATCH_INTERVAL`] it
/// asks the current host whether it still takes writes, over a connection
/// of its own; when it does not, it looks for the host that does and points
/// the pool's future connections there.
pub(crate) async fn watch(pool: AnyPool, failover: Weak<Failover>) {
    let mut monitor: Option<AnyConnection> = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Some(failover) = failover.upgrade() else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        if let Some(conn) = monitor.as_mut()
            && matches!(in_recovery(conn).await, Ok(false))
        {
            continue;
        }
        monitor = None;
        let before = failover.current.load(Ordering::SeqCst);
        match failover.find_primary().await {
            Ok((now, conn)) => {
                monitor = Some(conn);
                if now != before {
                    tracing::warn!(
                        from = %failover.hosts[before].label,
                        to = %failover.hosts[now].label,
                        "the database primary moved; new connections go to the new primary"
                    );
                    pool.set_connect_options(failover.current_options());
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for the database primary"),
        }
    }
}

/// `host:port` of a one-host URL, for messages.
fn host_label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::{host_label, split_hosts};

    #[test]
    fn a_host_list_becomes_one_url_per_host() {
        let urls = split_hosts(
            "postgres://cloud:pw@db1:5432,db2:5433/cloud?target_session_attrs=read-write&sslmode=prefer",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            urls,
            [
                "postgres://cloud:pw@db1:5432/cloud?sslmode=prefer",
                "postgres://cloud:pw@db2:5433/cloud?sslmode=prefer"
            ]
        );
        assert_eq!(host_label(&urls[1]), "db2:5433");
    }

    #[test]
    fn debug_output_hides_the_password() {
        sqlx::any::install_default_drivers();
        let urls = split_hosts("postgres://cloud:s3cret@db1,db2/cloud")
            .unwrap()
            .unwrap();
        let shown = format!("{:?}", super::Failover::new(&urls).unwrap());
        assert!(
            shown.contains("db2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn one_host_is_left_alone() {
        assert_eq!(split_hosts("postgres://cloud@db1/cloud").unwrap(), None);
        assert_eq!(split_hosts("sqlite:///tmp/x.db").unwrap(), None);
    }

    #[test]
    fn sessions_that_cannot_write_are_refused() {
        let e = split_hosts("postgres://db1,db2/cloud?target_session_attrs=read-only")
            .unwrap_err()
            .to_string();
        assert!(e.contains("read-write or primary"), "{e}");
        assert!(split_hosts("postgres://db1,,db2/cloud").is_err());
    }
}
