//! Floating IPs: an address of an external network (held by a
//! `network:floatingip` port, so IPAM hands it out once) and its
//! association with a fixed IP of a port, through the router that has a
//! gateway on the external network and an interface on the fixed IP's
//! subnet.
//!
//! A fixed IP has at most one floating IP (a unique index, whatever the
//! concurrency). Deleting the associated port disassociates by itself
//! (foreign keys null the association; see migrations/0004_l3.sql);
//! [`Store::floating_ips_disassociate_ports`] does it explicitly for ports
//! that stay (a deleted server's ports given by the user).

use crate::Scope;
use crate::db::{Store, db_error, is_foreign_key_violation, is_unique_violation};
use crate::l3_ports::{
    AddressRequest, L3Port, Transaction, allocate_on_network, insert_port, placeholders, port_ips,
};
use crate::row::RowExt;
use cloud_model::network::{DEVICE_OWNER_FLOATING_IP, FloatingIp, FloatingIpId, RouterId};
use cloud_model::{Error, NetworkId, PortId, ProjectId, ResourceKind, SubnetId, Timestamp};
use sqlx::any::AnyRow;
use std::net::Ipv4Addr;

/// An association request: a port and, when it has several addresses,
/// which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Association {
    /// The port (the caller checked the caller may use it).
    pub port_id: PortId,
    /// Its fixed IP to use; `None`: its only IPv4 address.
    pub fixed_ip: Option<Ipv4Addr>,
}

/// The fields of a new floating IP, validated by the caller (the network
/// is external).
#[derive(Clone, Debug)]
pub struct NewFloatingIp {
    /// Owner.
    pub project_id: ProjectId,
    /// The external network.
    pub floating_network_id: NetworkId,
    /// The address wanted (subnet and/or exact address), or any.
    pub address: AddressRequest,
    /// Free text.
    pub description: String,
    /// Associate at once.
    pub association: Option<Association>,
}

/// Changes to a floating IP (`None`: unchanged).
#[derive(Clone, Debug, Default)]
pub struct FloatingIpUpdate {
    /// `Some(Some(..))`: associate (or move); `Some(None)`: disassociate.
    pub association: Option<Option<Association>>,
    /// New description.
    pub description: Option<String>,
}

const COLS: &str = "id, project_id, floating_network_id, floating_ip_address, floating_port_id, \
                    port_id, fixed_subnet_id, fixed_ip_address, router_id, status, description, \
                    created_at, updated_at, revision";

/// The 404 of a floating IP (`ResourceKind` has no kind for it; the API
/// words it).
pub(crate) fn floating_ip_not_found(id: impl std::fmt::Display) -> Error {
    Error::not_found(ResourceKind::Resource, id)
}

/// A row; without a port (it was deleted) the floating IP is shown
/// disassociated.
fn floating_ip_from(r: &AnyRow) -> Result<FloatingIp, Error> {
    let port_id = r.opt_text("port_id")?.and_then(|p| PortId::parse(&p));
    let associated = port_id.is_some();
    Ok(FloatingIp {
        id: r.parsed("id", FloatingIpId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        floating_network_id: r.parsed("floating_network_id", NetworkId::parse)?,
        floating_ip_address: r.parsed("floating_ip_address", |s| s.parse().ok())?,
        floating_port_id: r.parsed("floating_port_id", PortId::parse)?,
        port_id,
        fixed_ip_address: r
            .opt_text("fixed_ip_address")?
            .and_then(|s| s.parse().ok())
            .filter(|_| associated),
        router_id: r
            .opt_text("router_id")?
            .and_then(|s| RouterId::parse(&s))
            .filter(|_| associated),
        status: if associated {
            r.text("status")?
        } else {
            "DOWN".to_owned()
        },
        description: r.text("description")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        revision: r.int("revision")?,
    })
}

/// The router giving `floating_network` a path to `subnet`: a gateway on
/// the one and an interface on the other (the oldest such router).
const PATH: &str = "SELECT r.id FROM routers r \
    JOIN ports g ON g.id = r.gw_port_id AND g.network_id = $1 \
    JOIN ports i ON i.device_id = r.id AND i.device_owner = 'network:router_interface' \
    JOIN ip_allocations a ON a.port_id = i.id AND a.subnet_id = $2 \
    ORDER BY r.created_at, r.id LIMIT 1";

/// Associates floating IP `fip` (locked by the caller) with `assoc`.
async fn associate(
    tx: &mut Transaction,
    fip: &FloatingIp,
    assoc: Association,
) -> Result<(), Error> {
    let port = assoc.port_id;
    let owner = sqlx::query("SELECT device_owner FROM ports WHERE id = $1")
        .bind(port.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found(ResourceKind::Port, port))?
        .text("device_owner")?;
    if owner.starts_with("network:") {
        return Err(Error::invalid(format!(
            "Bad floatingip request: Port {port} has owner {owner} and therefore cannot be \
             associated with a floating IP."
        )));
    }
    let ips = port_ips(tx, port).await?;
    let fixed = match (assoc.fixed_ip, ips.as_slice()) {
        (Some(want), _) => ips.iter().find(|f| f.ip_address == want).ok_or_else(|| {
            Error::invalid(format!(
                "Bad floatingip request: Port {port} does not have fixed ip {want}."
            ))
        })?,
        (None, [one]) => one,
        (None, []) => {
            return Err(Error::invalid(format!(
                "Bad floatingip request: Port {port} does not have any fixed IPv4 address."
            )));
        }
        (None, _) => {
            return Err(Error::invalid(format!(
                "Bad floatingip request: Port {port} has multiple fixed IPv4 addresses. Must \
                 provide a specific IPv4 address when assigning a floating IP."
            )));
        }
    };
    let router = sqlx::query(PATH)
        .bind(fip.floating_network_id.to_string())
        .bind(fixed.subnet_id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .map(|r| r.text("id"))
        .transpose()?
        .ok_or_else(|| unreachable_error(fip.floating_network_id, fixed.subnet_id, port))?;
    let r = sqlx::query(
        "UPDATE floatingips SET port_id = $2, fixed_subnet_id = $3, fixed_ip_address = $4, \
         router_id = $5, status = 'ACTIVE' WHERE id = $1",
    )
    .bind(fip.id.to_string())
    .bind(port.to_string())
    .bind(fixed.subnet_id.to_string())
    .bind(fixed.ip_address.to_string())
    .bind(router)
    .execute(&mut **tx)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::conflict(format!(
            "Cannot associate floating IP {} ({}) with port {port} using fixed IP {}, as that \
             fixed IP already has a floating IP on external network {}.",
            fip.floating_ip_address, fip.id, fixed.ip_address, fip.floating_network_id
        ))),
        Err(e) if is_foreign_key_violation(&e) => Err(Error::not_found(ResourceKind::Port, port)),
        Err(e) => Err(db_error(e)),
    }
}

/// Neutron's message for a port no router connects to the floating
/// network (a 404 there; the store can only say "conflict": the API
/// checks with [`Store::floating_ip_path`] first and answers the 404).
fn unreachable_error(network: NetworkId, subnet: SubnetId, port: PortId) -> Error {
    Error::conflict(format!(
        "External network {network} is not reachable from subnet {subnet}. Therefore, cannot \
         associate Port {port} with a Floating IP."
    ))
}

/// Locks a floating IP's row and reads it.
async fn locked(tx: &mut Transaction, id: FloatingIpId) -> Result<FloatingIp, Error> {
    let r = sqlx::query("UPDATE floatingips SET revision = revision WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 0 {
        return Err(floating_ip_not_found(id));
    }
    let row = sqlx::query(&format!("SELECT {COLS} FROM floatingips WHERE id = $1"))
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    floating_ip_from(&row)
}

impl Store {
    /// Creates a floating IP: a port on the external network with the
    /// address wanted (or the lowest free one), associated at once if
    /// asked. `limit` is the project's `floatingip` quota (-1: none).
    pub async fn floating_ip_create(
        &self,
        new: &NewFloatingIp,
        limit: i64,
    ) -> Result<FloatingIp, Error> {
        let id = FloatingIpId::new();
        let port_id = PortId::new();
        let now = Timestamp::now().micros();
        let mut tx = self.begin().await?;
        let port = L3Port {
            network_id: new.floating_network_id,
            project_id: "",
            device_id: Some(id.to_string()),
            device_owner: DEVICE_OWNER_FLOATING_IP,
            binding_host: None,
            status: "N/A",
        };
        insert_port(&mut tx, port_id, &port, None).await?;
        let ip = allocate_on_network(
            &mut tx,
            new.floating_network_id,
            new.address,
            port_id,
            "floating_ip_address",
        )
        .await?;
        let r = sqlx::query(&format!(
            "INSERT INTO floatingips ({COLS}) SELECT $1, $2, $3, $4, $5, NULL, NULL, NULL, NULL, \
             'DOWN', $6, $7, $7, 1 \
             WHERE $8 < 0 OR (SELECT COUNT(*) FROM floatingips WHERE project_id = $2) < $8"
        ))
        .bind(id.to_string())
        .bind(new.project_id.as_str())
        .bind(new.floating_network_id.to_string())
        .bind(ip.ip_address.to_string())
        .bind(port_id.to_string())
        .bind(&new.description)
        .bind(now)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::quota(format!(
                "Quota exceeded for resources: ['floatingip'] (limit {limit})."
            )));
        }
        if let Some(assoc) = new.association {
            let fip = locked(&mut tx, id).await?;
            associate(&mut tx, &fip, assoc).await?;
        }
        tx.commit().await.map_err(db_error)?;
        self.floating_ip_get(id, &Scope::All).await
    }

    /// A floating IP the scope may see.
    pub async fn floating_ip_get(
        &self,
        id: FloatingIpId,
        scope: &Scope,
    ) -> Result<FloatingIp, Error> {
        self.floating_ip_query(scope, Some(id), None)
            .await?
            .pop()
            .ok_or_else(|| floating_ip_not_found(id))
    }

    /// The floating IPs the scope may see (associated with `port`, when
    /// given), oldest first.
    pub async fn floating_ip_list(
        &self,
        scope: &Scope,
        port: Option<PortId>,
    ) -> Result<Vec<FloatingIp>, Error> {
        self.floating_ip_query(scope, None, port).await
    }

    async fn floating_ip_query(
        &self,
        scope: &Scope,
        id: Option<FloatingIpId>,
        port: Option<PortId>,
    ) -> Result<Vec<FloatingIp>, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM floatingips WHERE ($1 IS NULL OR project_id = $1) \
             AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR port_id = $3) \
             ORDER BY created_at, id"
        ))
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .bind(id.map(|i| i.to_string()))
        .bind(port.map(|p| p.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(floating_ip_from)
        .collect()
    }

    /// The router that would carry a floating IP of `floating_network`
    /// to a fixed IP on `subnet`: the oldest router with a gateway on the
    /// one and an interface on the other.
    pub async fn floating_ip_path(
        &self,
        floating_network: NetworkId,
        subnet: SubnetId,
    ) -> Result<Option<RouterId>, Error> {
        sqlx::query(PATH)
            .bind(floating_network.to_string())
            .bind(subnet.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| r.parsed("id", RouterId::parse))
            .transpose()
    }

    /// Associates, moves or disassociates a floating IP, or changes its
    /// description. Association rules: the port's fixed IP (its only one
    /// unless named) must be reachable from the floating network through
    /// a router (409 here; the API answers Neutron's 404 first), must not
    /// have another floating IP (409), and router, DHCP and floating IP
    /// ports are refused (400).
    pub async fn floating_ip_update(
        &self,
        id: FloatingIpId,
        up: &FloatingIpUpdate,
    ) -> Result<FloatingIp, Error> {
        let mut tx = self.begin().await?;
        let fip = locked(&mut tx, id).await?;
        match up.association {
            Some(Some(assoc)) => associate(&mut tx, &fip, assoc).await?,
            Some(None) => {
                sqlx::query(
                    "UPDATE floatingips SET port_id = NULL, fixed_subnet_id = NULL, \
                     fixed_ip_address = NULL, router_id = NULL, status = 'DOWN' WHERE id = $1",
                )
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            None => {}
        }
        sqlx::query(
            "UPDATE floatingips SET description = $2, updated_at = $3, revision = revision + 1 \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(up.description.clone().unwrap_or(fip.description))
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.floating_ip_get(id, &Scope::All).await
    }

    /// Deletes a floating IP and its port (its address is free again).
    pub async fn floating_ip_delete(&self, id: FloatingIpId) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let fip = locked(&mut tx, id).await?;
        sqlx::query("DELETE FROM floatingips WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        crate::l3_ports::delete_port(&mut tx, fip.floating_port_id).await?;
        tx.commit().await.map_err(db_error)
    }

    /// Disassociates (never deletes) every floating IP associated with
    /// one of `ports`; returns how many were. The conductor calls it when
    /// a server goes, before unbinding or deleting its ports.
    pub async fn floating_ips_disassociate_ports(&self, ports: &[PortId]) -> Result<u64, Error> {
        if ports.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE floatingips SET port_id = NULL, fixed_subnet_id = NULL, \
             fixed_ip_address = NULL, router_id = NULL, status = 'DOWN', updated_at = $1, \
             revision = revision + 1 WHERE port_id IN ({})",
            placeholders(2, ports.len())
        );
        let mut q = sqlx::query(&sql).bind(Timestamp::now().micros());
        for p in ports {
            q = q.bind(p.to_string());
        }
        Ok(q.execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected())
    }
}
