//! Validation of subnet attributes: CIDR, gateway, allocation pools, DNS
//! servers and host routes. Pure functions, so every rule is unit-tested here and the
//! handlers stay short; each error names the attribute it is about.

use crate::error::{ApiError, ApiResult};
use cloud_model::network::{AllocationPool, HostRoute, Ipv4Cidr};
use serde::Deserialize;
use std::net::Ipv4Addr;

/// Most DNS servers a subnet may list (Neutron's `max_dns_nameservers`).
pub const MAX_DNS_NAMESERVERS: usize = 5;

/// Most host routes a subnet may have (Neutron's `max_subnet_host_routes`).
pub const MAX_HOST_ROUTES: usize = 20;

/// A host route as a request gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRouteRequest {
    /// Destination range (an IPv4 CIDR).
    pub destination: Option<String>,
    /// Next hop (an IPv4 address).
    pub nexthop: Option<String>,
}

/// An allocation pool as a request gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRequest {
    /// First address.
    pub start: String,
    /// Last address (inclusive).
    pub end: String,
}

/// Parses the subnet's `cidr`: IPv4, host bits zero, and leaving room for
/// hosts (a /31 or /32 has no address to hand out besides the gateway).
pub fn parse_cidr(raw: &str) -> ApiResult<Ipv4Cidr> {
    if raw.contains(':') {
        return Err(ApiError::bad_request(format!(
            "Invalid input for cidr. Reason: '{raw}' is an IPv6 CIDR; IPv6 subnets are not \
             supported."
        )));
    }
    let cidr = Ipv4Cidr::parse(raw)
        .map_err(|e| ApiError::bad_request(format!("Invalid input for cidr. Reason: {e}.")))?;
    if cidr.prefix() == 0 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for cidr. Reason: '{raw}' covers every address; use a prefix of at \
             least /1."
        )));
    }
    if cidr.prefix() > 30 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for cidr. Reason: '{raw}' is too small: the prefix must be /30 or \
             shorter to leave addresses for hosts."
        )));
    }
    Ok(cidr)
}

/// Parses an IPv4 address given for `field`.
pub fn parse_ipv4(field: &str, raw: &str) -> ApiResult<Ipv4Addr> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid input for {field}. Reason: '{raw}' is not a valid IPv4 address."
        ))
    })
}

/// The subnet's gateway: absent means the first host, `null` means none,
/// an address must be a host address of the CIDR.
pub fn gateway(cidr: &Ipv4Cidr, requested: Option<Option<&str>>) -> ApiResult<Option<Ipv4Addr>> {
    match requested {
        None => Ok(Some(cidr.first_host())),
        Some(None) => Ok(None),
        Some(Some(raw)) => {
            let gw = parse_ipv4("gateway_ip", raw)?;
            check_gateway(cidr, gw)?;
            Ok(Some(gw))
        }
    }
}

/// A gateway must be inside the CIDR and be neither its network nor its
/// broadcast address.
pub fn check_gateway(cidr: &Ipv4Cidr, gw: Ipv4Addr) -> ApiResult<()> {
    if !cidr.contains(gw) || gw == cidr.network() || gw == cidr.broadcast() {
        return Err(ApiError::bad_request(format!(
            "Invalid input for gateway_ip. Reason: gateway {gw} is not a host address of subnet \
             {cidr}."
        )));
    }
    Ok(())
}

/// The gateway must not lie in a pool IPAM hands addresses out from.
pub fn check_gateway_outside_pools(gw: Ipv4Addr, pools: &[AllocationPool]) -> ApiResult<()> {
    match pools.iter().find(|p| p.contains(gw)) {
        Some(p) => Err(ApiError::bad_request(format!(
            "Invalid input for gateway_ip. Reason: gateway ip {gw} conflicts with allocation \
             pool {}-{}.",
            p.start, p.end
        ))),
        None => Ok(()),
    }
}

/// The allocation pools: the requested ones (inside the CIDR's host range,
/// not overlapping each other, not containing the gateway), or by default
/// every host address but the gateway.
pub fn pools(
    cidr: &Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
    requested: Option<&[PoolRequest]>,
) -> ApiResult<Vec<AllocationPool>> {
    let Some(requested) = requested else {
        return Ok(cidr.default_pools(gateway));
    };
    let mut pools = Vec::with_capacity(requested.len());
    for (i, p) in requested.iter().enumerate() {
        let start = parse_ipv4(&format!("allocation_pools[{i}].start"), &p.start)?;
        let end = parse_ipv4(&format!("allocation_pools[{i}].end"), &p.end)?;
        if u32::from(start) > u32::from(end) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for allocation_pools. Reason: the pool {start}-{end} ends before \
                 it starts."
            )));
        }
        let hosts = u32::from(cidr.first_host())..=u32::from(cidr.last_host());
        if !hosts.contains(&u32::from(start)) || !hosts.contains(&u32::from(end)) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for allocation_pools. Reason: the pool {start}-{end} spans beyond \
                 the host addresses of subnet {cidr} ({}-{}).",
                cidr.first_host(),
                cidr.last_host()
            )));
        }
        pools.push(AllocationPool { start, end });
    }
    let mut sorted = pools.clone();
    sorted.sort_by_key(|p| u32::from(p.start));
    for pair in sorted.windows(2) {
        if u32::from(pair[1].start) <= u32::from(pair[0].end) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for allocation_pools. Reason: found overlapping allocation pools \
                 {}-{} and {}-{}.",
                pair[0].start, pair[0].end, pair[1].start, pair[1].end
            )));
        }
    }
    if let Some(gw) = gateway {
        check_gateway_outside_pools(gw, &pools)?;
    }
    Ok(pools)
}

/// DNS servers: IPv4 addresses, no duplicates, at most
/// [`MAX_DNS_NAMESERVERS`].
pub fn dns_nameservers(raw: &[String]) -> ApiResult<Vec<Ipv4Addr>> {
    if raw.len() > MAX_DNS_NAMESERVERS {
        return Err(ApiError::bad_request(format!(
            "Invalid input for dns_nameservers. Reason: {} servers exceed the maximum of \
             {MAX_DNS_NAMESERVERS}.",
            raw.len()
        )));
    }
    let mut out: Vec<Ipv4Addr> = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let ip = parse_ipv4(&format!("dns_nameservers[{i}]"), s)?;
        if out.contains(&ip) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for dns_nameservers. Reason: duplicate nameserver {ip}."
            )));
        }
        out.push(ip);
    }
    Ok(out)
}

/// Host routes: at most [`MAX_HOST_ROUTES`], each an IPv4 CIDR
/// destination (host bits zero) and an IPv4 next hop, none twice.
pub fn host_routes(raw: &[HostRouteRequest]) -> ApiResult<Vec<HostRoute>> {
    if raw.len() > MAX_HOST_ROUTES {
        return Err(ApiError::bad_request(format!(
            "Invalid input for host_routes. Reason: {} routes exceed the maximum of \
             {MAX_HOST_ROUTES}.",
            raw.len()
        )));
    }
    let mut out: Vec<HostRoute> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let field = format!("host_routes[{i}]");
        let missing = |key: &str| {
            ApiError::bad_request(format!(
                "Invalid input for {field}. Reason: a host route needs a destination and a \
                 nexthop; {key} is missing."
            ))
        };
        let dest = r
            .destination
            .as_deref()
            .ok_or_else(|| missing("destination"))?;
        let hop = r.nexthop.as_deref().ok_or_else(|| missing("nexthop"))?;
        let destination = Ipv4Cidr::parse(dest).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid input for {field}.destination. Reason: {e} (an IPv4 CIDR is needed)."
            ))
        })?;
        let nexthop = parse_ipv4(&format!("{field}.nexthop"), hop)?;
        let route = HostRoute {
            destination,
            nexthop,
        };
        if out.contains(&route) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for host_routes. Reason: duplicate host route {destination} via \
                 {nexthop}."
            )));
        }
        out.push(route);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(start: &str, end: &str) -> PoolRequest {
        PoolRequest {
            start: start.into(),
            end: end.into(),
        }
    }

    fn msg(r: ApiResult<impl std::fmt::Debug>) -> String {
        r.unwrap_err().0.message
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr("10.0.0.0/24").is_ok());
        for bad in [
            "10.0.0.300/24",
            "10.0.0.1/24",
            "banana",
            "10.0.0.0/31",
            "0.0.0.0/0",
        ] {
            assert!(msg(parse_cidr(bad)).contains("cidr"), "{bad}");
        }
        assert!(msg(parse_cidr("fd00::/64")).contains("IPv6"));
    }

    #[test]
    fn gateways() {
        let c = parse_cidr("10.0.0.0/24").unwrap();
        assert_eq!(gateway(&c, None).unwrap(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(gateway(&c, Some(None)).unwrap(), None);
        assert_eq!(
            gateway(&c, Some(Some("10.0.0.254"))).unwrap(),
            Some(Ipv4Addr::new(10, 0, 0, 254))
        );
        for bad in ["10.0.1.1", "10.0.0.0", "10.0.0.255", "x"] {
            assert!(msg(gateway(&c, Some(Some(bad)))).contains("gateway_ip"));
        }
    }

    #[test]
    fn allocation_pools() {
        let c = parse_cidr("10.0.0.0/24").unwrap();
        let gw = Some(Ipv4Addr::new(10, 0, 0, 1));
        let ok = pools(&c, gw, Some(&[pool("10.0.0.10", "10.0.0.20")])).unwrap();
        assert_eq!(ok[0].addresses().count(), 11);
        assert!(msg(pools(&c, gw, Some(&[pool("10.0.0.20", "10.0.0.10")]))).contains("before"));
        assert!(msg(pools(&c, gw, Some(&[pool("10.0.0.200", "10.0.1.5")]))).contains("beyond"));
        assert!(msg(pools(&c, gw, Some(&[pool("10.0.0.0", "10.0.0.5")]))).contains("beyond"));
        assert!(
            msg(pools(
                &c,
                gw,
                Some(&[
                    pool("10.0.0.10", "10.0.0.20"),
                    pool("10.0.0.20", "10.0.0.30")
                ])
            ))
            .contains("overlapping")
        );
        assert!(msg(pools(&c, gw, Some(&[pool("10.0.0.1", "10.0.0.5")]))).contains("gateway"));
        assert_eq!(pools(&c, gw, None).unwrap(), c.default_pools(gw));
    }

    fn route(dest: Option<&str>, hop: Option<&str>) -> HostRouteRequest {
        HostRouteRequest {
            destination: dest.map(str::to_owned),
            nexthop: hop.map(str::to_owned),
        }
    }

    #[test]
    fn routes() {
        let ok = host_routes(&[route(Some("192.168.0.0/16"), Some("10.0.0.254"))]).unwrap();
        assert_eq!(ok[0].destination.to_string(), "192.168.0.0/16");
        assert_eq!(ok[0].nexthop, Ipv4Addr::new(10, 0, 0, 254));
        assert!(msg(host_routes(&[route(None, Some("10.0.0.1"))])).contains("destination"));
        assert!(msg(host_routes(&[route(Some("10.1.0.0/16"), None)])).contains("nexthop"));
        for bad in ["10.1.0.1/16", "10.1.0.0", "fd00::/64", "x"] {
            assert!(
                msg(host_routes(&[route(Some(bad), Some("10.0.0.1"))]))
                    .contains("host_routes[0].destination"),
                "{bad}"
            );
        }
        assert!(
            msg(host_routes(&[route(
                Some("10.1.0.0/16"),
                Some("10.0.0.300")
            )]))
            .contains("host_routes[0].nexthop")
        );
        let twice = [
            route(Some("10.1.0.0/16"), Some("10.0.0.1")),
            route(Some("10.1.0.0/16"), Some("10.0.0.1")),
        ];
        assert!(msg(host_routes(&twice)).contains("duplicate"));
        let many: Vec<_> = (0..21)
            .map(|i| route(Some(&format!("10.{i}.0.0/16")), Some("10.0.0.1")))
            .collect();
        assert!(msg(host_routes(&many)).contains("maximum of 20"));
    }

    #[test]
    fn nameservers() {
        assert_eq!(dns_nameservers(&["8.8.8.8".into()]).unwrap().len(), 1);
        assert!(msg(dns_nameservers(&["8.8.8.8".into(), "8.8.8.8".into()])).contains("duplicate"));
        assert!(msg(dns_nameservers(&["nope".into()])).contains("dns_nameservers[0]"));
    }
}
