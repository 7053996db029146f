//! Input checks of the floating IP API: the address wanted on the
//! external network, and the association with a port's fixed IP (the
//! caller's port, with a router between its subnet and the floating
//! network).

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::network::subnet_checks::parse_ipv4;
use crate::network::{body_id, ensure_owner};
use crate::state::AppState;
use cloud_model::network::Network;
use cloud_model::{PortId, ProjectId, SubnetId};
use cloud_store::{AddressRequest, Association};

/// The address a new floating IP asks for. An explicit address is for
/// the external network's owner (admins), as Neutron's policy has it.
pub fn address(
    ctx: &Ctx,
    network: &Network,
    subnet_id: Option<&str>,
    ip_address: Option<&str>,
) -> ApiResult<AddressRequest> {
    let ip_address = ip_address
        .map(|a| parse_ipv4("floating_ip_address", a))
        .transpose()?;
    if ip_address.is_some() {
        ensure_owner(
            ctx,
            &network.project_id,
            &format!("the floating IP addresses of network {}", network.id),
        )?;
    }
    Ok(AddressRequest {
        subnet_id: subnet_id
            .map(|s| body_id("subnet_id", s, SubnetId::parse))
            .transpose()?,
        ip_address,
    })
}

/// Checks an association of a floating IP of `project` on `network` with
/// port `raw_port` (and fixed IP `raw_fixed`): the port must be one the
/// caller sees (404) and of the floating IP's project (400 for admins
/// mixing projects), and a router must connect the fixed IP's subnet to
/// the floating network (Neutron's 404 otherwise). The store checks the
/// rest (which fixed IP, one floating IP per fixed IP) in its
/// transaction.
pub async fn association(
    state: &AppState,
    ctx: &Ctx,
    project: &ProjectId,
    network: &Network,
    raw_port: &str,
    raw_fixed: Option<&str>,
) -> ApiResult<Association> {
    let port_id = body_id("port_id", raw_port, PortId::parse)?;
    let port = state.store().port_get(port_id, &ctx.read_scope()?).await?;
    if &port.project_id != project {
        return Err(ApiError::bad_request(format!(
            "Bad floatingip request: Cannot create floating IP and bind it to Port {port_id}, \
             since that port is owned by a different tenant."
        )));
    }
    let fixed_ip = raw_fixed
        .map(|a| parse_ipv4("fixed_ip_address", a))
        .transpose()?;
    let on = match fixed_ip {
        Some(ip) => port.fixed_ips.iter().find(|f| f.ip_address == ip),
        None if port.fixed_ips.len() == 1 => port.fixed_ips.first(),
        None => None,
    };
    if let Some(fixed) = on
        && state
            .store()
            .floating_ip_path(network.id, fixed.subnet_id)
            .await?
            .is_none()
    {
        return Err(ApiError::new(
            FaultKind::NotFound(None),
            format!(
                "External network {} is not reachable from subnet {}.  Therefore, cannot \
                 associate Port {port_id} with a Floating IP.",
                network.id, fixed.subnet_id
            ),
        ));
    }
    Ok(Association { port_id, fixed_ip })
}
