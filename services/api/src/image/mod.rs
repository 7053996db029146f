//! Image (Glance v2 subset), mounted at `/image`.
//!
//! Records live in the store; the bytes live in a file store under the data
//! directory ([`filestore`]). An image is created `queued`, its data upload
//! claims it (`saving`) and finishes it (`active`, with size and hashes
//! computed while the bytes streamed past). Every caller sees its own
//! images and the public ones; another project's private image is a 404.
//! Only the owning project (or an admin) may change or delete an image, and
//! only an admin may make one public.

pub mod fields;
pub mod filestore;
pub mod images;
pub mod patch;
pub mod schemas;
pub mod storage_quota;
pub mod sweep;
pub mod upload;
pub mod versions;
pub mod views;

use crate::auth::Ctx;
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use cloud_model::image::Image;
use cloud_model::{Error, ImageId, ResourceKind};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of the image service, relative to its prefix.
pub fn router() -> OpenApiRouter<AppState> {
    // Image data is streamed to disk, never buffered: the JSON body limit
    // must not cap it.
    let data = OpenApiRouter::new()
        .routes(routes!(upload::image_upload, upload::image_download))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(versions::image_versions))
        .routes(routes!(versions::image_v2))
        .routes(routes!(images::image_list, images::image_create))
        .routes(routes!(
            images::image_show,
            patch::image_update,
            images::image_delete
        ))
        .routes(routes!(schemas::image_schema))
        .routes(routes!(schemas::images_schema))
        .merge(data)
}

/// Parses an image id from the path: names and garbage are 404s, which is
/// what lets clients fall back to a `?name=` search.
pub fn image_id(raw: &str) -> Result<ImageId, ApiError> {
    ImageId::parse(raw).ok_or_else(|| Error::not_found(ResourceKind::Image, raw).into())
}

/// Loads an image the caller may see: its project's, public and community
/// ones (admins see all).
pub async fn load(state: &AppState, ctx: &Ctx, raw: &str) -> ApiResult<Image> {
    let id = image_id(raw)?;
    Ok(state.store().image_get(id, &ctx.read_scope()?).await?)
}

/// Refuses changes to an image the caller can see but does not own (a
/// public or community image of another project).
pub fn ensure_owner(ctx: &Ctx, image: &Image) -> ApiResult<()> {
    if ctx.is_admin() || ctx.project_id()? == &image.owner {
        return Ok(());
    }
    Err(ApiError::new(
        FaultKind::Forbidden,
        format!(
            "You are not permitted to modify image {}: it belongs to another project.",
            image.id
        ),
    ))
}
