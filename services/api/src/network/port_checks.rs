//! Validation of port attributes: the fixed IP requests, the MAC address,
//! the device id and owner, the allowed address pairs and how port
//! security goes with security groups and address pairs; and who may do
//! what with a port (the network's owner chooses addresses, external
//! networks take only their owner's ports, routers' and floating IPs'
//! ports belong to their APIs). Each error names the attribute it is
//! about.

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::network::subnet_checks::parse_ipv4;
use crate::network::{body_id, ensure_owner};
use crate::state::AppState;
use cloud_model::network::{
    AllowedAddressPair, DEVICE_OWNER_FLOATING_IP, DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE, Ipv4Cidr, Network, Port, Subnet,
};
use cloud_model::{Error, InstanceId, SecurityGroupId, SubnetId};
use cloud_store::{RequestedIp, Scope};
use serde::Deserialize;
use std::net::Ipv4Addr;

/// Most allowed address pairs a port may have (Neutron's
/// `max_allowed_address_pair`).
pub const MAX_ADDRESS_PAIRS: usize = 10;

/// One entry of a port's `allowed_address_pairs` as a request gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPairRequest {
    /// An IPv4 address or CIDR.
    pub ip_address: Option<String>,
    /// The MAC it may use; the port's own when absent.
    pub mac_address: Option<String>,
}

/// One entry of a port's `fixed_ips` as a request gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIpRequest {
    /// Allocate from this subnet.
    pub subnet_id: Option<String>,
    /// This exact address.
    pub ip_address: Option<String>,
}

/// Resolves the `fixed_ips` of a new port on `network` into store
/// requests: `{subnet_id}` is any free address of that subnet,
/// `{ip_address}` that address on whichever subnet of the network
/// contains it, both together that address on that subnet.
pub async fn fixed_ips(
    state: &AppState,
    network: &Network,
    list: &[FixedIpRequest],
) -> ApiResult<Vec<RequestedIp>> {
    if list.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input for fixed_ips: ports without addresses are not supported; omit \
             fixed_ips to get an address from the network's first subnet.",
        ));
    }
    let subnets = state
        .store()
        .subnet_list(
            &Scope::All,
            &[("network_id".to_owned(), network.id.to_string())]
                .into_iter()
                .collect(),
        )
        .await?;
    let mut out = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let subnet = f
            .subnet_id
            .as_deref()
            .map(|raw| body_id(&format!("fixed_ips[{i}].subnet_id"), raw, SubnetId::parse))
            .transpose()?;
        let ip = f
            .ip_address
            .as_deref()
            .map(|raw| parse_ipv4(&format!("fixed_ips[{i}].ip_address"), raw))
            .transpose()?;
        out.push(match (subnet, ip) {
            (Some(s), Some(ip)) => RequestedIp::Exact(s, ip),
            (Some(s), None) => RequestedIp::AnyOf(s),
            (None, Some(ip)) => {
                let s = subnets
                    .iter()
                    .find(|s| s.cidr.contains(ip))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid input for fixed_ips[{i}].ip_address: {ip} is not a valid IP \
                         for any subnet on network {}.",
                            network.id
                        ))
                    })?;
                RequestedIp::Exact(s.id, ip)
            }
            (None, None) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for fixed_ips[{i}]: give a subnet_id, an ip_address or both."
                )));
            }
        });
    }
    Ok(out)
}

/// Normalizes a MAC address (`FA:16:3E:..` -> `fa:16:3e:..`); refuses
/// malformed, all-zero and multicast addresses, which no NIC may use.
pub fn mac_address(raw: &str) -> ApiResult<String> {
    mac_for("mac_address", raw)
}

/// [`mac_address`] for the attribute `field`.
fn mac_for(field: &str, raw: &str) -> ApiResult<String> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "Invalid input for {field}. Reason: '{raw}' is not a valid MAC address: it {why}."
        ))
    };
    let octets: Vec<&str> = raw.split([':', '-']).collect();
    if octets.len() != 6
        || octets
            .iter()
            .any(|o| o.len() != 2 || !o.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(bad("is not six hex octets"));
    }
    let bytes: Vec<u8> = octets
        .iter()
        .filter_map(|o| u8::from_str_radix(o, 16).ok())
        .collect();
    if bytes.iter().all(|b| *b == 0) {
        return Err(bad("is the all-zero address"));
    }
    if bytes[0] & 1 == 1 {
        return Err(bad("is a multicast address"));
    }
    Ok(octets.join(":").to_ascii_lowercase())
}

/// A MAC for a new port, drawn as the store draws them (`fa:16:3e:..`),
/// for when the API must know it before the port exists.
pub use cloud_store::random_mac;

/// Parses an allowed address pair's `ip_address`: an IPv4 address (a /32)
/// or a CIDR with its host bits zero.
fn pair_ip(field: &str, raw: &str) -> ApiResult<Ipv4Cidr> {
    let bad =
        |why: String| ApiError::bad_request(format!("Invalid input for {field}. Reason: {why}."));
    if raw.contains(':') {
        return Err(bad(format!(
            "'{raw}' is an IPv6 address; only IPv4 is supported"
        )));
    }
    if raw.contains('/') {
        return Ipv4Cidr::parse(raw).map_err(bad);
    }
    let ip = parse_ipv4(field, raw)?;
    Ipv4Cidr::parse(&format!("{ip}/32")).map_err(bad)
}

/// Whether the port's address pairs need the port's MAC (some entry names
/// none).
pub fn pairs_need_port_mac(list: &[AddressPairRequest]) -> bool {
    list.iter().any(|p| p.mac_address.is_none())
}

/// Resolves a port's `allowed_address_pairs`: at most
/// [`MAX_ADDRESS_PAIRS`], each with an IPv4 address or CIDR and a valid
/// MAC (`port_mac` when it names none), no pair twice.
pub fn address_pairs(
    list: &[AddressPairRequest],
    port_mac: &str,
) -> ApiResult<Vec<AllowedAddressPair>> {
    if list.len() > MAX_ADDRESS_PAIRS {
        return Err(ApiError::bad_request(format!(
            "Invalid input for allowed_address_pairs. Reason: The number of allowed address \
             pairs ({}) exceeds the maximum {MAX_ADDRESS_PAIRS}.",
            list.len()
        )));
    }
    let mut out: Vec<AllowedAddressPair> = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let field = format!("allowed_address_pairs[{i}]");
        let raw_ip = p.ip_address.as_deref().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for {field}. Reason: an allowed address pair must contain \
                 ip_address."
            ))
        })?;
        let ip_address = pair_ip(&format!("{field}.ip_address"), raw_ip)?;
        let mac_address = match p.mac_address.as_deref() {
            Some(raw) => mac_for(&format!("{field}.mac_address"), raw)?,
            None => port_mac.to_owned(),
        };
        let pair = AllowedAddressPair {
            ip_address,
            mac_address,
        };
        if out.contains(&pair) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for allowed_address_pairs. Reason: Request contains duplicate \
                 address pair: mac_address {} ip_address {}.",
                pair.mac_address, raw_ip
            )));
        }
        out.push(pair);
    }
    Ok(out)
}

/// What a port's security settings will be after a create or update.
#[derive(Clone, Copy, Debug)]
pub struct PortSecurity<'a> {
    /// `port_security_enabled` as it will be.
    pub enabled: bool,
    /// The security groups the request names, if it names any.
    pub requested_groups: Option<&'a [String]>,
    /// The groups the port keeps when the request names none (an update).
    pub kept_groups: &'a [SecurityGroupId],
    /// Whether the port will have allowed address pairs.
    pub has_address_pairs: bool,
}

/// Neutron's rules between port security and what depends on it: with
/// port security off, a port may have no security groups (naming some is
/// a 400; keeping some is a 409) and no allowed address pairs (409).
pub fn check_port_security(p: &PortSecurity<'_>) -> ApiResult<()> {
    if p.enabled {
        return Ok(());
    }
    if p.requested_groups.is_some_and(|g| !g.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for security_groups. Reason: Port security must be enabled and port \
             must have an IP address in order to use security groups.",
        ));
    }
    if p.requested_groups.is_none() && !p.kept_groups.is_empty() {
        return Err(ApiError::new(
            FaultKind::Conflict,
            "Port has security group associated. Cannot disable port security or ip address \
             until security group is removed.",
        ));
    }
    if p.has_address_pairs {
        return Err(ApiError::new(
            FaultKind::Conflict,
            "Address pairs and port security disabled: Port Security must be enabled in order \
             to have allowed address pairs on a port.",
        ));
    }
    Ok(())
}

/// A device id: empty means none; otherwise the id of a server (the only
/// devices this cloud attaches ports to).
pub fn device_id(raw: Option<&str>) -> ApiResult<Option<InstanceId>> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => InstanceId::parse(raw).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for device_id. Reason: '{raw}' is not a server id (UUID)."
            ))
        }),
    }
}

/// What makes `ip` unfit for a port of `subnet` (which contains it): it
/// is the subnet's network or broadcast address (prefixes up to /30), or
/// its gateway. `None`: a host address.
pub fn reserved_address(subnet: &Subnet, ip: Ipv4Addr) -> Option<&'static str> {
    let cidr = &subnet.cidr;
    if cidr.prefix() < 31 && ip == cidr.network() {
        Some("the network address")
    } else if cidr.prefix() < 31 && ip == cidr.broadcast() {
        Some("the broadcast address")
    } else if subnet.gateway_ip == Some(ip) {
        Some("the gateway address")
    } else {
        None
    }
}

/// The owners of ports the router and floating IP APIs make and remove:
/// the port API neither deletes them nor moves them to another device
/// (Neutron's `L3PortInUse`).
pub const L3_OWNERS: [&str; 3] = [
    DEVICE_OWNER_ROUTER_INTERFACE,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_FLOATING_IP,
];

/// Whether `port` belongs to a router or a floating IP.
pub fn is_l3_port(port: &Port) -> bool {
    L3_OWNERS.contains(&port.device_owner.as_str())
}

/// Neutron's 409 for deleting a router's or floating IP's port through
/// the port API.
pub fn ensure_deletable(port: &Port) -> ApiResult<()> {
    if !is_l3_port(port) {
        return Ok(());
    }
    Err(ApiError::new(
        FaultKind::Conflict,
        format!(
            "Port {} cannot be deleted directly via the port API: has device owner {}.",
            port.id, port.device_owner
        ),
    ))
}

/// The 409 for giving a router's or floating IP's port another device
/// owner or device id through the port API (`owner_changes`,
/// `device_changes`: whether the request changes them).
pub fn ensure_device_kept(port: &Port, owner_changes: bool, device_changes: bool) -> ApiResult<()> {
    if !is_l3_port(port) || !(owner_changes || device_changes) {
        return Ok(());
    }
    let field = if owner_changes {
        "device_owner"
    } else {
        "device_id"
    };
    Err(ApiError::new(
        FaultKind::Conflict,
        format!(
            "Port {} cannot have its {field} changed directly via the port API: has device owner \
             {}; use the router or floating IP API.",
            port.id, port.device_owner
        ),
    ))
}

/// Choosing a port's addresses, MAC, port security or address pairs is
/// for the network's owner (Neutron's `create_port:fixed_ips:ip_address`,
/// `...:mac_address`, `...:port_security_enabled`,
/// `...:allowed_address_pairs`); `restricted` says whether the request
/// does any of that.
pub fn ensure_network_owner(ctx: &Ctx, network: &Network, restricted: bool) -> ApiResult<()> {
    if !restricted {
        return Ok(());
    }
    ensure_owner(
        ctx,
        &network.project_id,
        &format!(
            "the addresses, port security or address pairs of ports on network {}",
            network.id
        ),
    )
}

/// Ports on an external network that is not shared are its owner's
/// (admins'): other projects see the network to take floating IPs from
/// it and to put routers' gateways on it, which make their own ports.
pub fn ensure_may_plug(ctx: &Ctx, network: &Network) -> ApiResult<()> {
    if !network.external || network.shared || ctx.is_admin() {
        return Ok(());
    }
    if ctx.project_id()? == &network.project_id {
        return Ok(());
    }
    Err(ApiError::new(
        FaultKind::Forbidden,
        format!(
            "You are not allowed to create ports on external network {}: it belongs to another \
             project. Take a floating IP from it, or set it as a router's external gateway.",
            network.id
        ),
    ))
}

/// A device owner of the network's own devices (`network:*`: routers,
/// DHCP, floating IPs) is for the network's owner to set, as Neutron's
/// `create_port:device_owner` / `update_port:device_owner` policy has it.
pub fn ensure_may_own(ctx: &Ctx, network: &Network, device_owner: &str) -> ApiResult<()> {
    if !device_owner.starts_with("network:") {
        return Ok(());
    }
    ensure_owner(
        ctx,
        &network.project_id,
        &format!(
            "network {}: device_owner {device_owner} is for the network's owner",
            network.id
        ),
    )
}

/// A device a port may name: a live server of the caller's project
/// (admins: any). Another project's server and a server that does not
/// exist get the same 403 (Neutron's `DeviceIDNotOwnedByTenant`), which
/// says nothing about other projects' servers.
pub async fn ensure_device_visible(
    state: &AppState,
    ctx: &Ctx,
    device: Option<InstanceId>,
) -> ApiResult<()> {
    let Some(id) = device else {
        return Ok(());
    };
    if ctx.is_admin() {
        return Ok(());
    }
    match state.store().instance_get(id, &ctx.own_scope()?).await {
        Ok(_) => Ok(()),
        Err(Error::NotFound { .. }) => Err(ApiError::new(
            FaultKind::Forbidden,
            format!(
                "The following device_id {id} is not owned by your project or matches another \
                 project's server."
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            mac_address("FA:16:3E:00:11:22").unwrap(),
            "fa:16:3e:00:11:22"
        );
        assert_eq!(
            mac_address("fa-16-3e-00-11-22").unwrap(),
            "fa:16:3e:00:11:22"
        );
        for bad in [
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
            "fa:16:3e",
            "zz:16:3e:00:11:22",
        ] {
            assert!(
                mac_address(bad)
                    .unwrap_err()
                    .0
                    .message
                    .contains("mac_address")
            );
        }
    }

    fn pair(ip: Option<&str>, mac: Option<&str>) -> AddressPairRequest {
        AddressPairRequest {
            ip_address: ip.map(str::to_owned),
            mac_address: mac.map(str::to_owned),
        }
    }

    fn msg(r: ApiResult<impl std::fmt::Debug>) -> String {
        r.unwrap_err().0.message
    }

    #[test]
    fn address_pairs_resolve_and_validate() {
        let own = "fa:16:3e:00:00:01";
        let ok = address_pairs(
            &[
                pair(Some("10.0.0.5"), None),
                pair(Some("10.0.1.0/24"), Some("FA:16:3E:00:00:02")),
            ],
            own,
        )
        .unwrap();
        assert_eq!(ok[0].ip_address.to_string(), "10.0.0.5/32");
        assert_eq!(ok[0].mac_address, own);
        assert_eq!(ok[1].mac_address, "fa:16:3e:00:00:02");
        assert!(msg(address_pairs(&[pair(None, None)], own)).contains("must contain ip_address"));
        for bad in ["10.0.0.300", "10.0.0.1/24", "fd00::1", "x"] {
            assert!(
                msg(address_pairs(&[pair(Some(bad), None)], own))
                    .contains("allowed_address_pairs[0].ip_address"),
                "{bad}"
            );
        }
        assert!(
            msg(address_pairs(&[pair(Some("10.0.0.5"), Some("nope"))], own))
                .contains("allowed_address_pairs[0].mac_address")
        );
        let dup = [
            pair(Some("10.0.0.5"), None),
            pair(Some("10.0.0.5/32"), Some(own)),
        ];
        assert!(msg(address_pairs(&dup, own)).contains("duplicate"));
        let many: Vec<_> = (0..11)
            .map(|i| pair(Some(&format!("10.0.0.{i}")), None))
            .collect::<Vec<_>>();
        assert!(msg(address_pairs(&many, own)).contains("maximum 10"));
        assert!(pairs_need_port_mac(&[pair(Some("10.0.0.5"), None)]));
        assert!(random_mac().starts_with("fa:16:3e:"));
    }

    #[test]
    fn port_security_rules() {
        let group = [SecurityGroupId::new()];
        let named = ["g".to_owned()];
        let base = PortSecurity {
            enabled: false,
            requested_groups: None,
            kept_groups: &[],
            has_address_pairs: false,
        };
        assert!(check_port_security(&base).is_ok());
        let r = check_port_security(&PortSecurity {
            requested_groups: Some(&named),
            ..base
        });
        assert_eq!(r.unwrap_err().0.kind, FaultKind::BadRequest);
        let r = check_port_security(&PortSecurity {
            kept_groups: &group,
            ..base
        });
        assert_eq!(r.unwrap_err().0.kind, FaultKind::Conflict);
        assert!(
            check_port_security(&PortSecurity {
                kept_groups: &group,
                requested_groups: Some(&[]),
                ..base
            })
            .is_ok()
        );
        let r = check_port_security(&PortSecurity {
            has_address_pairs: true,
            ..base
        });
        assert!(r.unwrap_err().0.message.contains("Address pairs"));
        assert!(
            check_port_security(&PortSecurity {
                enabled: true,
                kept_groups: &group,
                has_address_pairs: true,
                ..base
            })
            .is_ok()
        );
    }

    #[test]
    fn reserved_addresses() {
        let subnet = |cidr: &str, gateway: Option<&str>| Subnet {
            id: SubnetId::new(),
            network_id: cloud_model::NetworkId::new(),
            project_id: cloud_model::ProjectId::from_string("p"),
            name: String::new(),
            description: String::new(),
            cidr: Ipv4Cidr::parse(cidr).unwrap(),
            ip_version: 4,
            gateway_ip: gateway.map(|g| g.parse().unwrap()),
            enable_dhcp: true,
            dns_nameservers: Vec::new(),
            allocation_pools: Vec::new(),
            host_routes: Vec::new(),
            created_at: cloud_model::Timestamp::now(),
            updated_at: cloud_model::Timestamp::now(),
            revision: 1,
        };
        let s = subnet("10.0.0.0/24", Some("10.0.0.1"));
        let at = |ip: &str| reserved_address(&s, ip.parse().unwrap());
        assert_eq!(at("10.0.0.0"), Some("the network address"));
        assert_eq!(at("10.0.0.255"), Some("the broadcast address"));
        assert_eq!(at("10.0.0.1"), Some("the gateway address"));
        assert_eq!(at("10.0.0.2"), None);
        let no_gw = subnet("10.0.0.0/24", None);
        assert_eq!(reserved_address(&no_gw, "10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn device_ids() {
        assert_eq!(device_id(Some("")).unwrap(), None);
        assert!(device_id(Some("not-a-uuid")).is_err());
        let id = InstanceId::new();
        assert_eq!(device_id(Some(&id.to_string())).unwrap(), Some(id));
    }
}
