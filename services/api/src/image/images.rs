//! `/v2/images[/{id}]`: create, list, show and delete image records.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{BaseUrl, JsonBody, QueryPairs};
use crate::image::fields::{self, Attr};
use crate::image::filestore::FileStore;
use crate::image::{ensure_owner, load, schemas, views};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_model::image::{Image, VISIBILITIES};
use cloud_model::{ImageId, ProjectId, Timestamp};
use cloud_store::ImageFilter;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Images per page when the client does not say (Glance's
/// `limit_param_default`).
pub const DEFAULT_PAGE: i64 = 25;

/// Most images one page may hold (Glance's `api_limit_max`); larger limits
/// are lowered to it, as Glance does.
pub const MAX_PAGE: i64 = 1000;

/// The 403 for making an image public without the admin role.
fn publicize(ctx: &Ctx) -> ApiResult<()> {
    ctx.authorize(Action::ImagePublicize).map_err(|_| {
        ApiError::new(
            FaultKind::Forbidden,
            "Only an admin may make an image public (visibility 'public'); use 'private', \
             'shared' or 'community' instead.",
        )
    })
}

/// Checks that a change of visibility to `public` is allowed.
pub fn check_visibility_change(ctx: &Ctx, before: Option<&str>, image: &Image) -> ApiResult<()> {
    if image.visibility == "public" && before != Some("public") {
        publicize(ctx)?;
    }
    Ok(())
}

/// Creates an image record (status `queued`; the data comes with
/// `PUT /v2/images/{id}/file`). Unknown keys become string properties.
#[utoipa::path(post, path = "/v2/images", tag = "image",
    request_body(content = Object, description = "Image attributes: name, disk_format, \
        container_format, visibility, tags, protected, os_hidden, min_disk, min_ram, id, \
        owner, and any string property"),
    responses((status = 201, description = "The new image"),
        (status = 400, description = "Invalid attribute"),
        (status = 403, description = "Read-only attribute, or public without admin"),
        (status = 409, description = "The id is taken")))]
pub async fn image_create(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    ctx.authorize(Action::ImageWrite)?;
    let project = ctx.project_id()?.clone();
    let Value::Object(attrs) = body else {
        return Err(ApiError::bad_request(
            "Invalid request body: it must be a JSON object of image attributes.",
        ));
    };
    let now = Timestamp::now();
    let mut image = Image {
        id: ImageId::new(),
        owner: project.clone(),
        name: None,
        status: "queued".to_owned(),
        disk_format: None,
        container_format: None,
        visibility: "shared".to_owned(),
        size: None,
        virtual_size: None,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        min_disk: 0,
        min_ram: 0,
        protected: false,
        os_hidden: false,
        properties: BTreeMap::new(),
        tags: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    for (key, value) in &attrs {
        match key.as_str() {
            "id" => {
                image.id = value.as_str().and_then(ImageId::parse).ok_or_else(|| {
                    ApiError::bad_request(format!("Invalid value for 'id': {value} is not a UUID."))
                })?;
            }
            "owner" => image.owner = requested_owner(&ctx, &project, value)?,
            _ => match fields::classify(key) {
                Attr::Core(core) => fields::set_core(&mut image, core, key, value)?,
                Attr::Property => {
                    let v = fields::property(key, value)?;
                    image.properties.insert(key.clone(), v);
                }
                other => return Err(fields::forbidden(key, other)),
            },
        }
    }
    fields::check_property_count(&image)?;
    check_visibility_change(&ctx, None, &image)?;
    state.store().image_create(&image).await?;
    let mut resp = (StatusCode::CREATED, Json(views::image(&image))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("{base}/image/v2/images/{}", image.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// The owner a create request asks for: admins may create images for any
/// project, others only for their own.
fn requested_owner(ctx: &Ctx, project: &ProjectId, value: &Value) -> ApiResult<ProjectId> {
    let owner = value
        .as_str()
        .filter(|o| !o.is_empty() && o.chars().count() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid value for 'owner': {value} is not a project id."
            ))
        })?;
    if owner != project.as_str() && !ctx.is_admin() {
        return Err(ApiError::new(
            FaultKind::Forbidden,
            format!("You are not permitted to create images owned by '{owner}'."),
        ));
    }
    Ok(ProjectId::from_string(owner))
}

/// Builds the store filter from the query string.
fn filter_from(ctx: &Ctx, q: &QueryPairs) -> ApiResult<ImageFilter> {
    let limit = q.limit()?.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let marker = match q.get("marker") {
        None => None,
        Some(m) => Some(ImageId::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid marker '{m}': it is not an image id."))
        })?),
    };
    let (visibility, include_community) = match q.get("visibility") {
        None => (None, false),
        Some("all") => (None, true),
        Some(v) if VISIBILITIES.contains(&v) => (Some(v.to_owned()), v == "community"),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid visibility value '{v}': use one of {}, all.",
                VISIBILITIES.join(", ")
            )));
        }
    };
    if let Some(s) = q.get("status")
        && !schemas::STATUSES.contains(&s)
    {
        return Err(ApiError::bad_request(format!(
            "Invalid status value '{s}': use one of {}.",
            schemas::STATUSES.join(", ")
        )));
    }
    // `id=in:a,b` (what OSC sends to resolve a server list's images) or
    // one id. Something that is not a UUID matches no image.
    let ids = q.get("id").map(|v| {
        v.strip_prefix("in:")
            .unwrap_or(v)
            .split(',')
            .filter_map(|i| ImageId::parse(i.trim()))
            .collect::<Vec<_>>()
    });
    Ok(ImageFilter {
        scope: ctx.read_scope()?,
        name: q.get("name").map(str::to_owned),
        status: q.get("status").map(str::to_owned),
        visibility,
        include_community,
        disk_format: q.get("disk_format").map(str::to_owned),
        container_format: q.get("container_format").map(str::to_owned),
        owner: q.get("owner").map(ProjectId::from_string),
        ids,
        tags: q
            .0
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.clone())
            .collect(),
        protected: q.bool("protected")?,
        os_hidden: Some(q.bool("os_hidden")?.unwrap_or(false)),
        marker,
        limit,
    })
}

/// `application/x-www-form-urlencoded` encoding of one query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The listing URL with the client's own query, `marker` and `limit`
/// replaced (Glance keeps the filters in `first` and `next`).
fn listing_url(q: &QueryPairs, limit: Option<i64>, marker: Option<ImageId>) -> String {
    let mut pairs: Vec<(String, String)> =
        q.0.iter()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .cloned()
            .collect();
    if let Some(l) = limit {
        pairs.push(("limit".into(), l.to_string()));
    }
    if let Some(m) = marker {
        pairs.push(("marker".into(), m.to_string()));
    }
    if pairs.is_empty() {
        return "/v2/images".to_owned();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("/v2/images?{}", query.join("&"))
}

/// Lists the images the caller may see, newest first. Filters: `name`,
/// `status`, `visibility`, `disk_format`, `container_format`, `owner`,
/// `os_hidden`, `protected`, `tag`, `id` (`in:a,b`); paging with `limit`
/// and `marker`.
#[utoipa::path(get, path = "/v2/images", tag = "image",
    params(
        ("limit" = Option<i64>, Query, description = "Page size (default 25, at most 1000)"),
        ("marker" = Option<String>, Query, description = "Last image id of the previous page"),
        ("name" = Option<String>, Query, description = "Exact name"),
        ("status" = Option<String>, Query, description = "Exact status"),
        ("visibility" = Option<String>, Query, description = "public, private, shared, community or all"),
        ("id" = Option<String>, Query, description = "An id, or `in:id1,id2`"),
    ),
    responses((status = 200, description = "A page of images"),
        (status = 400, description = "Invalid filter or marker")))]
pub async fn image_list(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ImageRead)?;
    let filter = filter_from(&ctx, &q)?;
    let images = state.store().image_list(&filter).await?;
    let mut body = json!({
        "images": images.iter().map(views::image).collect::<Vec<_>>(),
        "first": listing_url(&q, q.limit()?, None),
        "schema": "/v2/schemas/images",
    });
    // A full page may be followed by more (Glance's rule).
    if filter.limit > 0
        && images.len() as i64 == filter.limit
        && let Some(last) = images.last()
    {
        body["next"] = json!(listing_url(&q, Some(filter.limit), Some(last.id)));
    }
    Ok(Json(body))
}

/// Shows an image. Unknown ids, names and other projects' private images
/// are 404s.
#[utoipa::path(get, path = "/v2/images/{image_id}", tag = "image",
    params(("image_id" = String, Path, description = "Image id")),
    responses((status = 200, description = "The image"), (status = 404, description = "Not found")))]
pub async fn image_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ImageRead)?;
    let image = load(&state, &ctx, &id).await?;
    Ok(Json(views::image(&image)))
}

/// Deletes an image and its data. Protected images must be unprotected
/// first.
#[utoipa::path(delete, path = "/v2/images/{image_id}", tag = "image",
    params(("image_id" = String, Path, description = "Image id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Protected, or another project's image"),
        (status = 404, description = "Not found")))]
pub async fn image_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ImageWrite)?;
    let image = load(&state, &ctx, &id).await?;
    ensure_owner(&ctx, &image)?;
    if image.protected {
        return Err(ApiError::new(
            FaultKind::Forbidden,
            format!(
                "Image {} is protected and cannot be deleted: set 'protected' to false first.",
                image.id
            ),
        ));
    }
    state.store().image_delete(image.id).await?;
    // The record is gone, so nobody can reach the data any more; a file we
    // fail to remove is only wasted space, not a reason to fail the call.
    if let Err(e) = FileStore::of(&state).remove(image.id).await {
        tracing::warn!(image = %image.id, error = %e, "could not remove image data");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_keep_filters_and_replace_paging() {
        let q = QueryPairs(vec![
            ("id".into(), "in:a,b".into()),
            ("marker".into(), "old".into()),
            ("limit".into(), "5".into()),
        ]);
        let m = ImageId::new();
        assert_eq!(
            listing_url(&q, Some(2), Some(m)),
            format!("/v2/images?id=in%3Aa%2Cb&limit=2&marker={m}")
        );
        assert_eq!(
            listing_url(&QueryPairs::default(), None, None),
            "/v2/images"
        );
    }
}
