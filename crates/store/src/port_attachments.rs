//! Who made the ports attached to a server after its build.
//!
//! Nova deletes, on detach and when the server goes, the ports it created
//! for a server, and only unbinds the ports a user gave it. For the ports
//! of the build the server's requested networks say which is which; a
//! port attached later (`os-interface`) is recorded here, as a finished
//! workflow record `port-attach-<port>:<server>` whose step is the origin
//! (ADR 0011: no schema change for one bit per attachment). The record
//! outlives a detach harmlessly: a port's origin never changes.

use crate::db::{Store, db_error};
use cloud_model::{Error, InstanceId, PortId, Timestamp};

/// Where a port attached to a server came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortOrigin {
    /// We created it for the server (from a network): deleted on detach.
    Created,
    /// The user gave it: unbound, kept, on detach.
    User,
}

impl PortOrigin {
    fn step(self) -> &'static str {
        match self {
            PortOrigin::Created => "created",
            PortOrigin::User => "user",
        }
    }
}

fn record_id(instance: InstanceId, port: PortId) -> String {
    crate::workflow_id(instance, &kind(port))
}

fn kind(port: PortId) -> String {
    format!("port-attach-{port}")
}

impl Store {
    /// Records that `port` was attached to `instance` and where it came
    /// from (idempotent: the first record stays).
    pub async fn port_attachment_record(
        &self,
        instance: InstanceId,
        port: PortId,
        origin: PortOrigin,
    ) -> Result<(), Error> {
        let now = Timestamp::now().micros();
        sqlx::query(
            "INSERT INTO workflows (id, instance_id, kind, step, data, owner, lease_until, \
             attempts, created_at, updated_at, finished_at) \
             VALUES ($1, $2, $3, $4, '{}', NULL, 0, 0, $5, $5, $5) ON CONFLICT DO NOTHING",
        )
        .bind(record_id(instance, port))
        .bind(instance.to_string())
        .bind(kind(port))
        .bind(origin.step())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Where `port`, attached to `instance` after its build, came from
    /// (None: it was not attached that way).
    pub async fn port_attachment_origin(
        &self,
        instance: InstanceId,
        port: PortId,
    ) -> Result<Option<PortOrigin>, Error> {
        Ok(self
            .workflow_get(&record_id(instance, port))
            .await?
            .map(|w| match w.step.as_str() {
                "user" => PortOrigin::User,
                _ => PortOrigin::Created,
            }))
    }
}
