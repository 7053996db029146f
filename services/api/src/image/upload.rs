//! `PUT/GET /v2/images/{id}/file`: image data in and out.
//!
//! An upload claims the image in the store (`queued` -> `saving`; any other
//! status is a 409, so two uploads never race), streams the body into the
//! file store while hashing it, moves the file to its final name and
//! records the result (`saving` -> `active`). Whatever goes wrong on the
//! way, including the client going away mid-body, the partial file is
//! removed and the image is put back to `queued` so the upload can be
//! retried. If the API process itself dies mid-upload, nothing puts it back;
//! instead the claim is renewed while the data streams in, and a `saving`
//! image whose claim has gone stale may be uploaded again.

use crate::auth::{Action, Ctx};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::image::filestore::{FileStore, ReceiveError};
use crate::image::storage_quota::{self, Room};
use crate::image::{ensure_owner, load};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_model::{Error, ImageId, ProjectId, Timestamp};
use cloud_service_common::AbortOnDrop;
use cloud_store::ImageUpload;
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::io::ReaderStream;

/// Read size when streaming an image out.
const READ_CHUNK: usize = 256 * 1024;

/// How often an upload in progress renews its claim on the image.
const CLAIM_RENEWAL: Duration = Duration::from_secs(30);

/// How long a `saving` image may go without its claim being renewed before
/// it is taken for abandoned (its API process died mid-upload) and a new
/// upload may claim it: several renewal periods, so a slow database never
/// makes a live upload look dead.
const CLAIM_STALE_AFTER: Duration = Duration::from_secs(150);

/// The right to upload an image's data, held between `image_begin_upload`
/// and `image_finish_upload`. If it is dropped without [`UploadClaim::done`]
/// (an error, or the request future cancelled because the client went
/// away) the image goes back to `queued` and any data already moved to the
/// final name is removed.
struct UploadClaim {
    state: AppState,
    id: ImageId,
    /// Renews the claim every [`CLAIM_RENEWAL`] while the upload runs.
    _renewal: AbortOnDrop<()>,
    /// The final data file, once the upload was moved there.
    committed: Option<PathBuf>,
    finished: bool,
}

impl UploadClaim {
    fn new(state: &AppState, id: ImageId) -> Self {
        let renewal = tokio::spawn({
            let state = state.clone();
            async move {
                let mut tick = tokio::time::interval(CLAIM_RENEWAL);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match state.store().image_renew_upload(id).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => tracing::warn!(image = %id, error = %e,
                            "could not renew the upload's claim"),
                    }
                }
            }
        });
        UploadClaim {
            state: state.clone(),
            id,
            _renewal: AbortOnDrop(renewal),
            committed: None,
            finished: false,
        }
    }

    /// The upload is recorded: nothing to undo.
    fn done(mut self) {
        self.finished = true;
    }

    /// Undoes the claim now (the caller waits, so a client that retries at
    /// once finds the image `queued` again).
    async fn abort(mut self) {
        self.finished = true;
        release(self.state.clone(), self.id, self.committed.take()).await;
    }
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (state, id, committed) = (self.state.clone(), self.id, self.committed.take());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(release(state, id, committed));
            }
            Err(_) => tracing::error!(image = %id, "upload cancelled outside a runtime; \
                the image stays in 'saving'"),
        }
    }
}

/// Puts an image whose upload failed back to `queued`, and removes its
/// data if the upload got as far as moving it into place. The data stays
/// if the image is no longer `saving` (its upload was recorded after all).
async fn release(state: AppState, id: ImageId, committed: Option<PathBuf>) {
    match state.store().image_abort_upload(id).await {
        Ok(true) => {
            if let Some(path) = committed
                && let Err(e) = tokio::fs::remove_file(&path).await
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(image = %id, error = %e, "could not remove aborted image data");
            }
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(image = %id, error = %e, "could not return image to 'queued' after a failed upload");
        }
    }
}

/// The size of the disk an image describes, when its format says so
/// cheaply: a qcow2 header holds it at bytes 24..32 (big-endian); a raw
/// image is its own size.
pub fn virtual_size(disk_format: Option<&str>, head: &[u8], size: u64) -> Option<i64> {
    match disk_format {
        Some("qcow2") if head.len() >= 32 && head.starts_with(b"QFI\xfb") => {
            let bytes: [u8; 8] = head[24..32].try_into().ok()?;
            i64::try_from(u64::from_be_bytes(bytes)).ok()
        }
        Some("raw") => i64::try_from(size).ok(),
        _ => None,
    }
}

fn receive_error(id: ImageId, e: ReceiveError, room: Option<&Room>, owner: &ProjectId) -> ApiError {
    match &e {
        ReceiveError::TooLarge { limit } => match room {
            Some(room) => room.refuse(owner, *limit, true),
            None => ApiError::new(FaultKind::OverQuota, e.to_string()),
        },
        ReceiveError::Body(cause) => ApiError::bad_request(format!(
            "The upload of image {id} was interrupted before all data arrived ({cause}); \
             the image is queued again, retry the upload."
        )),
        ReceiveError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull => {
            tracing::error!(image = %id, error = %e, "image store is full");
            ApiError::new(
                FaultKind::PayloadTooLarge,
                "Image storage media is full: the image data could not be stored.",
            )
        }
        ReceiveError::Io { .. } => {
            ApiError::from(Error::internal(format!("image {id} upload failed: {e:#}")))
        }
    }
}

/// Uploads an image's data (`Content-Type: application/octet-stream`, with
/// `Content-Length` or chunked). The image becomes `active` with its size
/// and checksums.
#[utoipa::path(put, path = "/v2/images/{image_id}/file", tag = "image",
    params(("image_id" = String, Path, description = "Image id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The image data"),
    responses((status = 204, description = "Stored; the image is active"),
        (status = 400, description = "Formats unset, or the body broke off"),
        (status = 403, description = "Another project's image"),
        (status = 404, description = "Not found"),
        (status = 409, description = "The image is not queued"),
        (status = 413, description = "Over the project's image storage quota (image_size_total)"),
        (status = 415, description = "Not application/octet-stream")))]
pub async fn image_upload(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    ctx.authorize(Action::ImageWrite)?;
    let image = load(&state, &ctx, &id).await?;
    ensure_owner(&ctx, &image)?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/octet-stream") {
            return Err(ApiError::new(
                FaultKind::UnsupportedMediaType,
                format!(
                    "Unsupported Content-Type '{ct}' for image data: use \
                     application/octet-stream."
                ),
            ));
        }
    }
    if image.disk_format.is_none() || image.container_format.is_none() {
        return Err(ApiError::bad_request(format!(
            "Properties disk_format and container_format must be set before data is uploaded \
             to image {}.",
            image.id
        )));
    }
    let room = storage_quota::room(&state, &image.owner).await?;
    if let (Some(room), Some(size)) = (&room, storage_quota::announced_size(&headers))
        && size > room.left()
    {
        return Err(room.refuse(&image.owner, size, false));
    }
    let stale_before =
        Timestamp::from_micros(Timestamp::now().micros() - CLAIM_STALE_AFTER.as_micros() as i64);
    state
        .store()
        .image_begin_upload(image.id, stale_before)
        .await?;
    let mut claim = UploadClaim::new(&state, image.id);
    let files = FileStore::of(&state);
    let received = match files.receive(image.id, body, room.map(|r| r.left())).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(image = %image.id, error = %e, "image upload failed");
            claim.abort().await;
            return Err(receive_error(image.id, e, room.as_ref(), &image.owner));
        }
    };
    let upload = ImageUpload {
        size: i64::try_from(received.size).unwrap_or(i64::MAX),
        checksum: received.md5,
        sha512: received.sha512,
        virtual_size: virtual_size(image.disk_format.as_deref(), &received.head, received.size),
    };
    let dest = files.path(image.id);
    if let Err(e) = received.file.persist(&dest).await {
        claim.abort().await;
        return Err(Error::internal(format!(
            "could not move image {} data into place: {e}",
            image.id
        ))
        .into());
    }
    claim.committed = Some(dest);
    match state
        .store()
        .image_finish_upload(image.id, &upload, room.map(|r| r.limit))
        .await
    {
        Ok(()) => {
            claim.done();
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => {
            claim.abort().await;
            Err(e.into())
        }
    }
}

/// Downloads an image's data. An image without data yet (`queued`,
/// `saving`) answers 204 with an empty body, as Glance does. `Content-MD5`
/// carries the hex MD5 (Glance's `checksum`), which is what openstacksdk
/// and glanceclient verify the download against.
#[utoipa::path(get, path = "/v2/images/{image_id}/file", tag = "image",
    params(("image_id" = String, Path, description = "Image id")),
    responses((status = 200, description = "The image data", content_type = "application/octet-stream"),
        (status = 204, description = "The image has no data yet"),
        (status = 404, description = "Not found")))]
pub async fn image_download(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.authorize(Action::ImageRead)?;
    let image = load(&state, &ctx, &id).await?;
    if image.status != "active" {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (file, len) = FileStore::of(&state).open(image.id).await.map_err(|e| {
        Error::internal(format!(
            "image {} is active but its data cannot be read: {e}",
            image.id
        ))
    })?;
    let mut resp = Body::from_stream(ReaderStream::with_capacity(file, READ_CHUNK)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(md5) = image
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("content-md5", md5);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcow2_headers_give_the_virtual_size() {
        let mut head = vec![0u8; 64];
        head[..4].copy_from_slice(b"QFI\xfb");
        head[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        assert_eq!(virtual_size(Some("qcow2"), &head, 100), Some(1 << 30));
        assert_eq!(virtual_size(Some("qcow2"), b"not qcow2", 9), None);
        assert_eq!(virtual_size(Some("raw"), b"", 7), Some(7));
        assert_eq!(virtual_size(Some("iso"), &head, 7), None);
    }
}
