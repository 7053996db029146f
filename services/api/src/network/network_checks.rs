//! Validation of network attributes: the provider attributes (the
//! network's segment) and the MTU the segment allows. Pure functions, so
//! every rule is unit-tested here; each error says what is wrong, in
//! Neutron's words where Neutron has them.

use crate::error::{ApiError, ApiResult};
use cloud_model::network::{NetworkType, Segment};
use serde_json::Value;

/// The smallest MTU IPv4 allows (RFC 791).
pub const MIN_MTU: i64 = 68;

/// The largest VLAN id.
pub const MAX_VLAN: i64 = 4094;

/// The largest VXLAN network identifier.
pub const MAX_VNI: i64 = crate::config::MAX_VNI;

/// The provider attributes of a request (`provider:network_type`,
/// `provider:physical_network`, `provider:segmentation_id`), as given.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProviderRequest<'a> {
    /// `provider:network_type`.
    pub network_type: Option<&'a str>,
    /// `provider:physical_network`.
    pub physical_network: Option<&'a str>,
    /// `provider:segmentation_id`: a number, or a string of digits (Neutron
    /// converts both).
    pub segmentation_id: Option<&'a Value>,
}

impl ProviderRequest<'_> {
    /// Whether any provider attribute was given.
    pub fn is_given(&self) -> bool {
        self.network_type.is_some()
            || self.physical_network.is_some()
            || self.segmentation_id.is_some()
    }

    /// The name of the first attribute given, for messages.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("provider:network_type", self.network_type.is_some()),
            ("provider:physical_network", self.physical_network.is_some()),
            ("provider:segmentation_id", self.segmentation_id.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(name, _)| name)
    }
}

fn invalid(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid input for operation: {why}."))
}

/// Parses `provider:segmentation_id`.
fn segmentation_id(raw: &Value) -> ApiResult<i64> {
    let n = match raw {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for provider:segmentation_id. Reason: '{raw}' is not an integer."
        ))
    })
}

/// The segment of a new network. Nothing given: a VXLAN network whose VNI
/// the store allocates. Otherwise the type is required; flat networks take
/// a known physical network and no segmentation id, VLAN networks a known
/// physical network and a VLAN id 1..4094, VXLAN networks no physical
/// network and optionally a VNI 1..16777215.
pub fn segment(req: &ProviderRequest<'_>, physical_networks: &[String]) -> ApiResult<Segment> {
    if !req.is_given() {
        return Ok(Segment {
            network_type: NetworkType::Vxlan,
            physical_network: None,
            segmentation_id: None,
        });
    }
    let raw_type = req
        .network_type
        .ok_or_else(|| invalid("provider:network_type required"))?;
    let network_type = NetworkType::parse(raw_type).ok_or_else(|| {
        invalid(format_args!(
            "network_type value '{raw_type}' not supported; the types are vxlan, vlan and flat"
        ))
    })?;
    let seg_id = req.segmentation_id.map(segmentation_id).transpose()?;
    let kind = network_type.as_str();
    let physnet = match (network_type, req.physical_network) {
        (NetworkType::Vxlan, Some(_)) => {
            return Err(invalid(format_args!(
                "physical_network prohibited for {kind} provider network"
            )));
        }
        (NetworkType::Vxlan, None) => None,
        (_, None) => {
            return Err(invalid(format_args!(
                "physical_network required for {kind} provider network"
            )));
        }
        (_, Some(p)) if !physical_networks.iter().any(|k| k == p) => {
            return Err(invalid(format_args!(
                "physical_network '{p}' unknown for {kind} provider network; the known ones \
                 are: {}",
                physical_networks.join(", ")
            )));
        }
        (_, Some(p)) => Some(p.to_owned()),
    };
    let range = match network_type {
        NetworkType::Flat if seg_id.is_some() => {
            return Err(invalid(
                "segmentation_id prohibited for flat provider network",
            ));
        }
        NetworkType::Flat => None,
        NetworkType::Vlan if seg_id.is_none() => {
            return Err(invalid(
                "segmentation_id required for vlan provider network",
            ));
        }
        NetworkType::Vlan => Some(MAX_VLAN),
        NetworkType::Vxlan => Some(MAX_VNI),
    };
    if let (Some(id), Some(max)) = (seg_id, range)
        && !(1..=max).contains(&id)
    {
        return Err(invalid(format_args!(
            "segmentation_id {id} out of range (1 through {max}) for {kind} provider network"
        )));
    }
    Ok(Segment {
        network_type,
        physical_network: physnet,
        segmentation_id: seg_id,
    })
}

/// Checks an MTU against what `network_type` carries: at least IPv4's
/// minimum, at most the segment's maximum (1450 on VXLAN, 1500 on flat
/// and VLAN networks).
pub fn check_mtu(mtu: i64, network_type: NetworkType) -> ApiResult<()> {
    let max = network_type.max_mtu();
    if mtu < MIN_MTU {
        return Err(ApiError::bad_request(format!(
            "Invalid input for mtu. Reason: {mtu} is below the minimum MTU of {MIN_MTU}."
        )));
    }
    if mtu > max {
        return Err(ApiError::bad_request(format!(
            "Invalid input for mtu. Reason: Requested MTU is too big, maximum is {max} (the most \
             a {} network carries).",
            network_type.as_str()
        )));
    }
    Ok(())
}

/// The MTU of a new network: the requested one (checked), else the most
/// its segment carries.
pub fn mtu(requested: Option<i64>, network_type: NetworkType) -> ApiResult<i64> {
    match requested {
        None => Ok(network_type.max_mtu()),
        Some(m) => check_mtu(m, network_type).map(|()| m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn physnets() -> Vec<String> {
        vec!["physnet1".to_owned()]
    }

    fn seg(t: Option<&str>, p: Option<&str>, id: Option<Value>) -> ApiResult<Segment> {
        let req = ProviderRequest {
            network_type: t,
            physical_network: p,
            segmentation_id: id.as_ref(),
        };
        segment(&req, &physnets())
    }

    fn msg(r: ApiResult<impl std::fmt::Debug>) -> String {
        r.unwrap_err().0.message
    }

    #[test]
    fn default_is_vxlan_with_an_allocated_vni() {
        let s = seg(None, None, None).unwrap();
        assert_eq!(s.network_type, NetworkType::Vxlan);
        assert_eq!(s.segmentation_id, None);
    }

    #[test]
    fn segments_are_checked() {
        let vlan = seg(Some("vlan"), Some("physnet1"), Some(json!("42"))).unwrap();
        assert_eq!(vlan.segmentation_id, Some(42));
        assert_eq!(vlan.physical_network.as_deref(), Some("physnet1"));
        let flat = seg(Some("flat"), Some("physnet1"), None).unwrap();
        assert_eq!(flat.segmentation_id, None);
        let vx = seg(Some("vxlan"), None, Some(json!(5000))).unwrap();
        assert_eq!(vx.segmentation_id, Some(5000));

        assert!(msg(seg(None, Some("physnet1"), None)).contains("network_type required"));
        assert!(msg(seg(Some("gre"), None, None)).contains("'gre' not supported"));
        assert!(msg(seg(Some("flat"), None, None)).contains("physical_network required"));
        assert!(msg(seg(Some("flat"), Some("physnet1"), Some(json!(3)))).contains("prohibited"));
        assert!(msg(seg(Some("flat"), Some("other"), None)).contains("'other' unknown"));
        assert!(
            msg(seg(Some("vlan"), Some("physnet1"), None)).contains("segmentation_id required")
        );
        for bad in [0, 4095] {
            assert!(
                msg(seg(Some("vlan"), Some("physnet1"), Some(json!(bad))))
                    .contains("1 through 4094")
            );
        }
        assert!(msg(seg(Some("vxlan"), Some("physnet1"), None)).contains("prohibited"));
        assert!(msg(seg(Some("vxlan"), None, Some(json!(16_777_216)))).contains("16777215"));
        assert!(
            msg(seg(Some("vxlan"), None, Some(json!("x")))).contains("provider:segmentation_id")
        );
    }

    #[test]
    fn mtus() {
        assert_eq!(mtu(None, NetworkType::Vxlan).unwrap(), 1450);
        assert_eq!(mtu(None, NetworkType::Flat).unwrap(), 1500);
        assert_eq!(mtu(Some(1400), NetworkType::Vxlan).unwrap(), 1400);
        assert!(msg(mtu(Some(1500), NetworkType::Vxlan)).contains("maximum is 1450"));
        assert!(msg(mtu(Some(9000), NetworkType::Vlan)).contains("maximum is 1500"));
        assert!(msg(mtu(Some(10), NetworkType::Vlan)).contains("mtu"));
    }
}
