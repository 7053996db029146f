//! A server's ports: created (or bound, when the user gave them) during
//! the build, unbound or deleted when the build fails or the server goes.

use crate::Conductor;
use crate::build::BuildData;
use cloud_model::instance::{Instance, RequestedNetwork};
use cloud_model::{Error, NetworkId, PortId, SecurityGroupId};
use cloud_store::{NewPort, PortFilter, PortOrigin, RequestedIp, Scope};
use std::collections::BTreeSet;

impl Conductor {
    /// The ids of the server's security groups (by name, in its project).
    async fn security_group_ids(&self, inst: &Instance) -> Result<Vec<SecurityGroupId>, Error> {
        self.store
            .security_group_ensure_default(&inst.project_id)
            .await?;
        let scope = Scope::Project(inst.project_id.clone());
        let mut ids = Vec::new();
        for name in &inst.security_groups {
            let found = self.store.security_group_list(&scope, Some(name)).await?;
            match found.first() {
                Some(sg) => ids.push(sg.id),
                None => {
                    return Err(Error::invalid(format!(
                        "Security group '{name}' does not exist in project {}.",
                        inst.project_id
                    )));
                }
            }
        }
        Ok(ids)
    }

    /// Makes sure every requested network has a port bound to `host`.
    /// Idempotent: ports already created for the server are reused.
    pub(crate) async fn ensure_ports(
        &self,
        inst: &Instance,
        host: &str,
        data: &mut BuildData,
    ) -> Result<(), Error> {
        let existing = self
            .store
            .port_list(&PortFilter {
                device_id: Some(inst.id.to_string()),
                ..PortFilter::all(Scope::All)
            })
            .await?;
        let mut used: Vec<PortId> = Vec::new();
        let mut ports = Vec::new();
        let mut created = data.created_ports.clone();
        let mut touched_networks = BTreeSet::new();
        let mut touched_groups = BTreeSet::new();
        let owner = format!("compute:{}", inst.availability_zone);
        for req in &inst.requested_networks {
            let port = match req {
                RequestedNetwork::Network {
                    network_id,
                    fixed_ip,
                } => {
                    let reuse = existing
                        .iter()
                        .find(|p| p.network_id == *network_id && !used.contains(&p.id));
                    match reuse {
                        Some(p) => p.clone(),
                        None => {
                            // A network without port security makes
                            // unfiltered ports, with no groups (Neutron).
                            let net = self.store.network_get(*network_id, &Scope::All).await?;
                            let sgs = if net.port_security_enabled {
                                self.security_group_ids(inst).await?
                            } else {
                                Vec::new()
                            };
                            let fixed_ips = match fixed_ip {
                                Some(ip) => {
                                    let subnet = self
                                        .store
                                        .subnet_list(
                                            &Scope::All,
                                            &[("network_id".to_owned(), network_id.to_string())]
                                                .into_iter()
                                                .collect(),
                                        )
                                        .await?
                                        .into_iter()
                                        .find(|s| s.cidr.contains(*ip))
                                        .ok_or_else(|| {
                                            Error::invalid(format!(
                                                "Fixed IP {ip} is not in any subnet of network \
                                                 {network_id}."
                                            ))
                                        })?;
                                    vec![RequestedIp::Exact(subnet.id, *ip)]
                                }
                                None => Vec::new(),
                            };
                            let p = self
                                .store
                                .port_create(&NewPort {
                                    network_id: *network_id,
                                    project_id: inst.project_id.clone(),
                                    name: String::new(),
                                    description: String::new(),
                                    fixed_ips,
                                    mac_address: None,
                                    device_id: Some(inst.id),
                                    device_owner: owner.clone(),
                                    admin_state_up: true,
                                    security_groups: sgs,
                                    port_security_enabled: net.port_security_enabled,
                                    allowed_address_pairs: Vec::new(),
                                })
                                .await?;
                            created.push(p.id);
                            p
                        }
                    }
                }
                RequestedNetwork::Port { port_id } => {
                    let p = self.store.port_get(*port_id, &Scope::All).await?;
                    if p.device_id.is_some_and(|d| d != inst.id) {
                        return Err(Error::conflict(format!(
                            "Port {port_id} is in use by another server."
                        )));
                    }
                    p
                }
            };
            used.push(port.id);
            let mut bound = port.clone();
            bound.device_id = Some(inst.id);
            if bound.device_owner.is_empty() {
                bound.device_owner = owner.clone();
            }
            bound.binding_host = Some(host.to_owned());
            if bound != port {
                self.store.port_update(&bound).await?;
            }
            ports.push(port.id);
            touched_networks.insert(port.network_id);
            touched_groups.extend(port.security_group_ids.iter().copied());
        }
        // Ports attached after the build (os-interface) follow the server
        // to its host too, after the requested ones.
        for port in existing.iter().filter(|p| !used.contains(&p.id)) {
            if port.binding_host.as_deref() != Some(host) {
                let mut bound = port.clone();
                bound.binding_host = Some(host.to_owned());
                self.store.port_update(&bound).await?;
            }
            ports.push(port.id);
            touched_networks.insert(port.network_id);
            touched_groups.extend(port.security_group_ids.iter().copied());
        }
        data.ports = ports;
        data.created_ports = created;
        // The host pulls its state when it spawns; the other hosts of these
        // networks and groups learn of the new port now.
        self.network_changed(
            &touched_networks.into_iter().collect::<Vec<_>>(),
            &touched_groups.into_iter().collect::<Vec<_>>(),
            &[],
            "req-ports-bound",
        )
        .await
    }

    /// Deletes the ports we created for the server and unbinds the ones the
    /// user gave.
    pub(crate) async fn release_ports(
        &self,
        inst: &Instance,
        data: &BuildData,
    ) -> Result<(), Error> {
        let user_ports: Vec<PortId> = inst
            .requested_networks
            .iter()
            .filter_map(|r| match r {
                RequestedNetwork::Port { port_id } => Some(*port_id),
                RequestedNetwork::Network { .. } => None,
            })
            .collect();
        let attached = self
            .store
            .port_list(&PortFilter {
                device_id: Some(inst.id.to_string()),
                ..PortFilter::all(Scope::All)
            })
            .await?;
        let mut user_ports = user_ports;
        for p in &attached {
            // Attached after the build by its user (os-interface): kept.
            if self.store.port_attachment_origin(inst.id, p.id).await? == Some(PortOrigin::User) {
                user_ports.push(p.id);
            }
        }
        let networks: BTreeSet<NetworkId> = attached.iter().map(|p| p.network_id).collect();
        let groups: BTreeSet<SecurityGroupId> = attached
            .iter()
            .flat_map(|p| p.security_group_ids.iter().copied())
            .collect();
        let hosts: BTreeSet<String> = attached
            .iter()
            .filter_map(|p| p.binding_host.clone())
            .collect();
        let mut ids: Vec<PortId> = attached.iter().map(|p| p.id).collect();
        for p in &data.created_ports {
            if !ids.contains(p) {
                ids.push(*p);
            }
        }
        self.store.floating_ips_disassociate_ports(&ids).await?;
        for id in ids {
            if user_ports.contains(&id) {
                if let Ok(mut p) = self.store.port_get(id, &Scope::All).await {
                    p.device_id = None;
                    p.device_owner = String::new();
                    p.binding_host = None;
                    p.status = "DOWN".to_owned();
                    self.store.port_update(&p).await?;
                }
            } else {
                match self.store.port_delete(id).await {
                    Ok(()) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // The host the ports left tears down what it no longer needs; the
        // others drop their entries for them.
        self.network_changed(
            &networks.into_iter().collect::<Vec<_>>(),
            &groups.into_iter().collect::<Vec<_>>(),
            &hosts.into_iter().collect::<Vec<_>>(),
            "req-ports-released",
        )
        .await
    }

    /// Sets the status of ports (ACTIVE once the VM runs).
    pub(crate) async fn ports_set_status(
        &self,
        ports: &[PortId],
        status: &str,
    ) -> Result<(), Error> {
        for id in ports {
            if let Ok(mut p) = self.store.port_get(*id, &Scope::All).await
                && p.status != status
            {
                p.status = status.to_owned();
                self.store.port_update(&p).await?;
            }
        }
        Ok(())
    }
}
