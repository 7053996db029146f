//! What the conductor reads to compute the routers of a host's data
//! plane: the routers a network node runs with their interfaces, gateway
//! and floating IPs, which subnets' gateways routers hold, and the DHCP
//! address a network's namespace uses on such a subnet. Each is one query
//! (or a fixed few) however many routers and networks.

use crate::db::{Store, db_error};
use crate::l3_ports::{L3Port, insert_port, locked_subnet, placeholders};
use crate::ports::allocate_ip;
use crate::router_interfaces::{LEGS_SELECT, leg_from};
use crate::row::RowExt;
use cloud_model::network::{
    DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, Ipv4Cidr, Router, RouterId, RouterInterface,
};
use cloud_model::{Error, NetworkId, PortId, ResourceKind, SubnetId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A router as the host running it needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostRouter {
    /// The record (id, routes, ...).
    pub router: Router,
    /// Its interfaces on tenant subnets, oldest first.
    pub interfaces: Vec<RouterInterface>,
    /// Its leg on the external network, if it has a gateway.
    pub gateway: Option<GatewayLeg>,
    /// Its associated floating IPs: `(floating address, fixed address)`.
    pub floating_ips: Vec<(Ipv4Addr, Ipv4Addr)>,
}

/// A router's port on the external network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayLeg {
    /// The gateway port.
    pub port_id: PortId,
    /// The external network.
    pub network_id: NetworkId,
    /// The port's MAC.
    pub mac: String,
    /// The router's address on the external subnet.
    pub address: Ipv4Addr,
    /// The external subnet.
    pub cidr: Ipv4Cidr,
    /// The external subnet's gateway: the router's default route.
    pub next_hop: Option<Ipv4Addr>,
    /// Whether the router's subnets reach out with its address (SNAT).
    pub snat: bool,
}

/// The routers `host` must run: placed on it and administratively up.
const ON_HOST: &str = "SELECT id FROM routers WHERE host = $1 AND admin_state_up = 1";

impl Store {
    /// The routers `host` runs (placed on it and administratively up),
    /// oldest first, each with its interfaces, gateway leg (its first
    /// address, with the external subnet's gateway as next hop) and
    /// associated floating IPs. Three queries however many routers.
    pub async fn routers_on_host(&self, host: &str) -> Result<Vec<HostRouter>, Error> {
        let rows = sqlx::query(&format!(
            "{} WHERE r.host = $1 AND r.admin_state_up = 1 ORDER BY r.created_at, r.id, \
             a.ip_address",
            crate::routers::ROUTER_SELECT
        ))
        .bind(host)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut out: Vec<HostRouter> = crate::routers::routers_from(&rows)?
            .into_iter()
            .map(|router| HostRouter {
                router,
                interfaces: Vec::new(),
                gateway: None,
                floating_ips: Vec::new(),
            })
            .collect();
        if out.is_empty() {
            return Ok(out);
        }
        let index: BTreeMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, r)| (r.router.id.to_string(), i))
            .collect();
        let legs = sqlx::query(&format!(
            "{LEGS_SELECT} AND p.device_id IN ({ON_HOST}) ORDER BY p.created_at, p.id, a.ip_address"
        ))
        .bind(host)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        for r in &legs {
            let leg = leg_from(r)?;
            let Some(hr) = index.get(&leg.router).map(|i| &mut out[*i]) else {
                continue;
            };
            if !leg.gateway {
                hr.interfaces.push(leg.interface());
            } else if hr.gateway.is_none() {
                hr.gateway = Some(GatewayLeg {
                    port_id: leg.port_id,
                    network_id: leg.network_id,
                    mac: leg.mac.clone(),
                    address: leg.ip,
                    cidr: leg.cidr,
                    next_hop: leg.subnet_gateway,
                    snat: hr.router.gateway.as_ref().is_some_and(|g| g.enable_snat),
                });
            }
        }
        let fips = sqlx::query(&format!(
            "SELECT router_id, floating_ip_address, fixed_ip_address FROM floatingips \
             WHERE router_id IN ({ON_HOST}) AND port_id IS NOT NULL \
             AND fixed_ip_address IS NOT NULL ORDER BY floating_ip_address"
        ))
        .bind(host)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        for r in &fips {
            if let Some(i) = index.get(&r.text("router_id")?) {
                out[*i].floating_ips.push((
                    r.parsed("floating_ip_address", |s| s.parse().ok())?,
                    r.parsed("fixed_ip_address", |s| s.parse().ok())?,
                ));
            }
        }
        Ok(out)
    }

    /// The associated floating IPs of a router, as `(floating address,
    /// fixed address)`, by floating address.
    pub async fn floating_ips_of_router(
        &self,
        router: RouterId,
    ) -> Result<Vec<(Ipv4Addr, Ipv4Addr)>, Error> {
        sqlx::query(
            "SELECT floating_ip_address, fixed_ip_address FROM floatingips WHERE router_id = $1 \
             AND port_id IS NOT NULL AND fixed_ip_address IS NOT NULL \
             ORDER BY floating_ip_address",
        )
        .bind(router.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok((
                r.parsed("floating_ip_address", |s| s.parse().ok())?,
                r.parsed("fixed_ip_address", |s| s.parse().ok())?,
            ))
        })
        .collect()
    }

    /// The subnets of `networks` whose gateway address a router interface
    /// holds (the interfaces added by subnet): there the router is the
    /// guests' gateway, and the network's namespace serves DHCP and
    /// metadata from its DHCP port's address instead. A router attached
    /// by a port with another address does not count. One query.
    pub async fn subnets_with_router_interface(
        &self,
        networks: &[NetworkId],
    ) -> Result<BTreeSet<SubnetId>, Error> {
        if networks.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT DISTINCT a.subnet_id FROM ports p \
             JOIN ip_allocations a ON a.port_id = p.id JOIN subnets s ON s.id = a.subnet_id \
             WHERE p.device_owner = $1 AND s.gateway_ip = a.ip_address \
             AND p.network_id IN ({})",
            placeholders(2, networks.len())
        );
        let mut q = sqlx::query(&sql).bind(DEVICE_OWNER_ROUTER_INTERFACE);
        for n in networks {
            q = q.bind(n.to_string());
        }
        q.fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.parsed("subnet_id", SubnetId::parse))
            .collect()
    }

    /// The address of the subnet's DHCP port (`network:dhcp`, unbound, in
    /// the network's project), created with the lowest free address of
    /// the subnet's pools if there is none yet. Idempotent and race-safe:
    /// creation runs under the subnet's row lock (the one IPAM takes) and
    /// looks again once it holds it, so concurrent calls make one port.
    /// A subnet of another network is a 400, a missing one a 404, a
    /// subnet without a free address a 409.
    pub async fn dhcp_port_ensure(
        &self,
        network: NetworkId,
        subnet: SubnetId,
    ) -> Result<Ipv4Addr, Error> {
        const FIND: &str = "SELECT a.ip_address FROM ports p \
            JOIN ip_allocations a ON a.port_id = p.id \
            WHERE p.device_owner = $1 AND p.network_id = $2 AND a.subnet_id = $3 \
            ORDER BY p.created_at, p.id LIMIT 1";
        let find = || {
            sqlx::query(FIND)
                .bind(DEVICE_OWNER_DHCP)
                .bind(network.to_string())
                .bind(subnet.to_string())
        };
        if let Some(r) = find().fetch_optional(&self.pool).await.map_err(db_error)? {
            return r.parsed("ip_address", |s| s.parse().ok());
        }
        let mut tx = self.begin().await?;
        let sub = locked_subnet(&mut tx, subnet).await?;
        if sub.network_id != network {
            return Err(Error::invalid(format!(
                "Subnet {subnet} is not on network {network}."
            )));
        }
        if let Some(r) = find().fetch_optional(&mut *tx).await.map_err(db_error)? {
            return r.parsed("ip_address", |s| s.parse().ok());
        }
        let project = sqlx::query("SELECT project_id FROM networks WHERE id = $1")
            .bind(network.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found(ResourceKind::Network, network))?
            .text("project_id")?;
        let port_id = PortId::new();
        let port = L3Port {
            network_id: network,
            project_id: &project,
            device_id: None,
            device_owner: DEVICE_OWNER_DHCP,
            binding_host: None,
            status: "ACTIVE",
        };
        insert_port(&mut tx, port_id, &port, None).await?;
        let ip = allocate_ip(&mut tx, &sub, port_id).await?.ok_or_else(|| {
            Error::conflict(format!(
                "No more IP addresses available on network {network} (subnet {subnet} {} is \
                 exhausted): none left for its DHCP port.",
                sub.cidr
            ))
        })?;
        tx.commit().await.map_err(db_error)?;
        Ok(ip)
    }
}
