//! The image file store: one file per image, named by its id, in the data
//! directory's `images/`.
//!
//! Uploads are streamed into a temporary file next to the final one and
//! hashed on the way (MD5 for Glance's `checksum`, SHA-512 for
//! `os_hash_value`), so an image of any size costs one buffer of memory.
//! Only a complete upload is renamed to the final name (an atomic step on
//! one file system), so a reader never sees half an image; a temporary file
//! that is not kept is removed when its [`TempFile`] is dropped, which also
//! covers a request cancelled by a client that went away.

use crate::state::AppState;
use axum::body::Body;
use cloud_model::ImageId;
use futures::StreamExt;
use md5::{Digest, Md5};
use sha2::Sha512;
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Bytes kept from the start of an upload, for format headers.
pub const HEAD_LEN: usize = 512;

/// Write buffer: few, large writes to the file.
const WRITE_BUFFER: usize = 1 << 20;

/// Where image files live.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

/// Why receiving an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The client's body broke off (disconnect, bad chunked encoding, a
    /// body shorter than its `Content-Length`).
    #[error("reading the image data from the request failed")]
    Body(#[source] axum::Error),
    /// The data went over the most the upload may store (the project's
    /// image storage quota): receiving stopped there.
    #[error("the image data is larger than the {limit} bytes left in the image storage quota")]
    TooLarge {
        /// The bytes the upload was allowed.
        limit: u64,
    },
    /// The store could not write.
    #[error("could not {op} {}", path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl ReceiveError {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReceiveError {
        let path = path.to_owned();
        move |source| ReceiveError::Io { op, path, source }
    }
}

/// A temporary file that is removed on drop unless [`TempFile::persist`]
/// moved it to its final name.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    /// Renames the file to `dest`, replacing whatever was there.
    pub async fn persist(mut self, dest: &Path) -> io::Result<()> {
        tokio::fs::rename(&self.path, dest).await?;
        self.kept = true;
        Ok(())
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            // Synchronous on purpose: drop may run while the request is being
            // cancelled, with no chance to await. Unlinking is quick.
            if let Err(e) = std::fs::remove_file(&self.path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "could not remove a partial image upload");
            }
        }
    }
}

/// A complete upload in its temporary file, with what was learnt on the way.
#[derive(Debug)]
pub struct Received {
    /// The data, not yet under its final name.
    pub file: TempFile,
    /// Bytes received.
    pub size: u64,
    /// MD5, hex.
    pub md5: String,
    /// SHA-512, hex.
    pub sha512: String,
    /// The first [`HEAD_LEN`] bytes (fewer if the image is smaller).
    pub head: Vec<u8>,
}

impl FileStore {
    /// A store in `dir` (created on first upload).
    pub fn new(dir: PathBuf) -> Self {
        FileStore { dir }
    }

    /// The store of a running API.
    pub fn of(state: &AppState) -> Self {
        Self::new(state.image_dir())
    }

    /// The final path of an image's data.
    pub fn path(&self, id: ImageId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Opens an image's data for reading; returns the file and its length.
    pub async fn open(&self, id: ImageId) -> io::Result<(tokio::fs::File, u64)> {
        let file = tokio::fs::File::open(self.path(id)).await?;
        let len = file.metadata().await?.len();
        Ok((file, len))
    }

    /// The ids of the complete image files in the store (none if the
    /// directory does not exist yet); uploads in progress are not listed.
    pub async fn ids(&self) -> io::Result<Vec<ImageId>> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        while let Some(entry) = dir.next_entry().await? {
            if let Some(id) = entry.file_name().to_str().and_then(ImageId::parse) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Removes an image's data; data that is already gone is fine.
    pub async fn remove(&self, id: ImageId) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Streams `body` into a new temporary file for image `id`, hashing it
    /// on the way, and syncs it to disk. With `limit`, receiving stops as
    /// soon as the data goes over that many bytes (nothing is kept), so an
    /// upload without `Content-Length` cannot store more than its quota.
    pub async fn receive(
        &self,
        id: ImageId,
        body: Body,
        limit: Option<u64>,
    ) -> Result<Received, ReceiveError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(ReceiveError::io("create", &self.dir))?;
        let path = self
            .dir
            .join(format!(".{id}.{}.part", uuid::Uuid::new_v4().simple()));
        let raw = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(ReceiveError::io("create", &path))?;
        // From here on, dropping `file` removes the partial data.
        let file = TempFile {
            path: path.clone(),
            kept: false,
        };
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, raw);
        let mut md5 = Md5::new();
        let mut sha512 = Sha512::new();
        let mut head = Vec::with_capacity(HEAD_LEN);
        let mut size: u64 = 0;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(ReceiveError::Body)?;
            md5.update(&chunk);
            sha512.update(&chunk);
            if head.len() < HEAD_LEN {
                let take = (HEAD_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            size += chunk.len() as u64;
            if let Some(limit) = limit
                && size > limit
            {
                return Err(ReceiveError::TooLarge { limit });
            }
            out.write_all(&chunk)
                .await
                .map_err(ReceiveError::io("write", &path))?;
        }
        out.flush()
            .await
            .map_err(ReceiveError::io("write", &path))?;
        out.get_ref()
            .sync_all()
            .await
            .map_err(ReceiveError::io("sync", &path))?;
        Ok(Received {
            file,
            size,
            md5: hex::encode(md5.finalize()),
            sha512: hex::encode(sha512.finalize()),
            head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropped_uploads_leave_no_file() {
        let dir = tempfile_dir();
        let store = FileStore::new(dir.clone());
        let id = ImageId::new();
        let got = store.receive(id, Body::from("hello"), None).await.unwrap();
        assert_eq!(got.size, 5);
        assert_eq!(got.md5, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(got.head, b"hello");
        let tmp = got.file.path().to_owned();
        assert!(tmp.exists());
        drop(got);
        assert!(!tmp.exists(), "an upload that was not kept must be removed");
        let got = store.receive(id, Body::from("bytes"), None).await.unwrap();
        got.file.persist(&store.path(id)).await.unwrap();
        assert_eq!(std::fs::read(store.path(id)).unwrap(), b"bytes");
        store.remove(id).await.unwrap();
        store.remove(id).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join(format!("cloud-filestore-{}", uuid::Uuid::new_v4()))
    }
}
