//! A server's security groups after boot: finding a group the way Nova
//! does (by name, else by id, in the caller's project) and the
//! `addSecurityGroup` / `removeSecurityGroup` actions, which Ansible's
//! `openstack.cloud.server` uses to converge an existing server's groups.
//! Once a change is committed, the hosts enforcing the group, and those on
//! the server's networks, are told.

use crate::auth::{Action, Ctx};
use crate::compute::servers::load;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::network::notify::{Changed, Notifier};
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloud_model::network::{Port, SecurityGroup};
use cloud_model::{InstanceId, ResourceKind, SecurityGroupId};
use cloud_store::{GroupChange, PortFilter, Scope, Store};
use serde_json::Value;

/// The security group `name_or_id` names in `scope`: a name first (as
/// Nova does), else an id.
pub async fn find_security_group(
    store: &Store,
    scope: &Scope,
    name_or_id: &str,
) -> ApiResult<Option<SecurityGroup>> {
    if let Some(g) = store
        .security_group_list(scope, Some(name_or_id))
        .await?
        .into_iter()
        .next()
    {
        return Ok(Some(g));
    }
    Ok(match SecurityGroupId::parse(name_or_id) {
        Some(id) => store.security_group_get(id, scope).await.ok(),
        None => None,
    })
}

/// The ports attached to server `id`.
async fn server_ports(store: &Store, id: InstanceId) -> ApiResult<Vec<Port>> {
    Ok(store
        .port_list(&PortFilter {
            device_id: Some(id.to_string()),
            ..PortFilter::all(Scope::All)
        })
        .await?)
}

/// Nova refuses to add a group to a server one of whose ports has port
/// security disabled (`SecurityGroupCannotBeApplied`, 400): the port could
/// not enforce it.
fn ensure_ports_enforce_groups(ports: &[Port]) -> ApiResult<()> {
    match ports.iter().find(|p| !p.port_security_enabled) {
        Some(p) => Err(ApiError::bad_request(format!(
            "Network requires port_security_enabled and subnet associated in order to apply \
             security groups: port {} of the server has port security disabled.",
            p.id
        ))),
        None => Ok(()),
    }
}

/// `{"addSecurityGroup": {"name": N}}` or `{"removeSecurityGroup": ...}`:
/// changes the server's groups and those of all its ports. 202 with no
/// body; an unknown group is a 404, a group already there (or not there
/// for removal) a 400, as in Nova, and so is adding a group to a server
/// with a port whose port security is off.
pub async fn change_security_group(
    state: &AppState,
    ctx: &Ctx,
    server: &str,
    action: &str,
    args: &Value,
    change: GroupChange,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let name = args
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field '{action}.name': a security group name is required."
            ))
        })?;
    let inst = load(state, ctx, server).await?;
    let scope = Scope::Project(inst.project_id.clone());
    let group = find_security_group(state.store(), &scope, name)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                FaultKind::NotFound(Some(ResourceKind::SecurityGroup)),
                format!(
                    "Security group {name} not found for project {}.",
                    inst.project_id.as_str()
                ),
            )
        })?;
    let ports = server_ports(state.store(), inst.id).await?;
    if change == GroupChange::Add {
        ensure_ports_enforce_groups(&ports)?;
    }
    state
        .store()
        .instance_change_security_group(inst.id, &scope, &group, change)
        .await?;
    // The caller does not hand us its request id: the notification carries
    // its own.
    let notify = Notifier::new(state.clone(), format!("req-{}", uuid::Uuid::new_v4()));
    let changed = Changed::groups([group.id]).with_networks(ports.iter().map(|p| p.network_id));
    notify.changed(changed).await;
    Ok(StatusCode::ACCEPTED.into_response())
}
