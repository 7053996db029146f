//! Flavor access lists: which projects may use a private flavor.
//!
//! `GET /flavors/{id}/os-flavor-access` shows the list and
//! `POST /flavors/{id}/action` with `addTenantAccess` / `removeTenantAccess`
//! changes it; both are for admins. Public flavors have no list: reading
//! it is a 404 and adding to it a 409, as in Nova.

use crate::auth::{Action, Ctx};
use crate::compute::params;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use cloud_model::{Error, FlavorId, ProjectId, ResourceKind};
use serde_json::{Value, json};

/// The access list as Nova renders it.
async fn access_list(state: &AppState, id: &FlavorId) -> ApiResult<Json<Value>> {
    let projects = state.store().flavor_access_list(id).await?;
    let entries: Vec<Value> = projects
        .iter()
        .map(|p| json!({"flavor_id": id.as_str(), "tenant_id": p.as_str()}))
        .collect();
    Ok(Json(json!({"flavor_access": entries})))
}

/// Lists the projects with access to a private flavor (admin).
#[utoipa::path(get, path = "/v2.1/flavors/{flavor_id}/os-flavor-access", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id")),
    responses((status = 200, description = "The access list"),
              (status = 404, description = "No such flavor, or a public one")))]
pub async fn flavor_access_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorAccessRead)?;
    let id = FlavorId::from_string(id);
    let flavor = state.store().flavor_get(&id).await?;
    if flavor.is_public {
        return Err(ApiError::new(
            FaultKind::NotFound(Some(ResourceKind::FlavorAccess)),
            "Access list not available for public flavors.",
        ));
    }
    access_list(&state, &id).await
}

/// The project named by an access action (`{"tenant": "<project id>"}`).
/// It must exist, so a typo does not silently grant nothing.
async fn tenant(state: &AppState, args: &Value, action: &str) -> ApiResult<ProjectId> {
    let obj = params::object(args, action)?;
    params::only_known(obj, &["tenant"], action)?;
    let field = format!("{action}.tenant");
    let tenant = obj
        .get("tenant")
        .ok_or_else(|| params::invalid(&field, "'tenant' is a required property."))?;
    let tenant = params::string(tenant, &field)?;
    if tenant.is_empty() || tenant.len() > 255 {
        return Err(params::invalid(&field, "must be 1 to 255 characters long."));
    }
    let project = ProjectId::from_string(tenant);
    match state.store().project_get(&project).await {
        Ok(_) => Ok(project),
        Err(Error::NotFound { .. }) => Err(params::invalid(
            &field,
            format!("project {tenant} does not exist."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Flavor actions (admin): `addTenantAccess` and `removeTenantAccess`,
/// each answering with the access list after the change.
#[utoipa::path(post, path = "/v2.1/flavors/{flavor_id}/action", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id")),
    responses((status = 200, description = "The access list after the change"),
              (status = 400, description = "Unknown action or bad tenant"),
              (status = 404, description = "No such flavor or access entry"),
              (status = 409, description = "Public flavor, or access already given")))]
pub async fn flavor_action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorWrite)?;
    let obj = params::object(&body, "body")?;
    let (action, args) = match obj.iter().next() {
        Some((k, v)) if obj.len() == 1 => (k.as_str(), v),
        _ => {
            return Err(ApiError::bad_request(
                "The body must hold exactly one action: addTenantAccess or removeTenantAccess.",
            ));
        }
    };
    let id = FlavorId::from_string(id);
    match action {
        "addTenantAccess" => {
            let flavor = state.store().flavor_get(&id).await?;
            let project = tenant(&state, args, action).await?;
            if flavor.is_public {
                return Err(Error::conflict("Can not add access to a public flavor.").into());
            }
            state.store().flavor_access_add(&id, &project).await?;
        }
        "removeTenantAccess" => {
            state.store().flavor_get(&id).await?;
            let project = tenant(&state, args, action).await?;
            match state.store().flavor_access_remove(&id, &project).await {
                Ok(()) => {}
                Err(Error::NotFound { .. }) => {
                    return Err(ApiError::new(
                        FaultKind::NotFound(Some(ResourceKind::FlavorAccess)),
                        format!("Flavor access not found for {id} / {project} combination."),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "Unknown flavor action '{other}': expected addTenantAccess or removeTenantAccess."
            )));
        }
    }
    access_list(&state, &id).await
}
