//! Image data transfers, streamed both ways so a multi-gigabyte image never
//! sits in memory; both report progress through a callback.

use crate::error::{Error, Result};
use crate::resource::encode_segment;
use crate::session::{Body, Client, Progress, Request, Service};
use futures::StreamExt;
use reqwest::Method;
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A streaming request body reading `path`, and its length.
pub(crate) async fn file_body(
    path: &Path,
    progress: Option<Progress>,
) -> Result<(reqwest::Body, u64)> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(path, e))?;
    let len = file.metadata().await.map_err(|e| io_error(path, e))?.len();
    let mut sent = 0u64;
    if let Some(p) = &progress {
        p(0, Some(len));
    }
    let stream = ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
        if let (Ok(c), Some(p)) = (&chunk, &progress) {
            sent += c.len() as u64;
            p(sent, Some(len));
        }
        chunk
    });
    Ok((reqwest::Body::wrap_stream(stream), len))
}

impl Client {
    /// Uploads the contents of `path` as the data of image `id`.
    pub async fn image_upload(
        &self,
        id: &str,
        path: &Path,
        progress: Option<Progress>,
    ) -> Result<()> {
        let mut req = Request::new(
            Method::PUT,
            Service::Image,
            format!("images/{}/file", encode_segment(id)),
        );
        req.body = Body::File {
            path: path.to_owned(),
            progress,
        };
        self.send(req).await?;
        Ok(())
    }

    /// Downloads the data of image `id` into `path` (written to a temporary
    /// file beside it and renamed at the end, so a failed download never
    /// leaves a truncated file under the final name). Returns the size.
    pub async fn image_download(
        &self,
        id: &str,
        path: &Path,
        progress: Option<Progress>,
    ) -> Result<u64> {
        let resp = self
            .send_streaming(Request::new(
                Method::GET,
                Service::Image,
                format!("images/{}/file", encode_segment(id)),
            ))
            .await?;
        if resp.status().as_u16() == 204 {
            return Err(Error::Invalid(format!(
                "image {id} has no data yet (it is still queued)"
            )));
        }
        let total = resp.content_length();
        let tmp = path.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_error(&tmp, e))?;
        let url = resp.url().to_string();
        let mut stream = resp.bytes_stream();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| Error::Transport {
                url: url.clone(),
                source,
            })?;
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(&tmp, e))?;
            got += chunk.len() as u64;
            if let Some(p) = &progress {
                p(got, total);
            }
        }
        file.flush().await.map_err(|e| io_error(&tmp, e))?;
        drop(file);
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| io_error(path, e))?;
        Ok(got)
    }
}
