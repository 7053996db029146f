//! The ports layer 3 makes for itself, inside the transaction of the
//! router or floating IP change they belong to: router interfaces and
//! gateways, floating IP ports and DHCP ports.
//!
//! They are ordinary rows of `ports` and `ip_allocations`, so everything
//! that reads ports (data plane peers, l2population, the hosts a change
//! concerns, quotas, network deletion) sees them. Addresses are claimed
//! with the port API's IPAM (`crate::ports::claim_ip`): an insert that
//! does nothing on conflict with the primary key (subnet, address), so an
//! address is never handed out twice.

use crate::db::{db_error, flag};
use crate::networks::SUBNET_COLS;
use crate::ports::{allocate_ip, claim_ip, random_mac};
use crate::row::RowExt;
use cloud_model::network::{FixedIp, Subnet};
use cloud_model::{Error, NetworkId, PortId, ResourceKind, SubnetId, Timestamp};
use std::net::Ipv4Addr;

/// A write transaction of the store.
pub(crate) type Transaction = sqlx::Transaction<'static, sqlx::Any>;

/// Tries at a random MAC nobody has.
const MAC_ATTEMPTS: usize = 16;

/// The row of a port layer 3 makes.
#[derive(Clone, Debug)]
pub(crate) struct L3Port<'a> {
    /// Its network.
    pub network_id: NetworkId,
    /// Owner (`""` for gateway and floating IP ports, as in Neutron: no
    /// project sees them but admins).
    pub project_id: &'a str,
    /// The router's or floating IP's id.
    pub device_id: Option<String>,
    /// One of the `DEVICE_OWNER_*` strings.
    pub device_owner: &'a str,
    /// The router's host, for router ports.
    pub binding_host: Option<&'a str>,
    /// `ACTIVE` for bound router ports, `N/A` for floating IP ports,
    /// `DOWN` otherwise.
    pub status: &'a str,
}

/// Inserts the port row `id` with `mac`, or with a random MAC (redrawn
/// while another port has it). Returns the MAC, or `None` when the given
/// `mac` is taken.
pub(crate) async fn insert_port(
    tx: &mut Transaction,
    id: PortId,
    port: &L3Port<'_>,
    mac: Option<&str>,
) -> Result<Option<String>, Error> {
    let now = Timestamp::now().micros();
    for _ in 0..MAC_ATTEMPTS {
        let candidate = mac.map(str::to_owned).unwrap_or_else(random_mac);
        let r = sqlx::query(
            "INSERT INTO ports (id, network_id, project_id, name, description, mac_address, \
             device_id, device_owner, admin_state_up, status, binding_host, created_at, \
             updated_at, revision, port_security_enabled, allowed_address_pairs) \
             VALUES ($1, $2, $3, '', '', $4, $5, $6, 1, $7, $8, $9, $9, 1, $10, '[]') \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.to_string())
        .bind(port.network_id.to_string())
        .bind(port.project_id)
        .bind(&candidate)
        .bind(port.device_id.clone())
        .bind(port.device_owner)
        .bind(port.status)
        .bind(port.binding_host.map(str::to_owned))
        .bind(now)
        // Router, floating IP and DHCP ports are not filtered.
        .bind(flag(false))
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            if crate::db::is_foreign_key_violation(&e) {
                Error::not_found(ResourceKind::Network, port.network_id)
            } else {
                db_error(e)
            }
        })?;
        if r.rows_affected() == 1 {
            return Ok(Some(candidate));
        }
        if mac.is_some() {
            return Ok(None);
        }
    }
    Err(Error::internal("could not draw a unique MAC address"))
}

/// Locks and reads a subnet (404 when it is gone).
pub(crate) async fn locked_subnet(tx: &mut Transaction, id: SubnetId) -> Result<Subnet, Error> {
    crate::networks::lock_subnet(tx, id).await?;
    let row = sqlx::query(&format!("SELECT {SUBNET_COLS} FROM subnets WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found(ResourceKind::Subnet, id))?;
    crate::networks::subnet_from(&row)
}

/// The subnets of a network, oldest first.
pub(crate) async fn network_subnets(
    tx: &mut Transaction,
    network: NetworkId,
) -> Result<Vec<Subnet>, Error> {
    sqlx::query(&format!(
        "SELECT {SUBNET_COLS} FROM subnets WHERE network_id = $1 ORDER BY created_at, id"
    ))
    .bind(network.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?
    .iter()
    .map(crate::networks::subnet_from)
    .collect()
}

/// What address a port on an external network asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressRequest {
    /// From this subnet (of the network).
    pub subnet_id: Option<SubnetId>,
    /// This exact address.
    pub ip_address: Option<Ipv4Addr>,
}

/// Gives `port` an address on `network`: `want`'s, or the lowest free
/// one of the first subnet (oldest first) that has one. `field` names the
/// request attribute in messages.
pub(crate) async fn allocate_on_network(
    tx: &mut Transaction,
    network: NetworkId,
    want: AddressRequest,
    port: PortId,
    field: &str,
) -> Result<FixedIp, Error> {
    let subnets = network_subnets(tx, network).await?;
    if subnets.is_empty() {
        return Err(Error::invalid(format!(
            "Network {network} does not contain any IPv4 subnet."
        )));
    }
    let candidates: Vec<&Subnet> = match (want.subnet_id, want.ip_address) {
        (Some(s), _) => vec![subnets.iter().find(|x| x.id == s).ok_or_else(|| {
            Error::invalid(format!(
                "Invalid input for {field}: subnet {s} is not on network {network}."
            ))
        })?],
        (None, Some(ip)) => vec![subnets.iter().find(|x| x.cidr.contains(ip)).ok_or_else(
            || {
                Error::invalid(format!(
                    "Invalid input for {field}: {ip} is not in any subnet of network {network}."
                ))
            },
        )?],
        (None, None) => subnets.iter().collect(),
    };
    for subnet in candidates {
        crate::networks::lock_subnet(tx, subnet.id).await?;
        let got = match want.ip_address {
            Some(ip) => {
                check_exact(subnet, ip, field)?;
                if !claim_ip(tx, subnet, ip, port).await? {
                    return Err(Error::conflict(format!(
                        "IP address {ip} already allocated in subnet {}.",
                        subnet.id
                    )));
                }
                Some(ip)
            }
            None => allocate_ip(tx, subnet, port).await?,
        };
        if let Some(ip) = got {
            return Ok(FixedIp {
                subnet_id: subnet.id,
                ip_address: ip,
            });
        }
    }
    Err(Error::conflict(format!(
        "No more IP addresses available on network {network}."
    )))
}

/// Refuses an explicit address outside the subnet, or its network,
/// broadcast or gateway address.
fn check_exact(subnet: &Subnet, ip: Ipv4Addr, field: &str) -> Result<(), Error> {
    if !subnet.cidr.contains(ip) {
        return Err(Error::invalid(format!(
            "Invalid input for {field}: {ip} is not a valid IP for subnet {} ({}).",
            subnet.id, subnet.cidr
        )));
    }
    if subnet.cidr.prefix() < 31 && (ip == subnet.cidr.network() || ip == subnet.cidr.broadcast()) {
        return Err(Error::invalid(format!(
            "Invalid input for {field}: {ip} is the network or broadcast address of subnet {}.",
            subnet.id
        )));
    }
    if subnet.gateway_ip == Some(ip) {
        return Err(Error::conflict(format!(
            "IP address {ip} already allocated in subnet {}: it is the gateway.",
            subnet.id
        )));
    }
    Ok(())
}

/// Deletes a port (its addresses go with it).
pub(crate) async fn delete_port(tx: &mut Transaction, id: PortId) -> Result<(), Error> {
    sqlx::query("DELETE FROM ports WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The addresses of a port.
pub(crate) async fn port_ips(tx: &mut Transaction, id: PortId) -> Result<Vec<FixedIp>, Error> {
    sqlx::query(
        "SELECT subnet_id, ip_address FROM ip_allocations WHERE port_id = $1 \
         ORDER BY subnet_id, ip_address",
    )
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(FixedIp {
            subnet_id: r.parsed("subnet_id", SubnetId::parse)?,
            ip_address: r.parsed("ip_address", |s| s.parse().ok())?,
        })
    })
    .collect()
}

/// `$first, $first+1, ...`: `n` numbered placeholders for an `IN` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
