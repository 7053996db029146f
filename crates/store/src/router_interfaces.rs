//! A router's interfaces on tenant subnets: added by subnet (a new port
//! holding the subnet's gateway address) or by port (an unbound port with
//! one fixed IP becomes the interface), removed by either, with Neutron's
//! rules: no two interfaces on one subnet or on overlapping subnets, no
//! subnet without a gateway, and an interface stays while floating IPs or
//! extra routes need it.

use crate::db::{Store, db_error};
use crate::l3_ports::{L3Port, Transaction, insert_port, locked_subnet, port_ips};
use crate::ports::claim_ip;
use crate::routers::{bump, ensure_host, locked_router};
use cloud_model::network::{
    DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_GATEWAY, DEVICE_OWNER_ROUTER_INTERFACE, HostRoute,
    Ipv4Cidr, RouterId, RouterInterface, Subnet,
};
use cloud_model::{Error, NetworkId, PortId, ResourceKind, SubnetId, Timestamp};
use sqlx::any::AnyRow;
use std::net::Ipv4Addr;

use crate::row::RowExt;

/// Which interface an interface request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterfaceRequest {
    /// The router's interface on this subnet (adding: a new port with the
    /// subnet's gateway address).
    Subnet(SubnetId),
    /// This port (adding: an unbound port with one fixed IP).
    Port(PortId),
}

/// One address of one of a router's ports, with its subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leg {
    /// The port.
    pub port_id: PortId,
    /// Its network.
    pub network_id: NetworkId,
    /// Whether it is the gateway port (else an interface).
    pub gateway: bool,
    /// Its MAC.
    pub mac: String,
    /// The subnet.
    pub subnet_id: SubnetId,
    /// The address.
    pub ip: Ipv4Addr,
    /// The subnet's range.
    pub cidr: Ipv4Cidr,
    /// The subnet's gateway.
    pub subnet_gateway: Option<Ipv4Addr>,
    /// The router (`device_id`).
    pub router: String,
}

/// The addresses of routers' ports, with their subnets: `WHERE` picks
/// the routers by `p.device_id`.
pub(crate) const LEGS_SELECT: &str = "SELECT p.id, p.network_id, p.device_owner, \
    p.mac_address, p.device_id, a.subnet_id, a.ip_address, s.cidr, s.gateway_ip \
    FROM ports p JOIN ip_allocations a ON a.port_id = p.id JOIN subnets s ON s.id = a.subnet_id \
    WHERE p.device_owner IN ('network:router_interface', 'network:router_gateway')";

/// One row of [`LEGS_SELECT`].
pub(crate) fn leg_from(r: &AnyRow) -> Result<Leg, Error> {
    Ok(Leg {
        port_id: r.parsed("id", PortId::parse)?,
        network_id: r.parsed("network_id", NetworkId::parse)?,
        gateway: r.text("device_owner")? == DEVICE_OWNER_ROUTER_GATEWAY,
        mac: r.text("mac_address")?,
        subnet_id: r.parsed("subnet_id", SubnetId::parse)?,
        ip: r.parsed("ip_address", |s| s.parse().ok())?,
        cidr: r.parsed("cidr", |s| Ipv4Cidr::parse(s).ok())?,
        subnet_gateway: r.opt_text("gateway_ip")?.and_then(|g| g.parse().ok()),
        router: r.text("device_id")?,
    })
}

impl Leg {
    /// The interface it is.
    pub(crate) fn interface(&self) -> RouterInterface {
        RouterInterface {
            port_id: self.port_id,
            network_id: self.network_id,
            subnet_id: self.subnet_id,
            mac_address: self.mac.clone(),
            ip_address: self.ip,
            cidr: self.cidr,
        }
    }
}

/// The addresses of a router's ports (interfaces and gateway).
pub(crate) async fn router_legs(tx: &mut Transaction, id: RouterId) -> Result<Vec<Leg>, Error> {
    sqlx::query(&format!(
        "{LEGS_SELECT} AND p.device_id = $1 ORDER BY p.created_at, p.id, a.ip_address"
    ))
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?
    .iter()
    .map(leg_from)
    .collect()
}

/// A router takes one port per subnet, and no two overlapping subnets
/// (Neutron's 400s).
pub(crate) fn check_overlap(legs: &[Leg], subnet: &Subnet) -> Result<(), Error> {
    for leg in legs {
        if leg.subnet_id == subnet.id {
            return Err(Error::invalid(format!(
                "Bad router request: Router already has a port on subnet {}.",
                subnet.id
            )));
        }
        if leg.cidr.overlaps(&subnet.cidr) {
            return Err(Error::invalid(format!(
                "Bad router request: Cidr {} of subnet {} overlaps with cidr {} of subnet {}.",
                subnet.cidr, subnet.id, leg.cidr, leg.subnet_id
            )));
        }
    }
    Ok(())
}

/// Each extra route's next hop must be on one of the router's subnets,
/// and not one of its own addresses (Neutron's `InvalidRoutes`).
pub(crate) fn check_routes(legs: &[Leg], routes: &[HostRoute]) -> Result<(), Error> {
    for route in routes {
        let why = if legs.iter().any(|l| l.ip == route.nexthop) {
            "the nexthop is used by router"
        } else if !legs.iter().any(|l| l.cidr.contains(route.nexthop)) {
            "the nexthop is not connected with router"
        } else {
            continue;
        };
        return Err(Error::invalid(format!(
            "Invalid format for routes: [{{'destination': '{}', 'nexthop': '{}'}}], {why}.",
            route.destination, route.nexthop
        )));
    }
    Ok(())
}

/// The port row an interface by port starts from.
struct PlainPort {
    network_id: NetworkId,
    device_id: Option<String>,
    binding_host: Option<String>,
}

async fn plain_port(tx: &mut Transaction, id: PortId) -> Result<PlainPort, Error> {
    let r = sqlx::query("SELECT network_id, device_id, binding_host FROM ports WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found(ResourceKind::Port, id))?;
    Ok(PlainPort {
        network_id: r.parsed("network_id", NetworkId::parse)?,
        device_id: r.opt_text("device_id")?.filter(|d| !d.is_empty()),
        binding_host: r.opt_text("binding_host")?.filter(|h| !h.is_empty()),
    })
}

impl Store {
    /// Adds an interface to a router (placing the router first if it has
    /// no host: a 409 when no network node is available). By subnet: a
    /// new port holding the subnet's gateway address (400 without a
    /// gateway; 409 when another port, another router's interface say,
    /// holds it). By port: the port, unbound and with one fixed IP,
    /// becomes the interface (409 when a device uses it). Either way a
    /// subnet the router already has, or one overlapping its subnets, is
    /// a 400.
    pub async fn router_add_interface(
        &self,
        id: RouterId,
        req: InterfaceRequest,
        seen_after: Timestamp,
    ) -> Result<RouterInterface, Error> {
        let mut tx = self.begin().await?;
        let mut router = locked_router(&mut tx, id).await?;
        let host = ensure_host(&mut tx, &mut router, seen_after).await?;
        let legs = router_legs(&mut tx, id).await?;
        let port_id = match req {
            InterfaceRequest::Subnet(subnet_id) => {
                let subnet = locked_subnet(&mut tx, subnet_id).await?;
                let Some(gateway) = subnet.gateway_ip else {
                    return Err(Error::invalid(
                        "Bad router request: Subnet for router interface must have a gateway IP.",
                    ));
                };
                check_overlap(&legs, &subnet)?;
                let port_id = PortId::new();
                let port = L3Port {
                    network_id: subnet.network_id,
                    project_id: router.project_id.as_str(),
                    device_id: Some(id.to_string()),
                    device_owner: DEVICE_OWNER_ROUTER_INTERFACE,
                    binding_host: Some(&host),
                    status: "ACTIVE",
                };
                insert_port(&mut tx, port_id, &port, None).await?;
                if !claim_ip(&mut tx, &subnet, gateway, port_id).await? {
                    return Err(Error::conflict(format!(
                        "IP address {gateway} already allocated in subnet {subnet_id}."
                    )));
                }
                port_id
            }
            InterfaceRequest::Port(port_id) => {
                let port = plain_port(&mut tx, port_id).await?;
                if let Some(device) = port.device_id.or(port.binding_host) {
                    return Err(Error::conflict(format!(
                        "Unable to complete operation on port {port_id} for network {}. Port \
                         already has an attached device {device}.",
                        port.network_id
                    )));
                }
                let ips = port_ips(&mut tx, port_id).await?;
                let ip = match ips.as_slice() {
                    [ip] => *ip,
                    [] => {
                        return Err(Error::invalid(
                            "Bad router request: Router port must have at least one fixed IP.",
                        ));
                    }
                    _ => {
                        return Err(Error::invalid(
                            "Bad router request: Cannot have multiple IPv4 subnets on router \
                             port.",
                        ));
                    }
                };
                let subnet = locked_subnet(&mut tx, ip.subnet_id).await?;
                check_overlap(&legs, &subnet)?;
                sqlx::query(
                    "UPDATE ports SET device_id = $2, device_owner = $3, binding_host = $4, \
                     status = 'ACTIVE', updated_at = $5, revision = revision + 1 WHERE id = $1",
                )
                .bind(port_id.to_string())
                .bind(id.to_string())
                .bind(DEVICE_OWNER_ROUTER_INTERFACE)
                .bind(&host)
                .bind(Timestamp::now().micros())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                port_id
            }
        };
        bump(&mut tx, id).await?;
        let added = router_legs(&mut tx, id)
            .await?
            .into_iter()
            .find(|l| l.port_id == port_id)
            .ok_or_else(|| Error::internal("the new router interface has no address"))?;
        tx.commit().await.map_err(db_error)?;
        Ok(added.interface())
    }

    /// Removes a router's interface on a subnet or with a port id, and
    /// deletes its port (as Neutron does, also for an interface added by
    /// port). Not attached: 404. Needed by an associated floating IP or by
    /// an extra route's next hop: 409. When the interface held the
    /// subnet's gateway, the subnet's DHCP port goes too (the network's
    /// namespace holds the gateway again). Returns the removed interface.
    pub async fn router_remove_interface(
        &self,
        id: RouterId,
        req: InterfaceRequest,
    ) -> Result<RouterInterface, Error> {
        let mut tx = self.begin().await?;
        let router = locked_router(&mut tx, id).await?;
        let legs = router_legs(&mut tx, id).await?;
        let leg = legs
            .iter()
            .find(|l| {
                !l.gateway
                    && match req {
                        InterfaceRequest::Subnet(s) => l.subnet_id == s,
                        InterfaceRequest::Port(p) => l.port_id == p,
                    }
            })
            .cloned()
            .ok_or_else(|| {
                Error::not_found(
                    ResourceKind::Resource,
                    match req {
                        InterfaceRequest::Subnet(s) => format!("on subnet {s} of router {id}"),
                        InterfaceRequest::Port(p) => format!("{p} of router {id}"),
                    },
                )
            })?;
        let in_use = sqlx::query(
            "SELECT COUNT(*) AS n FROM floatingips WHERE router_id = $1 AND port_id IS NOT NULL \
             AND fixed_subnet_id = $2",
        )
        .bind(id.to_string())
        .bind(leg.subnet_id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?
        .int("n")?;
        let in_use_by = if in_use > 0 {
            Some("floating IPs")
        } else {
            let rest: Vec<Leg> = legs
                .iter()
                .filter(|l| l.port_id != leg.port_id)
                .cloned()
                .collect();
            check_routes(&rest, &router.routes).err().map(|_| "routes")
        };
        if let Some(what) = in_use_by {
            return Err(Error::conflict(format!(
                "Router interface for subnet {} on router {id} cannot be deleted, as it is \
                 required by one or more {what}.",
                leg.subnet_id
            )));
        }
        crate::l3_ports::delete_port(&mut tx, leg.port_id).await?;
        if leg.subnet_gateway == Some(leg.ip) {
            sqlx::query(
                "DELETE FROM ports WHERE device_owner = $1 AND network_id = $2 AND id IN \
                 (SELECT port_id FROM ip_allocations WHERE subnet_id = $3)",
            )
            .bind(DEVICE_OWNER_DHCP)
            .bind(leg.network_id.to_string())
            .bind(leg.subnet_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        bump(&mut tx, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(leg.interface())
    }

    /// The interfaces of a router (not its gateway), oldest first.
    pub async fn router_interfaces(&self, id: RouterId) -> Result<Vec<RouterInterface>, Error> {
        sqlx::query(&format!(
            "{LEGS_SELECT} AND p.device_id = $1 AND p.device_owner = $2 \
             ORDER BY p.created_at, p.id, a.ip_address"
        ))
        .bind(id.to_string())
        .bind(DEVICE_OWNER_ROUTER_INTERFACE)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| leg_from(r).map(|l| l.interface()))
        .collect()
    }
}
