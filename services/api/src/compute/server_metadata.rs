//! Server metadata and tags.
//!
//! Every change that depends on what is there now (a merge, one key set or
//! deleted, one tag added or removed) runs as one read-modify-write in the
//! store ([`cloud_store::Store::instance_modify_metadata`]), with its
//! checks inside it, so concurrent requests on different keys all land and
//! the limits hold against the real total.

use crate::auth::{Action, Ctx};
use crate::compute::servers::{load, server_id};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloud_model::{Error, ResourceKind};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `{"metadata": {...}}`.
#[derive(Debug, Deserialize)]
pub struct MetadataBody {
    metadata: BTreeMap<String, String>,
}

/// `{"meta": {key: value}}`.
#[derive(Debug, Deserialize)]
pub struct MetaBody {
    meta: BTreeMap<String, String>,
}

/// `{"tags": [...]}`.
#[derive(Debug, Deserialize)]
pub struct TagsBody {
    tags: Vec<String>,
}

/// Nova's metadata rules (keys 1-255 characters, values up to 255, at
/// most the `metadata_items` quota): also what a rebuild's metadata obeys.
pub(crate) fn check_items(
    state: &AppState,
    items: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    for (k, v) in items {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(ApiError::bad_request(format!(
                "Invalid metadata key '{k}': must be 1 to 255 characters."
            )));
        }
        if v.chars().count() > 255 {
            return Err(ApiError::bad_request(format!(
                "Invalid metadata value for '{k}': longer than 255 characters."
            )));
        }
    }
    let max = state.config().quotas.metadata_items;
    if max >= 0 && items.len() as i64 > max {
        return Err(ApiError::new(
            FaultKind::OverQuota,
            format!(
                "Quota exceeded for metadata_items: {} items, maximum {max}.",
                items.len()
            ),
        ));
    }
    Ok(())
}

/// A server's metadata.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/metadata", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "Metadata")))]
pub async fn server_metadata_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    Ok(Json(json!({"metadata": inst.metadata})))
}

/// Replaces all metadata.
#[utoipa::path(put, path = "/v2.1/servers/{server_id}/metadata", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "The new metadata")))]
pub async fn server_metadata_replace(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetadataBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(&state, &ctx, &id).await?;
    check_items(&state, &body.metadata)?;
    state
        .store()
        .instance_set_metadata(inst.id, &ctx.read_scope()?, &body.metadata)
        .await?;
    Ok(Json(json!({"metadata": body.metadata})))
}

/// Merges metadata.
#[utoipa::path(post, path = "/v2.1/servers/{server_id}/metadata", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "All metadata after the merge")))]
pub async fn server_metadata_merge(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetadataBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerWrite)?;
    let id = server_id(&id)?;
    check_items(&state, &body.metadata)?;
    let all = state
        .store()
        .instance_modify_metadata(id, &ctx.read_scope()?, |all| {
            all.extend(body.metadata);
            check_items(&state, all)?;
            Ok::<_, ApiError>(all.clone())
        })
        .await?;
    Ok(Json(json!({"metadata": all})))
}

/// One metadata item.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/metadata/{key}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"), ("key" = String, Path, description = "Key")),
    responses((status = 200, description = "The item"), (status = 404, description = "No such key")))]
pub async fn server_metadata_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    let v = inst
        .metadata
        .get(&key)
        .ok_or_else(|| Error::not_found(ResourceKind::ServerMetadata, &key))?;
    Ok(Json(json!({"meta": {key: v}})))
}

/// Sets one metadata item; the body must name the same key as the URL.
#[utoipa::path(put, path = "/v2.1/servers/{server_id}/metadata/{key}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"), ("key" = String, Path, description = "Key")),
    responses((status = 200, description = "The item"), (status = 400, description = "Key mismatch")))]
pub async fn server_metadata_set(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<MetaBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerWrite)?;
    if body.meta.len() != 1 {
        return Err(ApiError::bad_request(
            "Request body must contain exactly one key in 'meta'.",
        ));
    }
    let (k, v) = body.meta.into_iter().next().expect("one item");
    if k != key {
        return Err(ApiError::bad_request(format!(
            "Request body key '{k}' does not match the URL key '{key}'."
        )));
    }
    let id = server_id(&id)?;
    let item = BTreeMap::from([(k.clone(), v.clone())]);
    check_items(&state, &item)?;
    state
        .store()
        .instance_modify_metadata(id, &ctx.read_scope()?, |all| {
            all.extend(item);
            check_items(&state, all)
        })
        .await?;
    Ok(Json(json!({"meta": {k: v}})))
}

/// Deletes one metadata item.
#[utoipa::path(delete, path = "/v2.1/servers/{server_id}/metadata/{key}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"), ("key" = String, Path, description = "Key")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such key")))]
pub async fn server_metadata_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerWrite)?;
    let id = server_id(&id)?;
    state
        .store()
        .instance_modify_metadata(id, &ctx.read_scope()?, |all| match all.remove(&key) {
            Some(_) => Ok(()),
            None => Err(Error::not_found(ResourceKind::ServerMetadata, &key)),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Most tags a server may have, as Nova.
const MAX_TAGS: usize = 50;

fn too_many_tags() -> ApiError {
    ApiError::bad_request(format!("A server may have at most {MAX_TAGS} tags."))
}

fn check_tag(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.chars().count() > 60 || tag.contains('/') || tag.contains(',') {
        return Err(ApiError::bad_request(format!(
            "Invalid tag '{tag}': must be 1 to 60 characters without '/' or ','."
        )));
    }
    Ok(())
}

/// A server's tags.
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/tags", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "Tags")))]
pub async fn server_tags_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    Ok(Json(json!({"tags": inst.tags})))
}

/// Replaces all tags.
#[utoipa::path(put, path = "/v2.1/servers/{server_id}/tags", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 200, description = "The new tags")))]
pub async fn server_tags_replace(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TagsBody>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(&state, &ctx, &id).await?;
    let mut tags = Vec::new();
    for t in body.tags {
        check_tag(&t)?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    state
        .store()
        .instance_set_tags(inst.id, &ctx.read_scope()?, &tags)
        .await?;
    Ok(Json(json!({"tags": tags})))
}

/// Deletes all tags.
#[utoipa::path(delete, path = "/v2.1/servers/{server_id}/tags", tag = "compute",
    params(("server_id" = String, Path, description = "Server id")),
    responses((status = 204, description = "Deleted")))]
pub async fn server_tags_clear(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(&state, &ctx, &id).await?;
    state
        .store()
        .instance_set_tags(inst.id, &ctx.read_scope()?, &[])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks for a tag (204) or its absence (404).
#[utoipa::path(get, path = "/v2.1/servers/{server_id}/tags/{tag}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"), ("tag" = String, Path, description = "Tag")),
    responses((status = 204, description = "Present"), (status = 404, description = "Absent")))]
pub async fn server_tag_check(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerRead)?;
    let inst = load(&state, &ctx, &id).await?;
    if inst.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(ResourceKind::ServerTag, &tag).into())
    }
}

/// Adds a tag.
#[utoipa::path(put, path = "/v2.1/servers/{server_id}/tags/{tag}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"), ("tag" = String, Path, description = "Tag")),
    responses((status = 201, description = "Added"), (status = 204, description = "Already present")))]
pub async fn server_tag_add(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerWrite)?;
    check_tag(&tag)?;
    let id = server_id(&id)?;
    let status = state
        .store()
        .instance_modify_tags(id, &ctx.read_scope()?, |tags| {
            if tags.contains(&tag) {
                return Ok(StatusCode::NO_CONTENT);
            }
            if tags.len() >= MAX_TAGS {
                return Err(too_many_tags());
            }
            tags.push(tag);
            Ok(StatusCode::CREATED)
        })
        .await?;
    Ok(status)
}

/// Removes a tag.
#[utoipa::path(delete, path = "/v2.1/servers/{server_id}/tags/{tag}", tag = "compute",
    params(("server_id" = String, Path, description = "Server id"), ("tag" = String, Path, description = "Tag")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Absent")))]
pub async fn server_tag_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ServerWrite)?;
    let id = server_id(&id)?;
    state
        .store()
        .instance_modify_tags(id, &ctx.read_scope()?, |tags| {
            if !tags.contains(&tag) {
                return Err(Error::not_found(ResourceKind::ServerTag, &tag));
            }
            tags.retain(|t| *t != tag);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
