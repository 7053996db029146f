//! Validation of security group rules, as Neutron does it: direction,
//! ethertype, protocol, port ranges per protocol, and a remote CIDR of the
//! rule's IP version. Pure functions; each error names the attribute.

use crate::error::{ApiError, ApiResult};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Protocols whose rules take a port range.
const PORT_PROTOCOLS: &[&str] = &["tcp", "udp", "sctp", "dccp", "udplite"];

/// Protocols whose rules take an ICMP type (`port_range_min`) and code
/// (`port_range_max`).
const ICMP_PROTOCOLS: &[&str] = &["icmp", "icmpv6", "ipv6-icmp"];

/// Protocol names Neutron accepts besides numbers.
const PROTOCOL_NAMES: &[&str] = &[
    "ah",
    "dccp",
    "egp",
    "esp",
    "gre",
    "icmp",
    "icmpv6",
    "igmp",
    "ipip",
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "ospf",
    "pgm",
    "rsvp",
    "sctp",
    "tcp",
    "udp",
    "udplite",
    "vrrp",
];

/// A protocol as a request gives it: a name, or a number as text or JSON.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ProtocolRequest {
    /// `"tcp"`, `"6"`, `"any"`.
    Text(String),
    /// `6`.
    Number(i64),
}

/// The checked attributes of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedRule {
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// Lower-case name or number; `None` for any protocol.
    pub protocol: Option<String>,
    /// First port / ICMP type.
    pub port_range_min: Option<i64>,
    /// Last port / ICMP code.
    pub port_range_max: Option<i64>,
    /// Normalized CIDR (host bits cleared).
    pub remote_ip_prefix: Option<String>,
}

/// Checks direction, ethertype, protocol, ports and remote prefix.
pub fn check(
    direction: Option<&str>,
    ethertype: Option<&str>,
    protocol: Option<&ProtocolRequest>,
    port_range_min: Option<i64>,
    port_range_max: Option<i64>,
    remote_ip_prefix: Option<&str>,
) -> ApiResult<CheckedRule> {
    let direction = match direction {
        Some(d @ ("ingress" | "egress")) => d.to_owned(),
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for direction. Reason: '{d}' is not in [ingress, egress]."
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "Invalid input: direction is required.",
            ));
        }
    };
    let ethertype = match ethertype.map(str::to_ascii_lowercase).as_deref() {
        None | Some("ipv4") => "IPv4",
        Some("ipv6") => "IPv6",
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for ethertype. Reason: '{}' is not in [IPv4, IPv6].",
                ethertype.unwrap_or_default()
            )));
        }
    }
    .to_owned();
    let protocol = normalize_protocol(protocol)?;
    let kind = protocol.as_deref().map(protocol_kind);
    if ethertype == "IPv4" && kind == Some("ipv6-icmp") {
        return Err(ApiError::bad_request(format!(
            "Invalid input for protocol. Reason: protocol '{}' is not supported for ethertype \
             IPv4.",
            protocol.as_deref().unwrap_or_default()
        )));
    }
    check_ports(kind, port_range_min, port_range_max)?;
    let remote_ip_prefix = remote_ip_prefix
        .map(|p| normalize_prefix(p, &ethertype))
        .transpose()?;
    Ok(CheckedRule {
        direction,
        ethertype,
        protocol,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
    })
}

/// Lower-cases names and checks numbers; `any` means every protocol.
fn normalize_protocol(p: Option<&ProtocolRequest>) -> ApiResult<Option<String>> {
    let bad = |v: &str| {
        ApiError::bad_request(format!(
            "Invalid input for protocol. Reason: '{v}' is not a protocol name or a number \
             0..255 (names: {}).",
            PROTOCOL_NAMES.join(", ")
        ))
    };
    match p {
        None => Ok(None),
        Some(ProtocolRequest::Number(n)) if (0..=255).contains(n) => Ok(Some(n.to_string())),
        Some(ProtocolRequest::Number(n)) => Err(bad(&n.to_string())),
        Some(ProtocolRequest::Text(t)) => {
            let t = t.to_ascii_lowercase();
            if t == "any" || t.is_empty() {
                Ok(None)
            } else if PROTOCOL_NAMES.contains(&t.as_str()) {
                Ok(Some(t))
            } else if t.parse::<u8>().is_ok() {
                Ok(Some(t.parse::<u8>().map(|n| n.to_string()).unwrap_or(t)))
            } else {
                Err(bad(&t))
            }
        }
    }
}

/// What a protocol means for port validation: numbers of the port and
/// ICMP protocols are treated like their names.
fn protocol_kind(p: &str) -> &str {
    match p {
        "6" => "tcp",
        "17" => "udp",
        "132" => "sctp",
        "33" => "dccp",
        "136" => "udplite",
        "1" => "icmp",
        "58" | "icmpv6" | "ipv6-icmp" => "ipv6-icmp",
        other => other,
    }
}

fn check_ports(kind: Option<&str>, min: Option<i64>, max: Option<i64>) -> ApiResult<()> {
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    match kind {
        Some(k) if PORT_PROTOCOLS.contains(&k) => {
            let (Some(lo), Some(hi)) = (min, max) else {
                return Err(ApiError::bad_request(
                    "Invalid input for port_range_min/port_range_max: for TCP/UDP protocols give \
                     both, with port_range_min <= port_range_max.",
                ));
            };
            for (field, v) in [("port_range_min", lo), ("port_range_max", hi)] {
                if !(1..=65535).contains(&v) {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for {field}. Reason: port {v} is not in 1..65535."
                    )));
                }
            }
            if lo > hi {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for port_range_min: {lo} is greater than port_range_max {hi}."
                )));
            }
            Ok(())
        }
        Some(k) if ICMP_PROTOCOLS.contains(&k) || k == "ipv6-icmp" => {
            if min.is_none() {
                return Err(ApiError::bad_request(
                    "Invalid input for port_range_max: an ICMP code (port_range_max) needs an \
                     ICMP type (port_range_min).",
                ));
            }
            for (field, v) in [("port_range_min", min), ("port_range_max", max)] {
                if let Some(v) = v.filter(|v| !(0..=255).contains(v)) {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for {field}. Reason: ICMP type/code {v} is not in 0..255."
                    )));
                }
            }
            Ok(())
        }
        _ => Err(ApiError::bad_request(
            "Invalid input for port_range_min/port_range_max: a port range needs protocol tcp, \
             udp, sctp, dccp, udplite (ports) or icmp (type and code).",
        )),
    }
}

/// Parses a remote CIDR of the rule's IP version and clears its host bits
/// (Neutron stores `10.0.0.0/24` for `10.0.0.7/24`). A bare address is a
/// single host.
fn normalize_prefix(raw: &str, ethertype: &str) -> ApiResult<String> {
    let bad = |why: String| {
        ApiError::bad_request(format!("Invalid input for remote_ip_prefix. Reason: {why}"))
    };
    let (addr, prefix) = match raw.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (raw, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad(format!("'{raw}' is not a valid CIDR.")))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        None => bits,
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| bad(format!("'{raw}' has an invalid prefix length.")))?,
    };
    let version = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    if version != ethertype {
        return Err(bad(format!(
            "conflicting value ethertype {ethertype} for CIDR {raw} (an {version} prefix)."
        )));
    }
    Ok(match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            format!("{}/{prefix}", Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            format!("{}/{prefix}", Ipv6Addr::from(u128::from(a) & mask))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> ProtocolRequest {
        ProtocolRequest::Text(s.to_owned())
    }

    fn err(r: ApiResult<CheckedRule>) -> String {
        r.unwrap_err().0.message
    }

    #[test]
    fn valid_rules() {
        let r = check(
            Some("ingress"),
            None,
            Some(&text("TCP")),
            Some(22),
            Some(22),
            None,
        )
        .unwrap();
        assert_eq!(
            (r.ethertype.as_str(), r.protocol.as_deref()),
            ("IPv4", Some("tcp"))
        );
        let r = check(
            Some("egress"),
            Some("IPv6"),
            Some(&text("any")),
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(r.protocol, None);
        let r = check(
            Some("ingress"),
            Some("IPv4"),
            Some(&ProtocolRequest::Number(1)),
            Some(8),
            Some(0),
            Some("10.1.2.3/8"),
        )
        .unwrap();
        assert_eq!(r.remote_ip_prefix.as_deref(), Some("10.0.0.0/8"));
        let r = check(
            Some("ingress"),
            Some("ipv6"),
            None,
            None,
            None,
            Some("fd00::1"),
        )
        .unwrap();
        assert_eq!(r.remote_ip_prefix.as_deref(), Some("fd00::1/128"));
    }

    #[test]
    fn invalid_rules_name_the_attribute() {
        let tcp = text("tcp");
        assert!(err(check(Some("sideways"), None, None, None, None, None)).contains("direction"));
        assert!(err(check(None, None, None, None, None, None)).contains("direction"));
        assert!(
            err(check(Some("ingress"), Some("IPv5"), None, None, None, None)).contains("ethertype")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&text("bogus")),
                None,
                None,
                None
            ))
            .contains("protocol")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&text("256")),
                None,
                None,
                None
            ))
            .contains("protocol")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&tcp),
                Some(0),
                Some(10),
                None
            ))
            .contains("port_range_min")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&tcp),
                Some(1),
                Some(70000),
                None
            ))
            .contains("port_range_max")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&tcp),
                Some(90),
                Some(80),
                None
            ))
            .contains("port_range_min")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&tcp),
                Some(80),
                None,
                None
            ))
            .contains("port_range")
        );
        assert!(
            err(check(Some("ingress"), None, None, Some(80), Some(80), None)).contains("protocol")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&text("gre")),
                Some(80),
                Some(80),
                None
            ))
            .contains("protocol")
        );
        let icmp = text("icmp");
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&icmp),
                Some(256),
                None,
                None
            ))
            .contains("port_range_min")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&icmp),
                None,
                Some(0),
                None
            ))
            .contains("port_range_max")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                None,
                None,
                None,
                Some("fd00::/8")
            ))
            .contains("remote_ip_prefix")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                None,
                None,
                None,
                Some("10.0.0.0/33")
            ))
            .contains("remote_ip_prefix")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                None,
                None,
                None,
                Some("banana")
            ))
            .contains("remote_ip_prefix")
        );
        assert!(
            err(check(
                Some("ingress"),
                None,
                Some(&text("ipv6-icmp")),
                None,
                None,
                None
            ))
            .contains("IPv4")
        );
    }
}
