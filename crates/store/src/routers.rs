//! Routers: their records, their gateway on an external network, and the
//! host (a network node) each runs on.
//!
//! A router's interfaces and gateway are ports (see [`crate::l3_ports`]);
//! every change to them runs in one transaction that first locks the
//! router's row, so two concurrent changes of one router see each other's
//! result (no two interfaces on one subnet, no route left without its
//! next hop's subnet, no floating IP left without its path).
//!
//! **Placement.** A router is placed when it is created on the host with
//! the network role (`compute_nodes.network_node`) that is enabled, up
//! (seen after the caller's `seen_after`) and runs the fewest routers
//! (ties: by name). When no such host exists the router is still created,
//! without a host; its first gateway or interface change places it, and
//! fails with a 409 saying that no network node is available while none
//! is. A router never moves by itself.

use crate::Scope;
use crate::db::{Store, db_error, flag};
use crate::l3_ports::{
    AddressRequest, L3Port, Transaction, allocate_on_network, delete_port, insert_port,
};
use crate::row::RowExt;
use cloud_model::network::{
    DEVICE_OWNER_ROUTER_GATEWAY, ExternalGateway, FixedIp, HostRoute, Router, RouterId,
};
use cloud_model::{Error, NetworkId, PortId, ProjectId, ResourceKind, SubnetId, Timestamp};
use sqlx::any::AnyRow;

/// The fields of a new router, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewRouter {
    /// Owner.
    pub project_id: ProjectId,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Its gateway, if it gets one at once.
    pub gateway: Option<GatewayRequest>,
}

/// A router's gateway as requested: the external network (the caller
/// checked that it is one), SNAT, and the addresses wanted on it (none:
/// one from the first subnet with a free address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayRequest {
    /// The external network.
    pub network_id: NetworkId,
    /// Whether the router's subnets reach out with its address.
    pub enable_snat: bool,
    /// Addresses wanted (`external_fixed_ips`).
    pub addresses: Vec<AddressRequest>,
}

/// Changes to a router (`None`: unchanged), applied together or not at
/// all.
#[derive(Clone, Debug, Default)]
pub struct RouterUpdate {
    /// New gateway (`Some(None)` removes it).
    pub gateway: Option<Option<GatewayRequest>>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New administrative state.
    pub admin_state_up: Option<bool>,
    /// New extra routes, well formed (the caller checked); the store
    /// checks that each next hop is on one of the router's subnets.
    pub routes: Option<Vec<HostRoute>>,
}

/// The columns of a router with its gateway port's network and addresses
/// (one row per gateway address).
pub(crate) const ROUTER_SELECT: &str = "SELECT r.id, r.project_id, r.name, r.description, \
    r.admin_state_up, r.status, r.gw_port_id, r.enable_snat, r.routes, r.host, r.created_at, \
    r.updated_at, r.revision, g.network_id AS gw_network_id, a.subnet_id AS gw_subnet_id, \
    a.ip_address AS gw_ip FROM routers r LEFT JOIN ports g ON g.id = r.gw_port_id \
    LEFT JOIN ip_allocations a ON a.port_id = g.id";

/// The 404 of a router. `ResourceKind` has no router kind; the API words
/// it ("Router X could not be found.").
pub(crate) fn router_not_found(id: impl std::fmt::Display) -> Error {
    Error::not_found(ResourceKind::Resource, id)
}

/// Folds the rows of [`ROUTER_SELECT`] (ordered by router) into routers.
pub(crate) fn routers_from(rows: &[AnyRow]) -> Result<Vec<Router>, Error> {
    let mut out: Vec<Router> = Vec::new();
    for r in rows {
        let id = r.parsed("id", RouterId::parse)?;
        if out.last().is_none_or(|last| last.id != id) {
            let gateway = match (r.opt_text("gw_port_id")?, r.opt_text("gw_network_id")?) {
                (Some(port), Some(net)) => Some(ExternalGateway {
                    network_id: NetworkId::parse(&net)
                        .ok_or_else(|| Error::internal(format!("bad network id {net}")))?,
                    port_id: PortId::parse(&port)
                        .ok_or_else(|| Error::internal(format!("bad port id {port}")))?,
                    enable_snat: r.flag("enable_snat")?,
                    fixed_ips: Vec::new(),
                }),
                _ => None,
            };
            out.push(Router {
                id,
                project_id: ProjectId::from_string(r.text("project_id")?),
                name: r.text("name")?,
                description: r.text("description")?,
                admin_state_up: r.flag("admin_state_up")?,
                status: r.text("status")?,
                gateway,
                routes: r.json("routes")?,
                host: r.opt_text("host")?,
                created_at: r.ts("created_at")?,
                updated_at: r.ts("updated_at")?,
                revision: r.int("revision")?,
            });
        }
        if let (Some(gw), Some(subnet), Some(ip)) = (
            out.last_mut().and_then(|x| x.gateway.as_mut()),
            r.opt_text("gw_subnet_id")?,
            r.opt_text("gw_ip")?,
        ) {
            gw.fixed_ips.push(FixedIp {
                subnet_id: SubnetId::parse(&subnet)
                    .ok_or_else(|| Error::internal(format!("bad subnet id {subnet}")))?,
                ip_address: ip
                    .parse()
                    .map_err(|_| Error::internal(format!("bad address {ip}")))?,
            });
        }
    }
    Ok(out)
}

/// Locks a router's row for the rest of the transaction and reads it.
pub(crate) async fn locked_router(tx: &mut Transaction, id: RouterId) -> Result<Router, Error> {
    let r = sqlx::query("UPDATE routers SET revision = revision WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 0 {
        return Err(router_not_found(id));
    }
    let rows = sqlx::query(&format!(
        "{ROUTER_SELECT} WHERE r.id = $1 ORDER BY a.ip_address"
    ))
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    routers_from(&rows)?
        .pop()
        .ok_or_else(|| router_not_found(id))
}

/// Marks a router changed (revision, time).
pub(crate) async fn bump(tx: &mut Transaction, id: RouterId) -> Result<(), Error> {
    sqlx::query("UPDATE routers SET revision = revision + 1, updated_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(Timestamp::now().micros())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The network node with the fewest routers among those enabled, up
/// since `seen_after` and with the network role.
const PICK_HOST: &str = "SELECT n.host FROM compute_nodes n \
    JOIN services s ON s.host = n.host AND s.binary_name = 'cloud-compute' \
    WHERE n.network_node = 1 AND s.disabled = 0 AND s.forced_down = 0 \
    AND s.last_seen_up >= $1 \
    ORDER BY (SELECT COUNT(*) FROM routers x WHERE x.host = n.host), n.host LIMIT 1";

/// The host of `router`, placing it first if it has none; a 409 when no
/// network node is available.
pub(crate) async fn ensure_host(
    tx: &mut Transaction,
    router: &mut Router,
    seen_after: Timestamp,
) -> Result<String, Error> {
    if let Some(h) = &router.host {
        return Ok(h.clone());
    }
    let host = sqlx::query(PICK_HOST)
        .bind(seen_after.micros())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .map(|r| r.text("host"))
        .transpose()?
        .ok_or_else(|| {
            Error::conflict(format!(
                "No network node is available to run router {}: no enabled compute host that \
                 is up has the network role ([agent] network_node = true).",
                router.id
            ))
        })?;
    sqlx::query("UPDATE routers SET host = $2 WHERE id = $1")
        .bind(router.id.to_string())
        .bind(&host)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    router.host = Some(host.clone());
    Ok(host)
}

/// The 409 for taking away the path of associated floating IPs.
async fn check_no_floating_ips(
    tx: &mut Transaction,
    router: &Router,
    network: NetworkId,
) -> Result<(), Error> {
    let n = sqlx::query(
        "SELECT COUNT(*) AS n FROM floatingips WHERE router_id = $1 AND port_id IS NOT NULL",
    )
    .bind(router.id.to_string())
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?
    .int("n")?;
    if n > 0 {
        return Err(Error::conflict(format!(
            "Gateway cannot be updated for router {}, since a gateway to external network \
             {network} is required by one or more floating IPs.",
            router.id
        )));
    }
    Ok(())
}

/// Gives `router` the gateway `want` (or none), replacing its gateway
/// port when the network or the addresses change.
async fn set_gateway(
    tx: &mut Transaction,
    router: &mut Router,
    want: Option<&GatewayRequest>,
    seen_after: Timestamp,
) -> Result<(), Error> {
    let current = router.gateway.clone();
    if let (Some(cur), Some(w)) = (&current, want)
        && cur.network_id == w.network_id
        && w.addresses.is_empty()
    {
        sqlx::query("UPDATE routers SET enable_snat = $2 WHERE id = $1")
            .bind(router.id.to_string())
            .bind(flag(w.enable_snat))
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        return Ok(());
    }
    if let Some(cur) = &current {
        if want.is_none_or(|w| w.network_id != cur.network_id) {
            check_no_floating_ips(tx, router, cur.network_id).await?;
        }
        sqlx::query("UPDATE routers SET gw_port_id = NULL, enable_snat = 1 WHERE id = $1")
            .bind(router.id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        delete_port(tx, cur.port_id).await?;
    }
    let Some(want) = want else {
        return Ok(());
    };
    let host = ensure_host(tx, router, seen_after).await?;
    let port_id = PortId::new();
    let port = L3Port {
        network_id: want.network_id,
        project_id: "",
        device_id: Some(router.id.to_string()),
        device_owner: DEVICE_OWNER_ROUTER_GATEWAY,
        binding_host: Some(&host),
        status: "ACTIVE",
    };
    insert_port(tx, port_id, &port, None).await?;
    let requests = match want.addresses.as_slice() {
        [] => vec![AddressRequest::default()],
        list => list.to_vec(),
    };
    let legs = crate::router_interfaces::router_legs(tx, router.id).await?;
    for req in requests {
        let ip = allocate_on_network(
            tx,
            want.network_id,
            req,
            port_id,
            "external_gateway_info.external_fixed_ips",
        )
        .await?;
        let subnet = crate::l3_ports::locked_subnet(tx, ip.subnet_id).await?;
        crate::router_interfaces::check_overlap(&legs, &subnet)?;
    }
    sqlx::query("UPDATE routers SET gw_port_id = $2, enable_snat = $3 WHERE id = $1")
        .bind(router.id.to_string())
        .bind(port_id.to_string())
        .bind(flag(want.enable_snat))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

impl Store {
    /// Creates a router (and its gateway, if asked) on the least busy
    /// network node up since `seen_after`, or without a host when there
    /// is none. `limit` is the project's router quota (-1: none).
    pub async fn router_create(
        &self,
        new: &NewRouter,
        limit: i64,
        seen_after: Timestamp,
    ) -> Result<Router, Error> {
        let id = RouterId::new();
        let now = Timestamp::now().micros();
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!(
            "INSERT INTO routers (id, project_id, name, description, admin_state_up, status, \
             gw_port_id, enable_snat, routes, host, created_at, updated_at, revision) \
             SELECT $1, $2, $3, $4, $5, 'ACTIVE', NULL, 1, '[]', ({PICK_HOST_SUB}), $6, $6, 1 \
             WHERE $7 < 0 OR (SELECT COUNT(*) FROM routers WHERE project_id = $2) < $7",
            PICK_HOST_SUB = PICK_HOST.replace("$1", "$8")
        ))
        .bind(id.to_string())
        .bind(new.project_id.as_str())
        .bind(&new.name)
        .bind(&new.description)
        .bind(flag(new.admin_state_up))
        .bind(now)
        .bind(limit)
        .bind(seen_after.micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::quota(format!(
                "Quota exceeded for resources: ['router'] (limit {limit})."
            )));
        }
        match &new.gateway {
            Some(gw) => {
                let mut router = locked_router(&mut tx, id).await?;
                set_gateway(&mut tx, &mut router, Some(gw), seen_after).await?;
            }
            None => {
                let host: Option<String> = sqlx::query("SELECT host FROM routers WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .opt_text("host")?;
                if host.is_none() {
                    tracing::warn!(router = %id, "no network node is available: the router \
                        exists but runs nowhere until its first gateway or interface change");
                }
            }
        }
        tx.commit().await.map_err(db_error)?;
        self.router_get(id, &Scope::All).await
    }

    /// A router the scope may see.
    pub async fn router_get(&self, id: RouterId, scope: &Scope) -> Result<Router, Error> {
        self.router_query(scope, Some(id))
            .await?
            .pop()
            .ok_or_else(|| router_not_found(id))
    }

    /// The routers the scope may see, oldest first.
    pub async fn router_list(&self, scope: &Scope) -> Result<Vec<Router>, Error> {
        self.router_query(scope, None).await
    }

    async fn router_query(
        &self,
        scope: &Scope,
        id: Option<RouterId>,
    ) -> Result<Vec<Router>, Error> {
        let rows = sqlx::query(&format!(
            "{ROUTER_SELECT} WHERE ($1 IS NULL OR r.project_id = $1) AND ($2 IS NULL OR r.id = $2) \
             ORDER BY r.created_at, r.id, a.ip_address"
        ))
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .bind(id.map(|i| i.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        routers_from(&rows)
    }

    /// Changes a router's gateway (as [`Store::router_set_gateway`]),
    /// name, description, state or extra routes, in one transaction. A
    /// route whose next hop is on none of the router's subnets (the new
    /// gateway's included), or is one of the router's own addresses, is a
    /// 400.
    pub async fn router_update(
        &self,
        id: RouterId,
        up: &RouterUpdate,
        seen_after: Timestamp,
    ) -> Result<Router, Error> {
        let mut tx = self.begin().await?;
        let mut cur = locked_router(&mut tx, id).await?;
        if let Some(gateway) = &up.gateway {
            set_gateway(&mut tx, &mut cur, gateway.as_ref(), seen_after).await?;
        }
        if let Some(routes) = &up.routes {
            let legs = crate::router_interfaces::router_legs(&mut tx, id).await?;
            crate::router_interfaces::check_routes(&legs, routes)?;
        }
        let routes = up.routes.as_ref().unwrap_or(&cur.routes);
        sqlx::query(
            "UPDATE routers SET name = $2, description = $3, admin_state_up = $4, routes = $5, \
             updated_at = $6, revision = revision + 1 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(up.name.clone().unwrap_or(cur.name))
        .bind(up.description.clone().unwrap_or(cur.description))
        .bind(flag(up.admin_state_up.unwrap_or(cur.admin_state_up)))
        .bind(serde_json::to_string(routes).unwrap_or_else(|_| "[]".to_owned()))
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.router_get(id, &Scope::All).await
    }

    /// Sets, replaces or (with `None`) clears a router's gateway. Taking
    /// the gateway's network away from associated floating IPs is a 409;
    /// so is a router without a host when no network node is available.
    pub async fn router_set_gateway(
        &self,
        id: RouterId,
        want: Option<&GatewayRequest>,
        seen_after: Timestamp,
    ) -> Result<Router, Error> {
        let up = RouterUpdate {
            gateway: Some(want.cloned()),
            ..RouterUpdate::default()
        };
        self.router_update(id, &up, seen_after).await
    }

    /// Deletes a router and its gateway port. A router with interfaces is
    /// a 409 (Neutron's `RouterInUse`). Returns what was deleted.
    pub async fn router_delete(&self, id: RouterId) -> Result<Router, Error> {
        let mut tx = self.begin().await?;
        let router = locked_router(&mut tx, id).await?;
        let legs = crate::router_interfaces::router_legs(&mut tx, id).await?;
        if legs.iter().any(|l| !l.gateway) {
            return Err(Error::conflict(format!("Router {id} still has ports")));
        }
        if let Some(gw) = &router.gateway {
            check_no_floating_ips(&mut tx, &router, gw.network_id).await?;
        }
        // Floating IPs whose port went away still name the router.
        sqlx::query("UPDATE floatingips SET router_id = NULL WHERE router_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM routers WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if let Some(gw) = &router.gateway {
            delete_port(&mut tx, gw.port_id).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(router)
    }

    /// Counts a project's routers and floating IPs, keyed by their Neutron
    /// quota names (`router`, `floatingip`), in one query.
    pub async fn l3_counts(
        &self,
        project: &ProjectId,
    ) -> Result<std::collections::BTreeMap<String, i64>, Error> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM routers WHERE project_id = $1) AS routers, \
                    (SELECT COUNT(*) FROM floatingips WHERE project_id = $1) AS fips",
        )
        .bind(project.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok([
            ("router".to_owned(), r.int("routers")?),
            ("floatingip".to_owned(), r.int("fips")?),
        ]
        .into_iter()
        .collect())
    }
}
