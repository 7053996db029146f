//! Telling the hosts' data planes that something they enforce changed.
//!
//! After a committed change to ports, security groups, subnets or
//! networks, the handler casts [`ConductorMsg::NetworkChanged`] naming
//! what changed; the conductor finds the hosts concerned and has each
//! pull its desired state again. A failed cast never fails the request:
//! the change is committed, and every host re-pulls its state
//! periodically anyway, so the warning only means the change lands later.

use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cloud_model::{NetworkId, SecurityGroupId};
use cloud_rpc::ConductorMsg;
use std::convert::Infallible;

/// What a change touched: the networks, security groups and hosts whose
/// data planes depend on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Networks whose ports, subnets or settings changed.
    pub networks: Vec<NetworkId>,
    /// Security groups whose rules or members changed.
    pub security_groups: Vec<SecurityGroupId>,
    /// Hosts to tell in any case (a port left them).
    pub hosts: Vec<String>,
}

impl Changed {
    /// A change of one network.
    pub fn network(id: NetworkId) -> Self {
        Changed {
            networks: vec![id],
            ..Changed::default()
        }
    }

    /// A change of some security groups.
    pub fn groups(ids: impl IntoIterator<Item = SecurityGroupId>) -> Self {
        Changed::default().with_groups(ids)
    }

    /// Adds security groups.
    pub fn with_groups(mut self, ids: impl IntoIterator<Item = SecurityGroupId>) -> Self {
        for id in ids {
            if !self.security_groups.contains(&id) {
                self.security_groups.push(id);
            }
        }
        self
    }

    /// Adds networks.
    pub fn with_networks(mut self, ids: impl IntoIterator<Item = NetworkId>) -> Self {
        for id in ids {
            if !self.networks.contains(&id) {
                self.networks.push(id);
            }
        }
        self
    }

    /// Adds a host, if any.
    pub fn with_host(mut self, host: Option<&str>) -> Self {
        if let Some(h) = host.filter(|h| !h.is_empty())
            && !self.hosts.iter().any(|x| x == h)
        {
            self.hosts.push(h.to_owned());
        }
        self
    }

    /// Whether the change names nothing (then nobody is told).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.security_groups.is_empty() && self.hosts.is_empty()
    }
}

/// A handler's line to the conductors about data plane changes: the
/// state and the id of the request the change belongs to (the conductor
/// and hosts log under it).
#[derive(Clone)]
pub struct Notifier {
    state: AppState,
    request_id: String,
}

impl FromRequestParts<AppState> for Notifier {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
        Ok(Notifier::new(state.clone(), request_id))
    }
}

impl Notifier {
    /// A notifier for request `request_id`.
    pub fn new(state: AppState, request_id: String) -> Self {
        Notifier { state, request_id }
    }

    /// Casts [`ConductorMsg::NetworkChanged`] for `changed`; a failure is
    /// logged, not returned.
    pub async fn changed(&self, changed: Changed) {
        if changed.is_empty() {
            return;
        }
        let msg = ConductorMsg::NetworkChanged {
            networks: changed.networks,
            security_groups: changed.security_groups,
            hosts: changed.hosts,
        };
        if let Err(e) = self.state.cast_to_conductor(&msg, &self.request_id).await {
            tracing::warn!(error = %e, ?msg, "cannot tell the conductors the data plane changed; hosts pick it up at their next periodic pull");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_collect_each_id_once() {
        let (n, g) = (NetworkId::new(), SecurityGroupId::new());
        let c = Changed::network(n)
            .with_networks([n])
            .with_groups([g, g])
            .with_host(Some("h1"))
            .with_host(Some("h1"))
            .with_host(Some(""))
            .with_host(None);
        assert_eq!(c.networks, [n]);
        assert_eq!(c.security_groups, [g]);
        assert_eq!(c.hosts, ["h1"]);
        assert!(Changed::groups([]).is_empty());
    }
}
