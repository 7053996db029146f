//! The JSON shapes of Neutron resources.
//!
//! Attributes we do not model (tags, availability zones, address scopes)
//! are rendered with the value Neutron shows when they are unused, so
//! clients that read them find the key.

use cloud_model::network::{
    FloatingIp, Ipv4Cidr, Network, Port, Router, RouterInterface, SecurityGroup, SecurityGroupRule,
    Subnet,
};
use serde_json::{Value, json};

/// The `<net>` document. The provider attributes (the segment) are shown
/// to admins only (`with_provider`), as Neutron's default policy does:
/// other callers do not get the keys at all.
pub fn network(n: &Network, with_provider: bool) -> Value {
    let mut v = json!({
        "id": n.id.to_string(),
        "name": n.name,
        "status": "ACTIVE",
        "admin_state_up": n.admin_state_up,
        "subnets": n.subnet_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "shared": n.shared,
        "project_id": n.project_id.as_str(),
        "tenant_id": n.project_id.as_str(),
        "mtu": n.mtu,
        "router:external": n.external,
        "port_security_enabled": n.port_security_enabled,
        "availability_zones": [],
        "availability_zone_hints": [],
        "description": n.description,
        "created_at": n.created_at.iso_seconds(),
        "updated_at": n.updated_at.iso_seconds(),
        "revision_number": n.revision,
        "tags": [],
    });
    if with_provider && let Some(obj) = v.as_object_mut() {
        let seg = &n.segment;
        obj.insert(
            "provider:network_type".into(),
            json!(seg.network_type.as_str()),
        );
        obj.insert(
            "provider:physical_network".into(),
            json!(seg.physical_network),
        );
        obj.insert(
            "provider:segmentation_id".into(),
            json!(seg.segmentation_id),
        );
    }
    v
}

/// The `<subnet>` document.
pub fn subnet(s: &Subnet) -> Value {
    json!({
        "id": s.id.to_string(),
        "name": s.name,
        "network_id": s.network_id.to_string(),
        "cidr": s.cidr.to_string(),
        "ip_version": s.ip_version,
        "gateway_ip": s.gateway_ip.map(|g| g.to_string()),
        "allocation_pools": s.allocation_pools.iter()
            .map(|p| json!({"start": p.start.to_string(), "end": p.end.to_string()}))
            .collect::<Vec<_>>(),
        "enable_dhcp": s.enable_dhcp,
        "dns_nameservers": s.dns_nameservers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "host_routes": s.host_routes.iter()
            .map(|r| json!({"destination": r.destination.to_string(), "nexthop": r.nexthop.to_string()}))
            .collect::<Vec<_>>(),
        "project_id": s.project_id.as_str(),
        "tenant_id": s.project_id.as_str(),
        "ipv6_ra_mode": null,
        "ipv6_address_mode": null,
        "subnetpool_id": null,
        "description": s.description,
        "service_types": [],
        "tags": [],
        "created_at": s.created_at.iso_seconds(),
        "updated_at": s.updated_at.iso_seconds(),
        "revision_number": s.revision,
    })
}

/// The `<port>` document.
pub fn port(p: &Port) -> Value {
    json!({
        "id": p.id.to_string(),
        "name": p.name,
        "network_id": p.network_id.to_string(),
        "project_id": p.project_id.as_str(),
        "tenant_id": p.project_id.as_str(),
        "mac_address": p.mac_address,
        "fixed_ips": p.fixed_ips.iter()
            .map(|f| json!({"subnet_id": f.subnet_id.to_string(), "ip_address": f.ip_address.to_string()}))
            .collect::<Vec<_>>(),
        "device_id": p.device_id.map(|d| d.to_string()).unwrap_or_default(),
        "device_owner": p.device_owner,
        "status": p.status,
        "admin_state_up": p.admin_state_up,
        "security_groups": p.security_group_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "binding:host_id": p.binding_host.clone().unwrap_or_default(),
        // Our hosts plug ports into a Linux bridge per network.
        "binding:vif_type": if p.binding_host.is_some() { "bridge" } else { "unbound" },
        "description": p.description,
        "created_at": p.created_at.iso_seconds(),
        "updated_at": p.updated_at.iso_seconds(),
        "revision_number": p.revision,
        "tags": [],
        "port_security_enabled": p.port_security_enabled,
        "allowed_address_pairs": p.allowed_address_pairs.iter()
            .map(|a| json!({"ip_address": address_pair_ip(&a.ip_address), "mac_address": a.mac_address}))
            .collect::<Vec<_>>(),
        "extra_dhcp_opts": [],
    })
}

/// An allowed address pair's address as Neutron echoes it: a single
/// address without `/32`, a range as a CIDR.
fn address_pair_ip(cidr: &Ipv4Cidr) -> String {
    if cidr.prefix() == 32 {
        cidr.network().to_string()
    } else {
        cidr.to_string()
    }
}

/// The `<security_group>` document, with its rules.
pub fn security_group(sg: &SecurityGroup) -> Value {
    json!({
        "id": sg.id.to_string(),
        "name": sg.name,
        "description": sg.description,
        "project_id": sg.project_id.as_str(),
        "tenant_id": sg.project_id.as_str(),
        "security_group_rules": sg.rules.iter().map(|r| rule(r, sg.is_default)).collect::<Vec<_>>(),
        "stateful": true,
        "created_at": sg.created_at.iso_seconds(),
        "updated_at": sg.updated_at.iso_seconds(),
        "revision_number": sg.revision,
        "tags": [],
    })
}

/// The `<security_group_rule>` document. `in_default` says whether the
/// rule belongs to its project's default group.
pub fn rule(r: &SecurityGroupRule, in_default: bool) -> Value {
    json!({
        "id": r.id.to_string(),
        "security_group_id": r.security_group_id.to_string(),
        "project_id": r.project_id.as_str(),
        "tenant_id": r.project_id.as_str(),
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id.map(|g| g.to_string()),
        "remote_address_group_id": null,
        "normalized_cidr": r.remote_ip_prefix,
        "belongs_to_default_sg": in_default,
        "description": r.description,
        "created_at": r.created_at.iso_seconds(),
        "updated_at": r.created_at.iso_seconds(),
        "revision_number": 0,
        "tags": [],
    })
}

/// The `<router>` document: `external_gateway_info` is `null` without a
/// gateway. Where it runs is not shown (Neutron shows it to admins only
/// through its L3 agent scheduler extension, which we do not offer).
pub fn router(r: &Router) -> Value {
    let gateway = r.gateway.as_ref().map(|g| {
        json!({
            "network_id": g.network_id.to_string(),
            "enable_snat": g.enable_snat,
            "external_fixed_ips": g.fixed_ips.iter()
                .map(|f| json!({"subnet_id": f.subnet_id.to_string(), "ip_address": f.ip_address.to_string()}))
                .collect::<Vec<_>>(),
        })
    });
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "description": r.description,
        "status": r.status,
        "admin_state_up": r.admin_state_up,
        "project_id": r.project_id.as_str(),
        "tenant_id": r.project_id.as_str(),
        "external_gateway_info": gateway,
        "routes": r.routes.iter()
            .map(|x| json!({"destination": x.destination.to_string(), "nexthop": x.nexthop.to_string()}))
            .collect::<Vec<_>>(),
        "availability_zone_hints": [],
        "availability_zones": [],
        "created_at": r.created_at.iso_seconds(),
        "updated_at": r.updated_at.iso_seconds(),
        "revision_number": r.revision,
        "tags": [],
    })
}

/// The answer of `add_router_interface` / `remove_router_interface`.
pub fn router_interface(r: &Router, i: &RouterInterface) -> Value {
    json!({
        "id": r.id.to_string(),
        "project_id": r.project_id.as_str(),
        "tenant_id": r.project_id.as_str(),
        "port_id": i.port_id.to_string(),
        "network_id": i.network_id.to_string(),
        "subnet_id": i.subnet_id.to_string(),
        "subnet_ids": [i.subnet_id.to_string()],
    })
}

/// The `<floatingip>` document.
pub fn floating_ip(f: &FloatingIp) -> Value {
    json!({
        "id": f.id.to_string(),
        "project_id": f.project_id.as_str(),
        "tenant_id": f.project_id.as_str(),
        "floating_network_id": f.floating_network_id.to_string(),
        "floating_ip_address": f.floating_ip_address.to_string(),
        "port_id": f.port_id.map(|p| p.to_string()),
        "fixed_ip_address": f.fixed_ip_address.map(|a| a.to_string()),
        "router_id": f.router_id.map(|r| r.to_string()),
        "status": f.status,
        "description": f.description,
        "created_at": f.created_at.iso_seconds(),
        "updated_at": f.updated_at.iso_seconds(),
        "revision_number": f.revision,
        "tags": [],
    })
}
