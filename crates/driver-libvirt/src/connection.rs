//! The libvirt connection. libvirt calls block (they are RPCs to
//! libvirtd), so each runs on tokio's blocking pool with its own reference
//! to the connection. A connection that died (libvirtd restarted) is
//! reopened on the next call.

use anyhow::Context;
use cloud_model::InstanceId;
use cloud_model::instance::PowerState;
use std::sync::Mutex;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::{Error as VirtError, ErrorNumber};

/// A shared, self-healing connection to one libvirt URI.
pub struct Libvirt {
    uri: String,
    conn: Mutex<Option<Connect>>,
}

impl Libvirt {
    /// Connects to `uri` (e.g. `qemu:///system`).
    pub async fn open(uri: &str) -> anyhow::Result<Self> {
        // Errors are returned to us; libvirt must not also print them.
        virt::error::clear_error_callback();
        let owned = uri.to_string();
        let conn = tokio::task::spawn_blocking(move || Connect::open(Some(&owned)))
            .await
            .context("libvirt connect task failed")?
            .with_context(|| format!("cannot connect to libvirt at {uri}"))?;
        Ok(Libvirt {
            uri: uri.to_string(),
            conn: Mutex::new(Some(conn)),
        })
    }

    /// A live connection, reopening a dead one. Blocking.
    fn connection(&self) -> anyhow::Result<Connect> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref()
            && c.is_alive().unwrap_or(false)
        {
            return Ok(c.clone());
        }
        tracing::warn!(uri = %self.uri, "libvirt connection lost; reconnecting");
        *slot = None;
        let c = Connect::open(Some(&self.uri))
            .with_context(|| format!("cannot reconnect to libvirt at {}", self.uri))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn run<T, F>(self: &std::sync::Arc<Self>, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, VirtError> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = me.connection()?;
            f(&conn).map_err(anyhow::Error::from)
        })
        .await
        .context("libvirt task failed")?
    }
}

/// The domain of instance `id`, `None` if libvirt has none.
pub fn lookup(conn: &Connect, id: InstanceId) -> Result<Option<Domain>, VirtError> {
    match conn.lookup_domain_by_uuid_string(&id.to_string()) {
        Ok(d) => Ok(Some(d)),
        Err(e) if is(&e, ErrorNumber::NoDomain) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a libvirt error has code `code`.
pub fn is(e: &VirtError, code: ErrorNumber) -> bool {
    e.code().is_known_and(|c| c == code)
}

/// libvirt's domain state as Nova's power state.
pub fn power_state(domain: &Domain) -> Result<PowerState, VirtError> {
    let (state, _reason) = domain.state()?;
    Ok(match state.unwrap_or(DomainState::NoState) {
        DomainState::NoState => PowerState::NoState,
        DomainState::Running | DomainState::Blocked => PowerState::Running,
        DomainState::Paused => PowerState::Paused,
        // Nova maps "being shut down" to SHUTDOWN as well.
        DomainState::Shutdown | DomainState::Shutoff => PowerState::Shutdown,
        DomainState::Crashed => PowerState::Crashed,
        DomainState::PMSuspended => PowerState::Suspended,
    })
}
