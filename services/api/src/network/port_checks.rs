//! Validation of port attributes: the fixed IP requests, the MAC address
//! and the device id. Each error names the attribute it is about.

use crate::error::{ApiError, ApiResult};
use crate::network::body_id;
use crate::network::subnet_checks::parse_ipv4;
use crate::state::AppState;
use cloud_model::network::Network;
use cloud_model::{InstanceId, SubnetId};
use cloud_store::{RequestedIp, Scope};
use serde::Deserialize;

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
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "Invalid input for mac_address. Reason: '{raw}' {why}."
        ))
    };
    let octets: Vec<&str> = raw.split([':', '-']).collect();
    if octets.len() != 6
        || octets
            .iter()
            .any(|o| o.len() != 2 || !o.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(bad("is not a valid MAC address (six hex octets)"));
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

    #[test]
    fn device_ids() {
        assert_eq!(device_id(Some("")).unwrap(), None);
        assert!(device_id(Some("not-a-uuid")).is_err());
        let id = InstanceId::new();
        assert_eq!(device_id(Some(&id.to_string())).unwrap(), Some(id));
    }
}
