//! Ports and IPAM.
//!
//! Address allocation relies on the primary key of `ip_allocations`
//! (subnet, address): a candidate address is claimed with an insert that
//! does nothing on conflict, so two concurrent requests can never both get
//! it, on either backend, and a lost race simply moves on to the next free
//! address.

use crate::Scope;
use crate::db::{Store, db_error, flag};
use crate::networks::SUBNET_COLS;
use crate::row::RowExt;
use cloud_model::network::{AllowedAddressPair, FixedIp, Port, Subnet};
use cloud_model::{
    Error, InstanceId, NetworkId, PortId, ProjectId, ResourceKind, SecurityGroupId, SubnetId,
    Timestamp,
};
use rand::Rng;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// An address request of a new port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestedIp {
    /// This exact address on this subnet.
    Exact(SubnetId, Ipv4Addr),
    /// Any free address of this subnet.
    AnyOf(SubnetId),
}

/// The fields of a new port, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewPort {
    /// Network of the port.
    pub network_id: NetworkId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Addresses; empty means one from the network's first subnet.
    pub fixed_ips: Vec<RequestedIp>,
    /// A chosen MAC, or None to generate one.
    pub mac_address: Option<String>,
    /// The server using it.
    pub device_id: Option<InstanceId>,
    /// `compute:nova` etc.
    pub device_owner: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Security groups.
    pub security_groups: Vec<SecurityGroupId>,
    /// Whether the host filters the port (the caller resolved the
    /// network's default).
    pub port_security_enabled: bool,
    /// Extra addresses the port may send from.
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
}

/// Which ports a listing returns.
#[derive(Clone, Debug)]
pub struct PortFilter {
    /// Whose ports.
    pub scope: Scope,
    /// On this network.
    pub network_id: Option<NetworkId>,
    /// Used by this server.
    pub device_id: Option<String>,
    /// With this owner string.
    pub device_owner: Option<String>,
    /// With this name.
    pub name: Option<String>,
    /// With this MAC.
    pub mac_address: Option<String>,
    /// Bound to this host.
    pub binding_host: Option<String>,
}

impl PortFilter {
    /// Every port the scope may see.
    pub fn all(scope: Scope) -> PortFilter {
        PortFilter {
            scope,
            network_id: None,
            device_id: None,
            device_owner: None,
            name: None,
            mac_address: None,
            binding_host: None,
        }
    }
}

const COLS: &str = "id, network_id, project_id, name, description, mac_address, device_id, \
                    device_owner, admin_state_up, status, binding_host, created_at, updated_at, \
                    revision, port_security_enabled, allowed_address_pairs";

fn port_from(r: &AnyRow) -> Result<Port, Error> {
    Ok(Port {
        id: r.parsed("id", PortId::parse)?,
        network_id: r.parsed("network_id", NetworkId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        name: r.text("name")?,
        description: r.text("description")?,
        mac_address: r.text("mac_address")?,
        fixed_ips: Vec::new(),
        device_id: r.opt_text("device_id")?.and_then(|d| InstanceId::parse(&d)),
        device_owner: r.text("device_owner")?,
        admin_state_up: r.flag("admin_state_up")?,
        status: r.text("status")?,
        binding_host: r.opt_text("binding_host")?,
        security_group_ids: Vec::new(),
        port_security_enabled: r.flag("port_security_enabled")?,
        allowed_address_pairs: r.json("allowed_address_pairs")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        revision: r.int("revision")?,
    })
}

/// A random MAC in OpenStack's `fa:16:3e` prefix, as the store draws
/// them for new ports (the API too, when it must know one before the port
/// exists).
pub fn random_mac() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        rng.r#gen::<u8>(),
        rng.r#gen::<u8>(),
        rng.r#gen::<u8>()
    )
}

impl Store {
    /// Creates a port and allocates its addresses, all or nothing.
    pub async fn port_create(&self, new: &NewPort) -> Result<Port, Error> {
        let id = PortId::new();
        let now = Timestamp::now();
        let mut tx = self.begin().await?;

        // The port row; a generated MAC that collides is simply redrawn.
        let mut attempts = 0;
        loop {
            let mac = new.mac_address.clone().unwrap_or_else(random_mac);
            let r = sqlx::query(&format!(
                "INSERT INTO ports ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'DOWN', \
                 NULL, $10, $10, 1, $11, $12) ON CONFLICT DO NOTHING"
            ))
            .bind(id.to_string())
            .bind(new.network_id.to_string())
            .bind(new.project_id.as_str())
            .bind(&new.name)
            .bind(&new.description)
            .bind(&mac)
            .bind(new.device_id.map(|d| d.to_string()))
            .bind(&new.device_owner)
            .bind(flag(new.admin_state_up))
            .bind(now.micros())
            .bind(flag(new.port_security_enabled))
            .bind(pairs_json(&new.allowed_address_pairs))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if crate::db::is_foreign_key_violation(&e) {
                    Error::not_found(ResourceKind::Network, new.network_id)
                } else {
                    db_error(e)
                }
            })?;
            if r.rows_affected() == 1 {
                break;
            }
            attempts += 1;
            if new.mac_address.is_some() {
                return Err(Error::conflict(format!(
                    "Unable to complete operation for network {}. The mac address {mac} is in use.",
                    new.network_id
                )));
            }
            if attempts > 16 {
                return Err(Error::internal("could not draw a unique MAC address"));
            }
        }

        let mut requests = new.fixed_ips.clone();
        if requests.is_empty() {
            // Neutron's default: one address from the first IPv4 subnet.
            let first = sqlx::query(
                "SELECT id FROM subnets WHERE network_id = $1 ORDER BY created_at, id LIMIT 1",
            )
            .bind(new.network_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if let Some(r) = first {
                requests.push(RequestedIp::AnyOf(r.parsed("id", SubnetId::parse)?));
            }
        }
        // Lock the subnets we allocate from, in one order (no deadlock
        // between two multi-subnet ports), so a concurrent subnet delete
        // or gateway change cannot slip between our checks and our claims.
        let wanted: BTreeSet<SubnetId> = requests
            .iter()
            .map(|r| match r {
                RequestedIp::Exact(s, _) | RequestedIp::AnyOf(s) => *s,
            })
            .collect();
        for subnet_id in &wanted {
            match crate::networks::lock_subnet(&mut tx, *subnet_id).await {
                Err(Error::NotFound { .. }) => {
                    return Err(not_on_network(*subnet_id, new.network_id));
                }
                other => other?,
            }
        }
        let subnets: BTreeMap<SubnetId, Subnet> = sqlx::query(&format!(
            "SELECT {SUBNET_COLS} FROM subnets WHERE network_id = $1 ORDER BY created_at, id"
        ))
        .bind(new.network_id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            let s = crate::networks::subnet_from(r)?;
            Ok((s.id, s))
        })
        .collect::<Result<_, Error>>()?;

        for req in &requests {
            let subnet_id = match req {
                RequestedIp::Exact(s, _) | RequestedIp::AnyOf(s) => *s,
            };
            let subnet = subnets
                .get(&subnet_id)
                .ok_or_else(|| not_on_network(subnet_id, new.network_id))?;
            match req {
                RequestedIp::Exact(_, ip) => {
                    check_exact_ip(subnet, *ip)?;
                    if !claim_ip(&mut tx, subnet, *ip, id).await? {
                        return Err(Error::conflict(format!(
                            "IP address {ip} already allocated in subnet {subnet_id}."
                        )));
                    }
                }
                RequestedIp::AnyOf(_) => allocate_next(&mut tx, subnet, id).await?,
            }
        }
        for sg in &new.security_groups {
            sqlx::query(
                "INSERT INTO port_security_groups (port_id, security_group_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.to_string())
            .bind(sg.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if crate::db::is_foreign_key_violation(&e) {
                    Error::not_found(ResourceKind::SecurityGroup, sg)
                } else {
                    db_error(e)
                }
            })?;
        }
        tx.commit().await.map_err(db_error)?;
        self.port_get(id, &Scope::All).await
    }

    /// A port the scope may see.
    pub async fn port_get(&self, id: PortId, scope: &Scope) -> Result<Port, Error> {
        let mut ports = self
            .port_query(&PortFilter::all(scope.clone()), Some(id))
            .await?;
        ports
            .pop()
            .ok_or_else(|| Error::not_found(ResourceKind::Port, id))
    }

    /// Ports matching `filter`, oldest first.
    pub async fn port_list(&self, filter: &PortFilter) -> Result<Vec<Port>, Error> {
        self.port_query(filter, None).await
    }

    async fn port_query(&self, f: &PortFilter, id: Option<PortId>) -> Result<Vec<Port>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM ports WHERE ($1 IS NULL OR project_id = $1) \
             AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR network_id = $3) \
             AND ($4 IS NULL OR device_id = $4) AND ($5 IS NULL OR device_owner = $5) \
             AND ($6 IS NULL OR name = $6) AND ($7 IS NULL OR mac_address = $7) \
             AND ($8 IS NULL OR binding_host = $8) ORDER BY created_at, id"
        ))
        .bind(f.scope.project().map(|p| p.as_str().to_owned()))
        .bind(id.map(|i| i.to_string()))
        .bind(f.network_id.map(|n| n.to_string()))
        .bind(f.device_id.clone())
        .bind(f.device_owner.clone())
        .bind(f.name.clone())
        .bind(f.mac_address.clone())
        .bind(f.binding_host.clone())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut ports = rows.iter().map(port_from).collect::<Result<Vec<_>, _>>()?;
        self.fill_port_details(&mut ports).await?;
        Ok(ports)
    }

    /// Loads fixed IPs and security groups for `ports`.
    pub(crate) async fn fill_port_details(&self, ports: &mut [Port]) -> Result<(), Error> {
        for p in ports.iter_mut() {
            p.fixed_ips = sqlx::query(
                "SELECT subnet_id, ip_address FROM ip_allocations WHERE port_id = $1 \
                 ORDER BY subnet_id, ip_address",
            )
            .bind(p.id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| {
                Ok(FixedIp {
                    subnet_id: r.parsed("subnet_id", SubnetId::parse)?,
                    ip_address: r.parsed("ip_address", |s| s.parse().ok())?,
                })
            })
            .collect::<Result<_, Error>>()?;
            p.security_group_ids = sqlx::query(
                "SELECT security_group_id FROM port_security_groups WHERE port_id = $1 \
                 ORDER BY security_group_id",
            )
            .bind(p.id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.parsed("security_group_id", SecurityGroupId::parse))
            .collect::<Result<_, Error>>()?;
        }
        Ok(())
    }

    /// Writes a port's mutable fields (name, state, device, binding,
    /// security groups, port security, allowed address pairs) and bumps
    /// its revision.
    pub async fn port_update(&self, port: &Port) -> Result<Port, Error> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE ports SET name = $2, description = $3, admin_state_up = $4, device_id = $5, \
             device_owner = $6, status = $7, binding_host = $8, updated_at = $9, \
             revision = revision + 1, port_security_enabled = $10, allowed_address_pairs = $11 \
             WHERE id = $1",
        )
        .bind(port.id.to_string())
        .bind(&port.name)
        .bind(&port.description)
        .bind(flag(port.admin_state_up))
        .bind(port.device_id.map(|d| d.to_string()))
        .bind(&port.device_owner)
        .bind(&port.status)
        .bind(port.binding_host.clone())
        .bind(Timestamp::now().micros())
        .bind(flag(port.port_security_enabled))
        .bind(pairs_json(&port.allowed_address_pairs))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Port, port.id));
        }
        sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
            .bind(port.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for sg in &port.security_group_ids {
            sqlx::query(
                "INSERT INTO port_security_groups (port_id, security_group_id) VALUES ($1, $2)",
            )
            .bind(port.id.to_string())
            .bind(sg.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if crate::db::is_foreign_key_violation(&e) {
                    Error::not_found(ResourceKind::SecurityGroup, sg)
                } else {
                    db_error(e)
                }
            })?;
        }
        tx.commit().await.map_err(db_error)?;
        self.port_get(port.id, &Scope::All).await
    }

    /// Deletes a port and frees its addresses.
    pub async fn port_delete(&self, id: PortId) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM ports WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Port, id));
        }
        Ok(())
    }
}

fn pairs_json(pairs: &[AllowedAddressPair]) -> String {
    serde_json::to_string(pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// The 400 for a fixed IP request naming a subnet of another network.
fn not_on_network(subnet: SubnetId, network: NetworkId) -> Error {
    Error::invalid(format!(
        "Invalid input for fixed_ips: subnet {subnet} is not on network {network}."
    ))
}

/// Refuses addresses outside the subnet, and its network, broadcast and
/// gateway addresses.
fn check_exact_ip(subnet: &Subnet, ip: Ipv4Addr) -> Result<(), Error> {
    if !subnet.cidr.contains(ip) {
        return Err(Error::invalid(format!(
            "Invalid input for fixed_ips: IP address {ip} is not a valid IP for subnet {} ({}).",
            subnet.id, subnet.cidr
        )));
    }
    if subnet.cidr.prefix() < 31 && (ip == subnet.cidr.network() || ip == subnet.cidr.broadcast()) {
        return Err(Error::invalid(format!(
            "Invalid input for fixed_ips: IP address {ip} is the network or broadcast address of \
             subnet {}.",
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

/// Claims `ip` on `subnet` for `port`; false if someone holds it already.
pub(crate) async fn claim_ip(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subnet: &Subnet,
    ip: Ipv4Addr,
    port: PortId,
) -> Result<bool, Error> {
    let r = sqlx::query(
        "INSERT INTO ip_allocations (subnet_id, ip_address, port_id, network_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(subnet.id.to_string())
    .bind(ip.to_string())
    .bind(port.to_string())
    .bind(subnet.network_id.to_string())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(r.rows_affected() == 1)
}

/// Gives `port` the lowest free address of `subnet`'s pools, if any.
pub(crate) async fn allocate_ip(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subnet: &Subnet,
    port: PortId,
) -> Result<Option<Ipv4Addr>, Error> {
    let used: BTreeSet<Ipv4Addr> =
        sqlx::query("SELECT ip_address FROM ip_allocations WHERE subnet_id = $1")
            .bind(subnet.id.to_string())
            .fetch_all(&mut **tx)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.parsed("ip_address", |s| s.parse().ok()))
            .collect::<Result<_, Error>>()?;
    for pool in &subnet.allocation_pools {
        for ip in pool.addresses() {
            if used.contains(&ip) || subnet.gateway_ip == Some(ip) {
                continue;
            }
            // A concurrent request may take it first (PostgreSQL); then we
            // try the next one.
            if claim_ip(tx, subnet, ip, port).await? {
                return Ok(Some(ip));
            }
        }
    }
    Ok(None)
}

/// Gives `port` the lowest free address of `subnet`'s pools; 409 when
/// there is none.
async fn allocate_next(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subnet: &Subnet,
    port: PortId,
) -> Result<(), Error> {
    match allocate_ip(tx, subnet, port).await? {
        Some(_) => Ok(()),
        None => Err(Error::conflict(format!(
            "No more IP addresses available on network {} (subnet {} {} is exhausted).",
            subnet.network_id, subnet.id, subnet.cidr
        ))),
    }
}
