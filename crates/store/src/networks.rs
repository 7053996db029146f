//! Networks and subnets.

use crate::Scope;
use crate::db::{Store, db_error, flag, is_foreign_key_violation};
use crate::row::RowExt;
use cloud_model::network::{
    AllocationPool, DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, HostRoute, Ipv4Cidr, Network,
    NetworkType, Segment, Subnet,
};
use cloud_model::{Error, NetworkId, ProjectId, ResourceKind, SubnetId, Timestamp};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The fields of a new subnet, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewSubnet {
    /// Network to add the subnet to.
    pub network_id: NetworkId,
    /// Owner.
    pub project_id: ProjectId,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Address range.
    pub cidr: Ipv4Cidr,
    /// Gateway (None: no gateway).
    pub gateway_ip: Option<Ipv4Addr>,
    /// Whether DHCP serves the subnet.
    pub enable_dhcp: bool,
    /// DNS servers.
    pub dns_nameservers: Vec<Ipv4Addr>,
    /// Pools; already defaulted and checked against the CIDR.
    pub allocation_pools: Vec<AllocationPool>,
    /// Static routes handed to guests.
    pub host_routes: Vec<HostRoute>,
}

/// Changes to a subnet (`None`: unchanged).
#[derive(Clone, Debug, Default)]
pub struct SubnetUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New DHCP flag.
    pub enable_dhcp: Option<bool>,
    /// New DNS servers.
    pub dns_nameservers: Option<Vec<Ipv4Addr>>,
    /// New gateway (`Some(None)` removes it).
    pub gateway_ip: Option<Option<Ipv4Addr>>,
    /// New static routes.
    pub host_routes: Option<Vec<HostRoute>>,
}

/// The VNIs tenant networks get, lowest free first (Neutron's
/// `vni_ranges`; VXLAN allows 1..2^24-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VniRange {
    /// First VNI handed out.
    pub first: i64,
    /// Last VNI handed out.
    pub last: i64,
}

impl Default for VniRange {
    fn default() -> Self {
        VniRange {
            first: 1,
            last: 16_777_215,
        }
    }
}

const NET_COLS: &str = "id, project_id, name, description, admin_state_up, shared, external, mtu, \
                        created_at, updated_at, revision, network_type, physical_network, \
                        segmentation_id, port_security_enabled";
/// The columns of `subnets`, as `subnet_from` reads them.
pub(crate) const SUBNET_COLS: &str = "id, network_id, project_id, name, description, cidr, ip_version, \
                           gateway_ip, enable_dhcp, dns_nameservers, allocation_pools, created_at, \
                           updated_at, revision, host_routes";

/// Tries a VXLAN network gets at a free VNI before giving up: each lost
/// race means another create took the VNI we picked, so few are needed.
const VNI_ATTEMPTS: usize = 20;

fn network_from(r: &AnyRow) -> Result<Network, Error> {
    Ok(Network {
        id: r.parsed("id", NetworkId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        name: r.text("name")?,
        description: r.text("description")?,
        admin_state_up: r.flag("admin_state_up")?,
        shared: r.flag("shared")?,
        external: r.flag("external")?,
        mtu: r.int("mtu")?,
        segment: segment_from(r)?,
        port_security_enabled: r.flag("port_security_enabled")?,
        subnet_ids: Vec::new(),
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        revision: r.int("revision")?,
    })
}

pub(crate) fn subnet_from(r: &AnyRow) -> Result<Subnet, Error> {
    Ok(Subnet {
        id: r.parsed("id", SubnetId::parse)?,
        network_id: r.parsed("network_id", NetworkId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        name: r.text("name")?,
        description: r.text("description")?,
        cidr: r.parsed("cidr", |s| Ipv4Cidr::parse(s).ok())?,
        ip_version: r.int("ip_version")?,
        gateway_ip: r
            .opt_text("gateway_ip")?
            .map(|g| {
                g.parse()
                    .map_err(|_| Error::internal(format!("bad gateway_ip {g}")))
            })
            .transpose()?,
        enable_dhcp: r.flag("enable_dhcp")?,
        dns_nameservers: r.json("dns_nameservers")?,
        allocation_pools: r.json("allocation_pools")?,
        host_routes: r.json("host_routes")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        revision: r.int("revision")?,
    })
}

fn segment_from(r: &AnyRow) -> Result<Segment, Error> {
    let kind = r.text("network_type")?;
    let network_type = NetworkType::parse(&kind)
        .ok_or_else(|| Error::internal(format!("unknown network_type {kind}")))?;
    let physnet = r.text("physical_network")?;
    Ok(Segment {
        network_type,
        physical_network: (!physnet.is_empty()).then_some(physnet),
        // Flat networks record 0 to hold their physical network.
        segmentation_id: r
            .opt_int("segmentation_id")?
            .filter(|_| network_type != NetworkType::Flat),
    })
}

/// What the unique index `networks_segment` sees of a segment.
fn segment_key(seg: &Segment) -> (&'static str, String, Option<i64>) {
    let id = match seg.network_type {
        NetworkType::Flat => Some(0),
        _ => seg.segmentation_id,
    };
    (
        seg.network_type.as_str(),
        seg.physical_network.clone().unwrap_or_default(),
        id,
    )
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

impl Store {
    /// Creates a network on its segment. A VXLAN network without a
    /// segmentation id gets the lowest VNI of `vnis` that no network uses;
    /// the unique index on segments makes two concurrent creates that
    /// picked the same VNI fail one insert, which then tries the next free
    /// one. A segment already taken (an explicit VNI or VLAN, a second
    /// flat network on a physical network) is a conflict.
    pub async fn network_create(&self, net: &Network, vnis: VniRange) -> Result<Network, Error> {
        let auto_vni =
            net.segment.network_type == NetworkType::Vxlan && net.segment.segmentation_id.is_none();
        if !auto_vni {
            return match self.network_insert(net, &net.segment).await? {
                true => self.network_get(net.id, &Scope::All).await,
                false => Err(segment_in_use(&net.segment)),
            };
        }
        for _ in 0..VNI_ATTEMPTS {
            let vni = self.free_vni(vnis).await?.ok_or_else(|| {
                Error::conflict(format!(
                    "Unable to create the network. No tenant network is available for allocation: \
                     every VNI of {}..{} is in use.",
                    vnis.first, vnis.last
                ))
            })?;
            let seg = Segment {
                segmentation_id: Some(vni),
                ..net.segment.clone()
            };
            if self.network_insert(net, &seg).await? {
                return self.network_get(net.id, &Scope::All).await;
            }
        }
        Err(Error::unavailable(
            "Unable to allocate a VNI for the network: too many concurrent creates; try again.",
        ))
    }

    /// Inserts the network on `seg`. `Ok(false)` when the segment is
    /// taken (the unique index refused the row).
    async fn network_insert(&self, net: &Network, seg: &Segment) -> Result<bool, Error> {
        let (kind, physnet, seg_id) = segment_key(seg);
        let r = sqlx::query(&format!(
            "INSERT INTO networks ({NET_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $13, $14)"
        ))
        .bind(net.id.to_string())
        .bind(net.project_id.as_str())
        .bind(&net.name)
        .bind(&net.description)
        .bind(flag(net.admin_state_up))
        .bind(flag(net.shared))
        .bind(flag(net.external))
        .bind(net.mtu)
        .bind(net.created_at.micros())
        .bind(net.updated_at.micros())
        .bind(kind)
        .bind(physnet)
        .bind(seg_id)
        .bind(flag(net.port_security_enabled))
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db_error(e)),
        }
    }

    /// The lowest VNI of the range no network uses, if any.
    async fn free_vni(&self, vnis: VniRange) -> Result<Option<i64>, Error> {
        let used = sqlx::query(
            "SELECT segmentation_id FROM networks WHERE network_type = 'vxlan' \
             AND segmentation_id BETWEEN $1 AND $2 ORDER BY segmentation_id",
        )
        .bind(vnis.first)
        .bind(vnis.last)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut next = vnis.first;
        for r in &used {
            let v = r.int("segmentation_id")?;
            if v > next {
                break;
            }
            next = v + 1;
        }
        Ok((next <= vnis.last).then_some(next))
    }

    /// A network the scope may see: its own, a shared one, or an external
    /// one (Neutron shows `router:external` networks to every project, so
    /// that floating IPs and router gateways can name them).
    pub async fn network_get(&self, id: NetworkId, scope: &Scope) -> Result<Network, Error> {
        let mut nets = self
            .network_query(scope, Some(id), &BTreeMap::new())
            .await?;
        nets.pop()
            .ok_or_else(|| Error::not_found(ResourceKind::Network, id))
    }

    /// Networks the scope may see (as [`Store::network_get`]), filtered by
    /// exact field values
    /// (`name`, `shared`, `admin_state_up`, `project_id`, `router:external`).
    pub async fn network_list(
        &self,
        scope: &Scope,
        filters: &BTreeMap<String, String>,
    ) -> Result<Vec<Network>, Error> {
        self.network_query(scope, None, filters).await
    }

    async fn network_query(
        &self,
        scope: &Scope,
        id: Option<NetworkId>,
        filters: &BTreeMap<String, String>,
    ) -> Result<Vec<Network>, Error> {
        let bool_filter = |k: &str| -> Result<Option<i64>, Error> {
            match filters.get(k).map(|v| v.to_ascii_lowercase()) {
                None => Ok(None),
                Some(v) if v == "true" || v == "1" => Ok(Some(1)),
                Some(v) if v == "false" || v == "0" => Ok(Some(0)),
                Some(v) => Err(Error::invalid(format!(
                    "Invalid input for {k}. Reason: '{v}' is not a boolean."
                ))),
            }
        };
        let rows = sqlx::query(&format!(
            "SELECT {NET_COLS} FROM networks \
             WHERE ($1 IS NULL OR project_id = $1 OR shared = 1 OR external = 1) \
             AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR name = $3) \
             AND ($4 IS NULL OR shared = $4) AND ($5 IS NULL OR admin_state_up = $5) \
             AND ($6 IS NULL OR project_id = $6) AND ($7 IS NULL OR external = $7) \
             ORDER BY created_at, id"
        ))
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .bind(id.map(|i| i.to_string()))
        .bind(filters.get("name").cloned())
        .bind(bool_filter("shared")?)
        .bind(bool_filter("admin_state_up")?)
        .bind(
            filters
                .get("project_id")
                .or_else(|| filters.get("tenant_id"))
                .cloned(),
        )
        .bind(bool_filter("router:external")?)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut nets = rows
            .iter()
            .map(network_from)
            .collect::<Result<Vec<_>, _>>()?;
        if nets.is_empty() {
            return Ok(nets);
        }
        let subnets = sqlx::query(
            "SELECT id, network_id FROM subnets WHERE ($1 IS NULL OR network_id = $1) \
             ORDER BY created_at, id",
        )
        .bind(id.map(|i| i.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut by_net: BTreeMap<String, Vec<SubnetId>> = BTreeMap::new();
        for r in &subnets {
            by_net
                .entry(r.text("network_id")?)
                .or_default()
                .push(r.parsed("id", SubnetId::parse)?);
        }
        for n in &mut nets {
            n.subnet_ids = by_net.remove(&n.id.to_string()).unwrap_or_default();
        }
        Ok(nets)
    }

    /// Writes a network's mutable fields and bumps its revision.
    pub async fn network_update(&self, net: &Network) -> Result<Network, Error> {
        let r = sqlx::query(
            "UPDATE networks SET name = $2, description = $3, admin_state_up = $4, shared = $5, \
             mtu = $6, external = $7, updated_at = $8, revision = revision + 1, \
             port_security_enabled = $9 WHERE id = $1",
        )
        .bind(net.id.to_string())
        .bind(&net.name)
        .bind(&net.description)
        .bind(flag(net.admin_state_up))
        .bind(flag(net.shared))
        .bind(net.mtu)
        .bind(flag(net.external))
        .bind(Timestamp::now().micros())
        .bind(flag(net.port_security_enabled))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Network, net.id));
        }
        self.network_get(net.id, &Scope::All).await
    }

    /// Deletes a network and its subnets, with its DHCP ports (the data
    /// plane's addresses, as Neutron deletes them). Refused while other
    /// ports use it.
    pub async fn network_delete(&self, id: NetworkId) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM ports WHERE network_id = $1 AND device_owner = $2")
            .bind(id.to_string())
            .bind(DEVICE_OWNER_DHCP)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let ports = sqlx::query("SELECT COUNT(*) AS n FROM ports WHERE network_id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?
            .int("n")?;
        if ports > 0 {
            return Err(network_in_use(id));
        }
        // A port created concurrently (after the count) makes the delete
        // fail its foreign key: that is the same conflict.
        let r = sqlx::query("DELETE FROM networks WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    network_in_use(id)
                } else {
                    db_error(e)
                }
            })?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Network, id));
        }
        tx.commit().await.map_err(|e| {
            if is_foreign_key_violation(&e) {
                network_in_use(id)
            } else {
                db_error(e)
            }
        })
    }

    /// Creates a subnet; a CIDR overlapping another subnet of the same
    /// network is refused.
    pub async fn subnet_create(&self, new: &NewSubnet) -> Result<Subnet, Error> {
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        // Bumping the network's revision first also locks its row (on
        // PostgreSQL), so two concurrent creates on one network cannot both
        // pass the overlap check below.
        let r = sqlx::query(
            "UPDATE networks SET revision = revision + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(new.network_id.to_string())
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Network, new.network_id));
        }
        let existing = sqlx::query("SELECT id, cidr FROM subnets WHERE network_id = $1")
            .bind(new.network_id.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        for r in &existing {
            let other = r.parsed("cidr", |s| Ipv4Cidr::parse(s).ok())?;
            if other.overlaps(&new.cidr) {
                return Err(Error::invalid(format!(
                    "Invalid input for operation: Requested subnet with cidr: {} for network: {} \
                     overlaps with another subnet ({other}, {}).",
                    new.cidr,
                    new.network_id,
                    r.text("id")?
                )));
            }
        }
        let id = SubnetId::new();
        sqlx::query(&format!(
            "INSERT INTO subnets ({SUBNET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, 4, $7, $8, $9, \
             $10, $11, $11, 1, $12)"
        ))
        .bind(id.to_string())
        .bind(new.network_id.to_string())
        .bind(new.project_id.as_str())
        .bind(&new.name)
        .bind(&new.description)
        .bind(new.cidr.to_string())
        .bind(new.gateway_ip.map(|g| g.to_string()))
        .bind(flag(new.enable_dhcp))
        .bind(json(&new.dns_nameservers))
        .bind(json(&new.allocation_pools))
        .bind(now.micros())
        .bind(json(&new.host_routes))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                Error::not_found(ResourceKind::Network, new.network_id)
            } else {
                db_error(e)
            }
        })?;
        tx.commit().await.map_err(db_error)?;
        self.subnet_get(id, &Scope::All).await
    }

    /// A subnet the scope may see (its own, or one on a shared or external
    /// network).
    pub async fn subnet_get(&self, id: SubnetId, scope: &Scope) -> Result<Subnet, Error> {
        let mut subnets = self.subnet_query(scope, Some(id), &BTreeMap::new()).await?;
        subnets
            .pop()
            .ok_or_else(|| Error::not_found(ResourceKind::Subnet, id))
    }

    /// Subnets the scope may see, filtered by `name`, `network_id`, `cidr`.
    pub async fn subnet_list(
        &self,
        scope: &Scope,
        filters: &BTreeMap<String, String>,
    ) -> Result<Vec<Subnet>, Error> {
        self.subnet_query(scope, None, filters).await
    }

    async fn subnet_query(
        &self,
        scope: &Scope,
        id: Option<SubnetId>,
        filters: &BTreeMap<String, String>,
    ) -> Result<Vec<Subnet>, Error> {
        sqlx::query(&format!(
            "SELECT {} FROM subnets s WHERE ($1 IS NULL OR s.project_id = $1 OR EXISTS \
               (SELECT 1 FROM networks n WHERE n.id = s.network_id \
               AND (n.shared = 1 OR n.external = 1))) \
             AND ($2 IS NULL OR s.id = $2) AND ($3 IS NULL OR s.name = $3) \
             AND ($4 IS NULL OR s.network_id = $4) AND ($5 IS NULL OR s.cidr = $5) \
             ORDER BY s.created_at, s.id",
            SUBNET_COLS
                .split(", ")
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .bind(id.map(|i| i.to_string()))
        .bind(filters.get("name").cloned())
        .bind(filters.get("network_id").cloned())
        .bind(filters.get("cidr").cloned())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(subnet_from)
        .collect()
    }

    /// Applies changes to a subnet. A new gateway address that a port
    /// holds is refused, and so is any change of the gateway while a
    /// router's interface holds the current one (Neutron's
    /// `GatewayIpInUse`: the router would keep an address that is no
    /// longer the gateway).
    pub async fn subnet_update(&self, id: SubnetId, up: &SubnetUpdate) -> Result<Subnet, Error> {
        let mut tx = self.begin().await?;
        lock_subnet(&mut tx, id).await?;
        let row = sqlx::query(&format!("SELECT {SUBNET_COLS} FROM subnets WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found(ResourceKind::Subnet, id))?;
        let cur = subnet_from(&row)?;
        let gateway = match up.gateway_ip {
            Some(g) => g,
            None => cur.gateway_ip,
        };
        if gateway != cur.gateway_ip
            && let Some(old) = cur.gateway_ip
        {
            ensure_gateway_not_routed(&mut tx, id, old).await?;
        }
        if let Some(gw) = gateway.filter(|g| Some(*g) != cur.gateway_ip) {
            let holder = sqlx::query(
                "SELECT port_id FROM ip_allocations WHERE subnet_id = $1 AND ip_address = $2",
            )
            .bind(id.to_string())
            .bind(gw.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if let Some(r) = holder {
                return Err(Error::conflict(format!(
                    "Gateway ip {gw} conflicts with an allocated address: port {} holds it.",
                    r.text("port_id")?
                )));
            }
        }
        sqlx::query(
            "UPDATE subnets SET name = $2, description = $3, enable_dhcp = $4, \
             dns_nameservers = $5, gateway_ip = $6, updated_at = $7, revision = revision + 1, \
             host_routes = $8 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(up.name.clone().unwrap_or(cur.name))
        .bind(up.description.clone().unwrap_or(cur.description))
        .bind(flag(up.enable_dhcp.unwrap_or(cur.enable_dhcp)))
        .bind(json(
            up.dns_nameservers.as_ref().unwrap_or(&cur.dns_nameservers),
        ))
        .bind(gateway.map(|g| g.to_string()))
        .bind(Timestamp::now().micros())
        .bind(json(up.host_routes.as_ref().unwrap_or(&cur.host_routes)))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.subnet_get(id, &Scope::All).await
    }

    /// Deletes a subnet, first freeing its DHCP ports' addresses (and
    /// deleting those ports when they hold no other), as Neutron does.
    /// Refused while any other port holds one of its addresses; then the
    /// DHCP ports stay too.
    pub async fn subnet_delete(&self, id: SubnetId) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        // Port creation locks the subnets it allocates from (see
        // `ports::lock_subnets`), and so does the creation of a DHCP port;
        // taking the same lock first means the count below sees every
        // allocation, and later ones wait for the delete.
        lock_subnet(&mut tx, id).await?;
        sqlx::query(
            "DELETE FROM ip_allocations WHERE subnet_id = $1 \
             AND port_id IN (SELECT id FROM ports WHERE device_owner = $2)",
        )
        .bind(id.to_string())
        .bind(DEVICE_OWNER_DHCP)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "DELETE FROM ports WHERE device_owner = $2 \
             AND network_id = (SELECT network_id FROM subnets WHERE id = $1) \
             AND NOT EXISTS (SELECT 1 FROM ip_allocations a WHERE a.port_id = ports.id)",
        )
        .bind(id.to_string())
        .bind(DEVICE_OWNER_DHCP)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let used = sqlx::query("SELECT COUNT(*) AS n FROM ip_allocations WHERE subnet_id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?
            .int("n")?;
        if used > 0 {
            return Err(Error::conflict(format!(
                "Unable to complete operation on subnet {id}: {used} IP address(es) of it are \
                 still allocated to ports."
            )));
        }
        let r = sqlx::query("DELETE FROM subnets WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Subnet, id));
        }
        tx.commit().await.map_err(db_error)
    }
}

/// The 409 for deleting a network that still has ports (Neutron's
/// `NetworkInUse`).
fn segment_in_use(seg: &Segment) -> Error {
    match (seg.network_type, &seg.physical_network, seg.segmentation_id) {
        (NetworkType::Flat, Some(p), _) => Error::conflict(format!(
            "Unable to create the flat network. Physical network {p} is in use."
        )),
        (kind, p, id) => Error::conflict(format!(
            "Unable to create the network. The {} segment {}{} is in use.",
            kind.as_str(),
            p.as_deref().map(|p| format!("{p}:")).unwrap_or_default(),
            id.map(|i| i.to_string()).unwrap_or_default()
        )),
    }
}

/// The 409 for changing the gateway of a subnet whose current gateway
/// address a router interface holds (Neutron's `GatewayIpInUse`).
async fn ensure_gateway_not_routed(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subnet: SubnetId,
    gateway: Ipv4Addr,
) -> Result<(), Error> {
    let holder = sqlx::query(
        "SELECT a.port_id FROM ip_allocations a JOIN ports p ON p.id = a.port_id \
         WHERE a.subnet_id = $1 AND a.ip_address = $2 AND p.device_owner = $3",
    )
    .bind(subnet.to_string())
    .bind(gateway.to_string())
    .bind(DEVICE_OWNER_ROUTER_INTERFACE)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    match holder {
        Some(r) => Err(Error::conflict(format!(
            "Current gateway ip {gateway} already in use by port {}. Unable to update: a \
             router's interface holds it; remove the interface first.",
            r.text("port_id")?
        ))),
        None => Ok(()),
    }
}

fn network_in_use(id: NetworkId) -> Error {
    Error::conflict(format!(
        "Unable to complete operation on network {id}. There are one or more ports still in use \
         on the network."
    ))
}

/// Locks a subnet's row for the rest of the transaction (a no-op update:
/// PostgreSQL takes the row lock, SQLite already holds the write lock).
/// Missing subnets are a 404.
pub(crate) async fn lock_subnet(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: SubnetId,
) -> Result<(), Error> {
    let r = sqlx::query("UPDATE subnets SET revision = revision WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 0 {
        return Err(Error::not_found(ResourceKind::Subnet, id));
    }
    Ok(())
}
