//! What the conductor reads to compute hosts' data planes: the ports of a
//! set of networks with their hosts and addresses, the hosts' underlay
//! addresses, security groups with their rules and member addresses, and
//! which hosts a change concerns. Each is one query over many ids, so the
//! cost of a host's state does not grow with the number of its ports'
//! networks or groups in round trips.

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::network::{AllowedAddressPair, Ipv4Cidr, SecurityGroupRule};
use cloud_model::{Error, NetworkId, SecurityGroupId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A port bound to some host, as other hosts of its network see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundPort {
    /// Its network.
    pub network_id: NetworkId,
    /// Its MAC.
    pub mac: String,
    /// Its fixed addresses.
    pub ips: Vec<Ipv4Addr>,
    /// The host it is bound to.
    pub host: String,
}

/// `$first, $first+1, ...`: `n` numbered placeholders for an `IN` list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Every port bound to a host on one of `networks`, with its addresses.
    pub async fn bound_ports_on_networks(
        &self,
        networks: &[NetworkId],
    ) -> Result<Vec<BoundPort>, Error> {
        if networks.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT p.id, p.network_id, p.mac_address, p.binding_host, a.ip_address \
             FROM ports p LEFT JOIN ip_allocations a ON a.port_id = p.id \
             WHERE p.binding_host IS NOT NULL AND p.network_id IN ({}) \
             ORDER BY p.id, a.ip_address",
            placeholders(1, networks.len())
        );
        let mut q = sqlx::query(&sql);
        for n in networks {
            q = q.bind(n.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_error)?;
        let mut by_port: BTreeMap<String, BoundPort> = BTreeMap::new();
        for r in &rows {
            let port = by_port.entry(r.text("id")?).or_insert(BoundPort {
                network_id: r.parsed("network_id", NetworkId::parse)?,
                mac: r.text("mac_address")?,
                ips: Vec::new(),
                host: r.text("binding_host")?,
            });
            if let Some(ip) = r.opt_text("ip_address")? {
                port.ips.push(
                    ip.parse()
                        .map_err(|_| Error::internal(format!("bad address {ip}")))?,
                );
            }
        }
        Ok(by_port.into_values().collect())
    }

    /// The networks with a port bound to `host`.
    pub async fn networks_bound_on_host(&self, host: &str) -> Result<Vec<NetworkId>, Error> {
        sqlx::query("SELECT DISTINCT network_id FROM ports WHERE binding_host = $1")
            .bind(host)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.parsed("network_id", NetworkId::parse))
            .collect()
    }

    /// The underlay addresses the hosts reported (hosts without one are
    /// left out: they carry no overlay).
    pub async fn host_underlay_ips(
        &self,
        hosts: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Ipv4Addr>, Error> {
        if hosts.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT host, host_ip FROM compute_nodes WHERE host_ip IS NOT NULL AND host IN ({})",
            placeholders(1, hosts.len())
        );
        let mut q = sqlx::query(&sql);
        for h in hosts {
            q = q.bind(h.clone());
        }
        let mut out = BTreeMap::new();
        for r in q.fetch_all(&self.pool).await.map_err(db_error)? {
            if let Ok(ip) = r.text("host_ip")?.parse() {
                out.insert(r.text("host")?, ip);
            }
        }
        Ok(out)
    }

    /// The rules of `groups`, by group.
    pub async fn rules_of_groups(
        &self,
        groups: &BTreeSet<SecurityGroupId>,
    ) -> Result<BTreeMap<SecurityGroupId, Vec<SecurityGroupRule>>, Error> {
        let mut out: BTreeMap<SecurityGroupId, Vec<SecurityGroupRule>> =
            groups.iter().map(|g| (*g, Vec::new())).collect();
        if groups.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT {} FROM security_group_rules WHERE security_group_id IN ({}) \
             ORDER BY created_at, id",
            crate::security_groups::RULE_COLS,
            placeholders(1, groups.len())
        );
        let mut q = sqlx::query(&sql);
        for g in groups {
            q = q.bind(g.to_string());
        }
        for r in q.fetch_all(&self.pool).await.map_err(db_error)? {
            let rule = crate::security_groups::rule_from(&r)?;
            out.entry(rule.security_group_id).or_default().push(rule);
        }
        Ok(out)
    }

    /// The addresses of every port in `groups` (fixed IPs as /32s, and
    /// allowed address pairs), by group: what a rule naming one of them
    /// as its remote group matches.
    pub async fn members_of_groups(
        &self,
        groups: &BTreeSet<SecurityGroupId>,
    ) -> Result<BTreeMap<SecurityGroupId, BTreeSet<Ipv4Cidr>>, Error> {
        let mut out: BTreeMap<SecurityGroupId, BTreeSet<Ipv4Cidr>> =
            groups.iter().map(|g| (*g, BTreeSet::new())).collect();
        if groups.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT g.security_group_id, a.ip_address, p.allowed_address_pairs \
             FROM port_security_groups g JOIN ports p ON p.id = g.port_id \
             LEFT JOIN ip_allocations a ON a.port_id = p.id \
             WHERE g.security_group_id IN ({})",
            placeholders(1, groups.len())
        );
        let mut q = sqlx::query(&sql);
        for g in groups {
            q = q.bind(g.to_string());
        }
        for r in q.fetch_all(&self.pool).await.map_err(db_error)? {
            let group = r.parsed("security_group_id", SecurityGroupId::parse)?;
            let set = out.entry(group).or_default();
            if let Some(ip) = r.opt_text("ip_address")?
                && let Ok(cidr) = Ipv4Cidr::parse(&format!("{ip}/32"))
            {
                set.insert(cidr);
            }
            let pairs: Vec<AllowedAddressPair> = r.json("allowed_address_pairs")?;
            set.extend(pairs.into_iter().map(|p| p.ip_address));
        }
        Ok(out)
    }

    /// The hosts a change concerns: those with ports bound on `networks`,
    /// with ports in `groups`, or with ports in a group that has a rule
    /// naming one of `groups` as its remote.
    pub async fn hosts_concerned(
        &self,
        networks: &[NetworkId],
        groups: &[SecurityGroupId],
    ) -> Result<BTreeSet<String>, Error> {
        let mut hosts = BTreeSet::new();
        if !networks.is_empty() {
            let sql = format!(
                "SELECT DISTINCT binding_host FROM ports \
                 WHERE binding_host IS NOT NULL AND network_id IN ({})",
                placeholders(1, networks.len())
            );
            let mut q = sqlx::query(&sql);
            for n in networks {
                q = q.bind(n.to_string());
            }
            for r in q.fetch_all(&self.pool).await.map_err(db_error)? {
                hosts.insert(r.text("binding_host")?);
            }
        }
        if !groups.is_empty() {
            let list = placeholders(1, groups.len());
            let sql = format!(
                "SELECT DISTINCT p.binding_host FROM ports p \
                 JOIN port_security_groups g ON g.port_id = p.id \
                 WHERE p.binding_host IS NOT NULL AND (g.security_group_id IN ({list}) \
                   OR g.security_group_id IN (SELECT r.security_group_id \
                       FROM security_group_rules r WHERE r.remote_group_id IN ({list})))"
            );
            let mut q = sqlx::query(&sql);
            for g in groups {
                q = q.bind(g.to_string());
            }
            for r in q.fetch_all(&self.pool).await.map_err(db_error)? {
                hosts.insert(r.text("binding_host")?);
            }
        }
        Ok(hosts)
    }
}
