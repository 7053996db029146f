//! `/v2.1/os-availability-zone`: the zones hosts report themselves in.
//!
//! A zone is available while at least one of its compute services is
//! enabled (Nova's rule). Before any host has registered, the default
//! zone `nova` is listed as available, so clients that pick a zone from
//! this list (Horizon, tempest) have one. The admin detail view adds each
//! zone's hosts with their services, and the `internal` zone of the
//! control-plane services.

use crate::auth::{Action, Ctx};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use cloud_model::Timestamp;
use cloud_store::{INTERNAL_ZONE, ZoneMember};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The zone of hosts that name none.
const DEFAULT_ZONE: &str = "nova";

/// A service that has not reported for this long is shown as down
/// (Nova's `service_down_time` default).
const SERVICE_DOWN_SECS: i64 = 60;

/// Members grouped by zone; compute zones only unless `internal`.
fn by_zone(members: &[ZoneMember], internal: bool) -> BTreeMap<&str, Vec<&ZoneMember>> {
    let mut zones: BTreeMap<&str, Vec<&ZoneMember>> = BTreeMap::new();
    for m in members {
        if internal || m.zone != INTERNAL_ZONE {
            zones.entry(m.zone.as_str()).or_default().push(m);
        }
    }
    zones
}

/// Whether any service of a zone is enabled.
fn zone_available(members: &[&ZoneMember]) -> bool {
    members.iter().any(|m| !m.disabled)
}

/// The zone entry Nova shows when there are no hosts yet.
fn default_zone() -> Value {
    json!({"zoneName": DEFAULT_ZONE, "zoneState": {"available": true}, "hosts": null})
}

/// Lists the availability zones (names and state only).
#[utoipa::path(get, path = "/v2.1/os-availability-zone", tag = "compute",
    responses((status = 200, description = "Availability zones")))]
pub async fn availability_zone_list(
    State(state): State<AppState>,
    ctx: Ctx,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::AvailabilityZoneRead)?;
    let members = state.store().zone_members().await?;
    let zones = by_zone(&members, false);
    let mut info: Vec<Value> = zones
        .iter()
        .map(|(zone, ms)| {
            json!({
                "zoneName": zone,
                "zoneState": {"available": zone_available(ms)},
                "hosts": null,
            })
        })
        .collect();
    if info.is_empty() {
        info.push(default_zone());
    }
    Ok(Json(json!({"availabilityZoneInfo": info})))
}

/// Lists the zones with their hosts and services (admin).
#[utoipa::path(get, path = "/v2.1/os-availability-zone/detail", tag = "compute",
    responses((status = 200, description = "Availability zones with hosts"), (status = 403, description = "Not an admin")))]
pub async fn availability_zone_detail(
    State(state): State<AppState>,
    ctx: Ctx,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::AvailabilityZoneDetail)?;
    let members = state.store().zone_members().await?;
    let now = Timestamp::now();
    let zones = by_zone(&members, true);
    let mut info = Vec::new();
    if !zones.keys().any(|z| *z != INTERNAL_ZONE) {
        info.push(default_zone());
    }
    for (zone, ms) in &zones {
        if !zone_available(ms) {
            info.push(json!({"zoneName": zone, "zoneState": {"available": false}, "hosts": null}));
            continue;
        }
        let mut hosts: Map<String, Value> = Map::new();
        for m in ms {
            let services = hosts.entry(m.host.clone()).or_insert_with(|| json!({}));
            services[m.binary.as_str()] = json!({
                "available": m.is_up(now, SERVICE_DOWN_SECS),
                "active": !m.disabled,
                "updated_at": m.updated_at.naive_micros(),
            });
        }
        info.push(json!({"zoneName": zone, "zoneState": {"available": true}, "hosts": hosts}));
    }
    Ok(Json(json!({"availabilityZoneInfo": info})))
}

/// Checks a requested `availability_zone`: `zone`, or Nova's forced host
/// forms `zone:host[:node]` and `:host` (admins only, as Nova's
/// `servers:create:forced_host` policy; the host must exist). Returns what
/// the scheduler is given.
pub(crate) async fn checked_zone(
    store: &cloud_store::Store,
    ctx: &crate::auth::Ctx,
    requested: &str,
) -> crate::error::ApiResult<String> {
    let mut parts = requested.splitn(3, ':');
    let zone = parts.next().unwrap_or_default();
    let host = parts.next().filter(|h| !h.is_empty());
    if !zone.is_empty() && zone != "nova" {
        let zones = store.host_zones().await?;
        if !zones.iter().any(|known| known == zone) {
            return Err(crate::error::ApiError::bad_request(format!(
                "The requested availability zone '{zone}' is not available."
            )));
        }
    }
    if let Some(host) = host {
        if !ctx.is_admin() {
            return Err(crate::error::ApiError::new(
                crate::error::FaultKind::Forbidden,
                "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed: \
                 only admins may choose a host.",
            ));
        }
        if store.compute_node(host).await.is_err() {
            return Err(crate::error::ApiError::bad_request(format!(
                "Compute host {host} could not be found."
            )));
        }
    } else if requested.contains(':') && zone.is_empty() {
        return Err(crate::error::ApiError::bad_request(format!(
            "Invalid availability zone '{requested}': give a zone, zone:host or :host."
        )));
    }
    Ok(requested.to_owned())
}
