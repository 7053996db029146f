//! `/v2.1/flavors`: listing, showing, creating and deleting flavors.
//!
//! Visibility follows Nova: public flavors are seen by everyone, private
//! ones by admins and by the projects on their access list; to anyone else
//! a private flavor does not exist (404). The list's `is_public` filter
//! only means something to admins; other callers always get the public
//! flavors plus the private ones they may use.

use crate::auth::{Action, Ctx};
use crate::compute::params::{self, MAX_INT};
use crate::compute::views;
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, JsonBody, QueryPairs, parse_bool};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::flavor::{Flavor, NewFlavor};
use cloud_model::{Error, FlavorId, ResourceKind};
use cloud_store::FlavorFilter;
use serde_json::{Value, json};

/// The most items one list page holds (Nova's `max_limit`).
const MAX_PAGE: i64 = 1000;

/// The largest `rxtx_factor` Nova stores (a single-precision float).
const MAX_RXTX: f64 = 3.40282e38;

/// The flavor `id` as the caller may see it: 404 when it does not exist or
/// is private to projects the caller is not in.
pub async fn visible_flavor(state: &AppState, ctx: &Ctx, id: &str) -> ApiResult<Flavor> {
    let id = FlavorId::from_string(id);
    let flavor = state.store().flavor_get(&id).await?;
    if !ctx.is_admin()
        && !state
            .store()
            .flavor_visible_to(&flavor, ctx.project_id()?)
            .await?
    {
        return Err(Error::not_found(ResourceKind::Flavor, &id).into());
    }
    Ok(flavor)
}

/// Builds the store filter from the query. Parameters Nova does not know
/// are ignored, as clients send some (`sort_key`, `deleted`).
fn list_filter(ctx: &Ctx, q: &QueryPairs) -> ApiResult<FlavorFilter> {
    let own = ctx.project_id()?.clone();
    let (is_public, access_project) = if ctx.is_admin() {
        match q.get("is_public") {
            // Nova's default: the public flavors (and the caller's own
            // private ones).
            None => (None, Some(own)),
            Some(v) if v.eq_ignore_ascii_case("none") => (None, None),
            Some(v) => match parse_bool(v) {
                Some(true) => (None, Some(own)),
                Some(false) => (Some(false), None),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid is_public filter [{v}]: expected True, False or None."
                    )));
                }
            },
        }
    } else {
        (None, Some(own))
    };
    let int_filter = |key: &str| -> ApiResult<Option<i64>> {
        match q.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("Invalid {key} filter [{v}]: expected an integer."))
            }),
        }
    };
    Ok(FlavorFilter {
        is_public,
        access_project,
        min_ram: int_filter("minRam")?,
        min_disk: int_filter("minDisk")?,
        marker: q.get("marker").map(FlavorId::from_string),
        // As in Nova, a limit of 0 (or none) means a full page.
        limit: Some(match q.limit()? {
            None | Some(0) => MAX_PAGE,
            Some(l) => l.min(MAX_PAGE),
        }),
    })
}

/// Lists the flavors the caller may see and renders each with `render`,
/// adding `flavors_links` when the page may have a successor.
async fn list(
    state: &AppState,
    ctx: &Ctx,
    base: &str,
    q: &QueryPairs,
    path: &str,
    render: fn(&Flavor, &str) -> Value,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorRead)?;
    let filter = list_filter(ctx, q)?;
    let flavors = state.store().flavor_list(&filter).await?;
    let mut body = json!({
        "flavors": flavors.iter().map(|f| render(f, base)).collect::<Vec<_>>()
    });
    if let (Some(limit), Some(last)) = (filter.limit, flavors.last())
        && flavors.len() as i64 >= limit
    {
        body["flavors_links"] = views::next_link(base, path, &q.0, last.id.as_str());
    }
    Ok(Json(body))
}

/// Lists flavors: id, name and links. Filters: `is_public` (admins),
/// `minRam`, `minDisk`, `limit`, `marker`.
#[utoipa::path(get, path = "/v2.1/flavors", tag = "compute",
    responses((status = 200, description = "Flavors"), (status = 400, description = "Bad filter or unknown marker")))]
pub async fn flavor_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    list(&state, &ctx, &base, &q, "flavors", views::flavor_summary).await
}

/// Lists flavors in full (what `openstack flavor list` shows).
#[utoipa::path(get, path = "/v2.1/flavors/detail", tag = "compute",
    responses((status = 200, description = "Flavors in full"), (status = 400, description = "Bad filter or unknown marker")))]
pub async fn flavor_list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    list(
        &state,
        &ctx,
        &base,
        &q,
        "flavors/detail",
        views::flavor_detail,
    )
    .await
}

/// Shows a flavor. A name is not an id: `GET /flavors/m1.tiny` is a 404,
/// after which the clients search the list by name.
#[utoipa::path(get, path = "/v2.1/flavors/{flavor_id}", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id")),
    responses((status = 200, description = "The flavor"), (status = 404, description = "Not found")))]
pub async fn flavor_show(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorRead)?;
    let flavor = visible_flavor(&state, &ctx, &id).await?;
    Ok(Json(
        json!({"flavor": views::flavor_detail(&flavor, &base)}),
    ))
}

/// The keys `POST /flavors` accepts inside `flavor`.
const CREATE_KEYS: &[&str] = &[
    "name",
    "id",
    "ram",
    "vcpus",
    "disk",
    "swap",
    "OS-FLV-EXT-DATA:ephemeral",
    "rxtx_factor",
    "os-flavor-access:is_public",
];

/// Checks a caller-chosen flavor id: 1-255 of `[a-zA-Z0-9. _-]`, no
/// leading or trailing space. Numbers are taken as their decimal text.
fn flavor_id(value: &Value) -> ApiResult<Option<FlavorId>> {
    let id = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(params::invalid(
                "flavor.id",
                format!("{other} is not of type 'string', 'number', 'null'."),
            ));
        }
    };
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ' ' | '_' | '-'));
    if id.is_empty() || id.len() > 255 || !ok_chars || id.starts_with(' ') || id.ends_with(' ') {
        return Err(params::invalid(
            "flavor.id",
            format!(
                "'{id}' must be 1 to 255 characters of letters, digits, '.', '_', '-' and \
                 inner spaces."
            ),
        ));
    }
    Ok(Some(FlavorId::from_string(id)))
}

/// Parses and validates the body of `POST /flavors`.
fn new_flavor(body: &Value) -> ApiResult<NewFlavor> {
    let f = params::wrapped(body, "flavor")?;
    params::only_known(f, CREATE_KEYS, "flavor")?;
    let required = |key: &str| {
        f.get(key).ok_or_else(|| {
            params::invalid(
                &format!("flavor.{key}"),
                format!("'{key}' is a required property."),
            )
        })
    };
    let int = |key: &str, min: i64| -> ApiResult<i64> {
        match f.get(key) {
            None => Ok(0),
            Some(v) => params::integer(v, &format!("flavor.{key}"), min, MAX_INT),
        }
    };
    let name = params::string(required("name")?, "flavor.name")?.to_owned();
    params::name(&name, "flavor.name")?;
    required("ram")?;
    required("vcpus")?;
    required("disk")?;
    Ok(NewFlavor {
        id: f.get("id").map(flavor_id).transpose()?.flatten(),
        name,
        ram_mb: int("ram", 1)?,
        vcpus: int("vcpus", 1)?,
        disk_gb: int("disk", 0)?,
        swap_mb: int("swap", 0)?,
        ephemeral_gb: int("OS-FLV-EXT-DATA:ephemeral", 0)?,
        rxtx_factor: match f.get("rxtx_factor") {
            None => 1.0,
            Some(v) => params::positive_number(v, "flavor.rxtx_factor", MAX_RXTX)?,
        },
        is_public: match f.get("os-flavor-access:is_public") {
            None => true,
            Some(v) => params::boolean(v, "flavor.os-flavor-access:is_public")?,
        },
        description: None,
    })
}

/// Creates a flavor (admin). `"id": null` or no id means a generated UUID;
/// a duplicate name or id is a 409.
#[utoipa::path(post, path = "/v2.1/flavors", tag = "compute",
    responses((status = 200, description = "Created"), (status = 400, description = "Invalid field"),
              (status = 403, description = "Not an admin"), (status = 409, description = "Duplicate name or id")))]
pub async fn flavor_create(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::FlavorWrite)?;
    let new = new_flavor(&body)?;
    let flavor = state.store().flavor_create(&new).await?;
    Ok(Json(
        json!({"flavor": views::flavor_detail(&flavor, &base)}),
    ))
}

/// Deletes a flavor (admin). Servers keep their own copy of it.
#[utoipa::path(delete, path = "/v2.1/flavors/{flavor_id}", tag = "compute",
    params(("flavor_id" = String, Path, description = "Flavor id")),
    responses((status = 202, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn flavor_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::FlavorWrite)?;
    state
        .store()
        .flavor_delete(&FlavorId::from_string(id))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_is_checked_field_by_field() {
        let ok = new_flavor(&json!({"flavor": {
            "name": "x", "ram": "512", "vcpus": 1, "disk": 0, "id": null,
            "swap": 0, "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": "False"
        }}))
        .unwrap();
        assert_eq!(ok.ram_mb, 512);
        assert_eq!(ok.id, None);
        assert!(!ok.is_public);
        assert_eq!(
            new_flavor(&json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "id": 7}}))
                .unwrap()
                .id,
            Some(FlavorId::from_string("7"))
        );
        let cases = [
            (json!({"name": "x", "vcpus": 1, "disk": 0}), "flavor.ram"),
            (
                json!({"name": "x", "ram": 0, "vcpus": 1, "disk": 0}),
                "flavor.ram",
            ),
            (
                json!({"name": "x", "ram": 1, "vcpus": "a", "disk": 0}),
                "flavor.vcpus",
            ),
            (
                json!({"name": "x", "ram": 1, "vcpus": 1, "disk": -1}),
                "flavor.disk",
            ),
            (
                json!({"name": " ", "ram": 1, "vcpus": 1, "disk": 0}),
                "flavor.name",
            ),
            (
                json!({"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "swap": -1}),
                "flavor.swap",
            ),
            (
                json!({"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0}),
                "flavor.rxtx_factor",
            ),
            (
                json!({"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "id": " a"}),
                "flavor.id",
            ),
            (
                json!({"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "bogus": 1}),
                "flavor",
            ),
        ];
        for (f, field) in cases {
            let e = new_flavor(&json!({ "flavor": f })).unwrap_err();
            assert!(
                e.0.message.contains(&format!("'{field}'")),
                "{field}: {}",
                e.0.message
            );
        }
    }
}
