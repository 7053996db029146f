//! The base image cache: each image is downloaded once through the
//! [`ImageFetcher`], verified (size, MD5, SHA-512) while it streams,
//! checked to be the format the image API claims, converted to qcow2 when
//! it is not usable as a backing file as it is, and shared by every
//! instance booted from it. Unused images are removed by
//! [`ImageCache::cleanup_unused`].

use crate::disks;
use crate::locks::KeyedLocks;
use crate::verify::{Expected, VerifyingWriter};
use cloud_driver::{ImageFetcher, ImageSpec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

/// A base image in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedImage {
    /// The file.
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    /// Virtual size in bytes.
    pub virtual_size: u64,
}

/// Why an image could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The image itself is unusable (bad download, checksum, format): the
    /// user sees the message as the instance fault.
    #[error("image {image}: {message}")]
    Image {
        /// Image id.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// The host failed (disk full, qemu-img missing...).
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

fn image_err(image: &str, message: impl Into<String>) -> CacheError {
    CacheError::Image {
        image: image.to_string(),
        message: message.into(),
    }
}

/// The cache directory and the per-image download locks.
pub struct ImageCache {
    dir: PathBuf,
    fetcher: Arc<dyn ImageFetcher>,
    locks: KeyedLocks<String>,
}

impl ImageCache {
    /// A cache in `dir` (created on first download) filled by `fetcher`.
    pub fn new(dir: PathBuf, fetcher: Arc<dyn ImageFetcher>) -> Self {
        ImageCache {
            dir,
            fetcher,
            locks: KeyedLocks::default(),
        }
    }

    /// The base image of `image`, downloading and verifying it on first
    /// use. Concurrent calls for one image download it once.
    pub async fn ensure(&self, image: &ImageSpec) -> Result<CachedImage, CacheError> {
        let expected = Expected {
            size: (image.size > 0).then_some(image.size),
            md5: Some(image.checksum.clone()).filter(|c| !c.is_empty()),
            sha512: image.sha512.clone().filter(|c| !c.is_empty()),
        };
        self.ensure_with(&image.id, &image.disk_format, &expected)
            .await
    }

    async fn ensure_with(
        &self,
        id: &str,
        disk_format: &str,
        expected: &Expected,
    ) -> Result<CachedImage, CacheError> {
        check_id(id)?;
        let claimed = disks::qemu_format(disk_format).ok_or_else(|| {
            image_err(id, format!("disk format {disk_format:?} is not supported"))
        })?;
        let _guard = self.locks.lock(&id.to_string()).await;
        if let Some(found) = self.lookup(id).await? {
            touch(&found.path)?;
            return Ok(found);
        }
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            anyhow::anyhow!("cannot create image cache {}: {e}", self.dir.display())
        })?;
        let part = self.dir.join(format!("{id}.part"));
        let result = self.download_and_store(id, claimed, expected, &part).await;
        let _ = tokio::fs::remove_file(&part).await;
        let _ = tokio::fs::remove_file(self.dir.join(format!("{id}.conv"))).await;
        result
    }

    async fn download_and_store(
        &self,
        id: &str,
        claimed: &'static str,
        expected: &Expected,
        part: &Path,
    ) -> Result<CachedImage, CacheError> {
        let file = tokio::fs::File::create(part)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", part.display()))?;
        let mut writer = VerifyingWriter::new(file);
        let reported = self
            .fetcher
            .fetch(id, &mut writer)
            .await
            .map_err(|e| image_err(id, format!("download failed: {e:#}")))?;
        writer
            .flush()
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))?;
        writer
            .finish(reported, expected)
            .map_err(|message| image_err(id, message))?;

        let probed = disks::info(part, None).await?;
        if probed.format != claimed {
            return Err(image_err(
                id,
                format!(
                    "the image data is {}, but its disk format says {claimed}",
                    probed.format
                ),
            ));
        }
        if let Some(backing) = probed.backing_file {
            return Err(image_err(
                id,
                format!("the image names a backing file ({backing}); refusing to use it"),
            ));
        }
        let (final_path, format) = if claimed == "raw" || claimed == "qcow2" {
            let path = self.dir.join(format!("{id}.{claimed}"));
            tokio::fs::rename(part, &path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot move {} into place: {e}", part.display()))?;
            (path, if claimed == "raw" { "raw" } else { "qcow2" })
        } else {
            let conv = self.dir.join(format!("{id}.conv"));
            disks::convert_to_qcow2(part, claimed, &conv)
                .await
                .map_err(|e| image_err(id, format!("cannot convert from {claimed}: {e:#}")))?;
            let path = self.dir.join(format!("{id}.qcow2"));
            tokio::fs::rename(&conv, &path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot move {} into place: {e}", conv.display()))?;
            (path, "qcow2")
        };
        let info = disks::info(&final_path, Some(format)).await?;
        tracing::info!(
            image = id,
            format,
            bytes = info.virtual_size,
            "image cached"
        );
        Ok(CachedImage {
            path: final_path,
            format,
            virtual_size: info.virtual_size,
        })
    }

    /// The cached file of `id`, if any.
    async fn lookup(&self, id: &str) -> anyhow::Result<Option<CachedImage>> {
        for format in ["qcow2", "raw"] {
            let path = self.dir.join(format!("{id}.{format}"));
            if path.is_file() {
                let info = disks::info(&path, Some(format)).await?;
                return Ok(Some(CachedImage {
                    path,
                    format,
                    virtual_size: info.virtual_size,
                }));
            }
        }
        Ok(None)
    }

    /// Image ids currently in the cache.
    pub fn cached_ids(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|(_, name)| !name.ends_with(".part") && !name.ends_with(".conv"))
            .filter_map(|(_, name)| name.rsplit_once('.').map(|(id, _)| id.to_string()))
            .collect()
    }

    fn entries(&self) -> Vec<(PathBuf, String)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| Some((e.path(), e.file_name().into_string().ok()?)))
            .collect()
    }

    /// Removes cached images that no instance in `in_use` needs and that
    /// were not used for `max_age`. Returns the ids removed.
    pub async fn cleanup_unused(
        &self,
        max_age: Duration,
        in_use: &HashSet<String>,
    ) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for (path, name) in self.entries() {
            let Some((id, _ext)) = name.rsplit_once('.') else {
                continue;
            };
            if in_use.contains(id) {
                continue;
            }
            let _guard = self.locks.lock(&id.to_string()).await;
            let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
                continue;
            };
            let age = SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default();
            if age < max_age {
                continue;
            }
            tokio::fs::remove_file(&path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", path.display()))?;
            tracing::info!(image = id, "unused image removed from the cache");
            removed.push(id.to_string());
        }
        Ok(removed)
    }
}

/// Records that an image was just used (its mtime is the last-used time).
fn touch(path: &Path) -> anyhow::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .map_err(|e| anyhow::anyhow!("cannot touch {}: {e}", path.display()))
}

/// Image ids become file names: only accept what ids look like.
fn check_id(id: &str) -> Result<(), CacheError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(image_err(id, "invalid image id"))
    }
}

#[cfg(test)]
#[path = "image_cache_tests.rs"]
mod tests;
