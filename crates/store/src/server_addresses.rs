//! The addresses of many servers at once (for server listings): three
//! queries however many servers (ports, fixed and floating addresses),
//! instead of some per port.

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::{Error, InstanceId, NetworkId};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// One NIC of a server as listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerNic {
    /// Network of the port.
    pub network_id: NetworkId,
    /// Network name (listings group addresses by it).
    pub network_name: String,
    /// MAC address.
    pub mac: String,
    /// Fixed addresses.
    pub ips: Vec<Ipv4Addr>,
    /// Floating addresses associated with the port's fixed addresses.
    pub floating_ips: Vec<Ipv4Addr>,
    /// When the port was created (NIC order).
    pub created_at: i64,
}

impl Store {
    /// The NICs of each server in `ids`, in creation order.
    pub async fn server_nics(
        &self,
        ids: &[InstanceId],
    ) -> Result<HashMap<InstanceId, Vec<ServerNic>>, Error> {
        let mut out: HashMap<InstanceId, Vec<ServerNic>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        // Ids are UUIDs we generated; they are safe to inline, and a list
        // of bind parameters would hit the backends' parameter limits.
        let list = ids
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",");
        let ports = sqlx::query(&format!(
            "SELECT p.id, p.device_id, p.network_id, p.mac_address, p.created_at, n.name \
             FROM ports p JOIN networks n ON n.id = p.network_id \
             WHERE p.device_id IN ({list}) ORDER BY p.created_at, p.id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        if ports.is_empty() {
            return Ok(out);
        }
        let port_list = ports
            .iter()
            .map(|r| r.text("id").map(|id| format!("'{id}'")))
            .collect::<Result<Vec<_>, _>>()?
            .join(",");
        let mut ips = self
            .addresses_of_ports("ip_allocations", "ip_address", &port_list)
            .await?;
        let mut floating = self
            .addresses_of_ports("floatingips", "floating_ip_address", &port_list)
            .await?;
        for r in &ports {
            let Some(device) = r.opt_text("device_id")?.and_then(|d| InstanceId::parse(&d)) else {
                continue;
            };
            out.entry(device).or_default().push(ServerNic {
                network_id: r.parsed("network_id", NetworkId::parse)?,
                network_name: r.text("name")?,
                mac: r.text("mac_address")?,
                ips: ips.remove(&r.text("id")?).unwrap_or_default(),
                floating_ips: floating.remove(&r.text("id")?).unwrap_or_default(),
                created_at: r.int("created_at")?,
            });
        }
        Ok(out)
    }

    /// The addresses in `column` of `table`'s rows for each of `ports` (an
    /// SQL list of quoted port ids, which the caller generated), by port,
    /// lowest first.
    async fn addresses_of_ports(
        &self,
        table: &str,
        column: &str,
        port_list: &str,
    ) -> Result<HashMap<String, Vec<Ipv4Addr>>, Error> {
        let mut out: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for r in sqlx::query(&format!(
            "SELECT port_id, {column} FROM {table} WHERE port_id IN ({port_list}) \
             ORDER BY {column}"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        {
            out.entry(r.text("port_id")?)
                .or_default()
                .push(r.parsed(column, |s| s.parse().ok())?);
        }
        Ok(out)
    }

    /// The availability zones that have compute hosts.
    pub async fn host_zones(&self) -> Result<Vec<String>, Error> {
        sqlx::query(
            "SELECT DISTINCT availability_zone FROM compute_nodes ORDER BY availability_zone",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.text("availability_zone"))
        .collect()
    }

    /// A service record by host and binary.
    pub async fn service_get(
        &self,
        host: &str,
        binary: &str,
    ) -> Result<Option<crate::ServiceRecord>, Error> {
        Ok(self
            .service_list_filtered(Some(host), Some(binary))
            .await?
            .into_iter()
            .next())
    }
}
