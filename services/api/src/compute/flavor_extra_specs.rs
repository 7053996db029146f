//! `/v2.1/flavors/{id}/os-extra_specs`: the key/value hints of a flavor
//! (`hw:numa_nodes`, `hw:cpu_policy`, ...) that the scheduler and the
//! compute hosts read.
//!
//! Anyone who can see a flavor can read its specs; only admins change
//! them. As in Nova, values may be sent as strings, numbers or booleans and
//! are stored as strings, `POST` merges and answers with what was sent, and
//! `PUT .../{key}` must carry exactly that one key.

use crate::auth::{Action, Ctx};
use crate::compute::flavors::visible_flavor;
use crate::compute::params;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{Error, FlavorId, ResourceKind};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Checks a spec key: 1-255 of `[a-zA-Z0-9-_:. ]`.
fn check_key(key: &str, field: &str) -> ApiResult<()> {
    let ok = !key.is_empty()
        && key.chars().count() <= 255
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '));
    if ok {
        Ok(())
    } else {
        Err(params::invalid(
            field,
            format!(
                "key '{key}' must be 1 to 255 characters of letters, digits, '-', '_', ':', \
                 '.' and spaces."
            ),
        ))
    }
}

/// A spec value as stored: strings as they are, numbers and booleans in
/// their text form (booleans as Python prints them, as Nova stores them).
fn spec_value(value: &Value, field: &str) -> ApiResult<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => {
            return Err(params::invalid(
                field,
                format!("{other} is not of type 'string', 'number', 'boolean'."),
            ));
        }
    };
    if text.chars().count() > 255 {
        return Err(params::invalid(
            field,
            "the value is longer than 255 characters.",
        ));
    }
    Ok(text)
}

/// Validates a map of specs.
fn specs_from(obj: &Map<String, Value>, prefix: &str) -> ApiResult<BTreeMap<String, String>> {
    obj.iter()
        .map(|(k, v)| {
            let field = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            check_key(k, &field)?;
            Ok((k.clone(), spec_value(v, &field)?))
        })
        .collect()
}

/// The message Nova gives for a missing key.
fn no_such_key(flavor: &str, key: &str) -> ApiError {
    ApiError::new(
        crate::error::FaultKind::NotFound(Some(ResourceKind::FlavorExtraSpec)),
        format!("Flavor {flavor} has no extra specs with key {key}."),
    )
}

/// Lists a flavor's extra specs.
#[utoipa::path(get, path = "/v2.1/flavors/{flavor_id}/os-extra_specs", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id")),
    responses((status = 200, description = "The extra specs"), (status = 404, description = "No such flavor")))]
pub async fn flavor_extra_specs_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorRead)?;
    let flavor = visible_flavor(&state, &ctx, &id).await?;
    Ok(Json(json!({"extra_specs": flavor.extra_specs})))
}

/// Adds or replaces extra specs (admin); answers with the specs sent.
#[utoipa::path(post, path = "/v2.1/flavors/{flavor_id}/os-extra_specs", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id")),
    responses((status = 200, description = "The specs set"), (status = 400, description = "Invalid key or value"),
              (status = 404, description = "No such flavor")))]
pub async fn flavor_extra_specs_create(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorWrite)?;
    let obj = params::wrapped(&body, "extra_specs")?;
    let specs = specs_from(obj, "extra_specs")?;
    state
        .store()
        .flavor_extra_specs_set(&FlavorId::from_string(id), &specs)
        .await?;
    Ok(Json(json!({"extra_specs": specs})))
}

/// Shows one extra spec as `{key: value}`.
#[utoipa::path(get, path = "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id"), ("key" = String, Path, description = "Spec key")),
    responses((status = 200, description = "The spec"), (status = 404, description = "No such flavor or key")))]
pub async fn flavor_extra_spec_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorRead)?;
    let flavor = visible_flavor(&state, &ctx, &id).await?;
    let value = flavor
        .extra_specs
        .get(&key)
        .ok_or_else(|| no_such_key(&id, &key))?;
    Ok(Json(json!({ key: value })))
}

/// Sets one extra spec (admin). The body must be `{key: value}` with the
/// key of the URL and nothing else.
#[utoipa::path(put, path = "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id"), ("key" = String, Path, description = "Spec key")),
    responses((status = 200, description = "The spec set"), (status = 400, description = "Body and URL disagree"),
              (status = 404, description = "No such flavor")))]
pub async fn flavor_extra_spec_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorWrite)?;
    let obj = params::object(&body, "body")?;
    let specs = specs_from(obj, "")?;
    if !specs.contains_key(&key) {
        return Err(ApiError::bad_request(format!(
            "Request body and URI mismatch: the body must set the key '{key}' of the URL."
        )));
    }
    if specs.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items: it must set exactly the key of the URL.",
        ));
    }
    state
        .store()
        .flavor_extra_specs_set(&FlavorId::from_string(id), &specs)
        .await?;
    Ok(Json(json!(specs)))
}

/// Removes one extra spec (admin). Nova answers 200 here, not 202 or 204,
/// and tempest checks it.
#[utoipa::path(delete, path = "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id"), ("key" = String, Path, description = "Spec key")),
    responses((status = 200, description = "Removed"), (status = 404, description = "No such flavor or key")))]
pub async fn flavor_extra_spec_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::FlavorWrite)?;
    let flavor_id = FlavorId::from_string(id.as_str());
    state.store().flavor_get(&flavor_id).await?;
    match state
        .store()
        .flavor_extra_spec_delete(&flavor_id, &key)
        .await
    {
        Ok(()) => Ok(StatusCode::OK),
        Err(Error::NotFound { .. }) => Err(no_such_key(&id, &key)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_text() {
        let specs = specs_from(
            json!({"hw:numa_nodes": 2, "a b": true, "x": "y"})
                .as_object()
                .unwrap(),
            "extra_specs",
        )
        .unwrap();
        assert_eq!(specs["hw:numa_nodes"], "2");
        assert_eq!(specs["a b"], "True");
        let bad = json!({"bad/key": "1"});
        let e = specs_from(bad.as_object().unwrap(), "extra_specs").unwrap_err();
        assert!(
            e.0.message.contains("'extra_specs.bad/key'"),
            "{}",
            e.0.message
        );
        let e = specs_from(json!({"k": null}).as_object().unwrap(), "").unwrap_err();
        assert!(e.0.message.contains("'k'"));
    }
}
