//! Availability zones, derived from where the hosts say they are.
//!
//! There is no zone table: a zone exists while some compute host reports
//! it (`compute_nodes.availability_zone`). The services that are not
//! compute agents (conductor, scheduler) belong to Nova's `internal` zone,
//! which only the admin detail view shows.

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::{Error, Timestamp};

/// The binary name compute agents register their service record under.
const COMPUTE_BINARY: &str = "cloud-compute";

/// The zone Nova puts control-plane services in.
pub const INTERNAL_ZONE: &str = "internal";

/// One service on one host, with the zone it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneMember {
    /// Zone name (`nova`, an admin-chosen name, or `internal`).
    pub zone: String,
    /// Host name.
    pub host: String,
    /// Service binary (`cloud-compute`, `cloud-conductor`, ...).
    pub binary: String,
    /// Disabled by an admin (the scheduler skips it).
    pub disabled: bool,
    /// Forced down by an admin.
    pub forced_down: bool,
    /// Last heartbeat, if any.
    pub last_seen_up: Option<Timestamp>,
    /// Last change of the record.
    pub updated_at: Timestamp,
}

impl ZoneMember {
    /// Whether the service heartbeated within `down_after_secs` and is not
    /// forced down (what Nova shows as `available`).
    pub fn is_up(&self, now: Timestamp, down_after_secs: i64) -> bool {
        !self.forced_down
            && self
                .last_seen_up
                .is_some_and(|t| t.micros() >= now.plus_seconds(-down_after_secs).micros())
    }
}

impl Store {
    /// Every service with its zone, by zone, host and binary: compute
    /// hosts in the zone they report (a compute node without a service
    /// record yet counts as an enabled, never-seen service), every other
    /// service in [`INTERNAL_ZONE`].
    pub async fn zone_members(&self) -> Result<Vec<ZoneMember>, Error> {
        let compute = sqlx::query(
            "SELECT n.host, n.availability_zone, s.disabled, s.forced_down, s.last_seen_up, \
             s.updated_at, n.updated_at AS node_updated_at \
             FROM compute_nodes n LEFT JOIN services s \
               ON s.host = n.host AND s.binary_name = $1",
        )
        .bind(COMPUTE_BINARY)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut members = Vec::with_capacity(compute.len());
        for r in &compute {
            members.push(ZoneMember {
                zone: r.text("availability_zone")?,
                host: r.text("host")?,
                binary: COMPUTE_BINARY.to_owned(),
                disabled: r.opt_int("disabled")?.is_some_and(|d| d != 0),
                forced_down: r.opt_int("forced_down")?.is_some_and(|d| d != 0),
                last_seen_up: r.opt_ts("last_seen_up")?,
                updated_at: match r.opt_ts("updated_at")? {
                    Some(t) => t,
                    None => r.ts("node_updated_at")?,
                },
            });
        }
        let others = sqlx::query(
            "SELECT host, binary_name, disabled, forced_down, last_seen_up, updated_at \
             FROM services WHERE binary_name <> $1",
        )
        .bind(COMPUTE_BINARY)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        for r in &others {
            members.push(ZoneMember {
                zone: INTERNAL_ZONE.to_owned(),
                host: r.text("host")?,
                binary: r.text("binary_name")?,
                disabled: r.flag("disabled")?,
                forced_down: r.flag("forced_down")?,
                last_seen_up: r.opt_ts("last_seen_up")?,
                updated_at: r.ts("updated_at")?,
            });
        }
        members.sort_by(|a, b| (&a.zone, &a.host, &a.binary).cmp(&(&b.zone, &b.host, &b.binary)));
        Ok(members)
    }
}
