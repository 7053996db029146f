//! The image cache against a fetcher serving test bytes from memory.

use super::*;
use async_trait::async_trait;
use md5::{Digest, Md5};
use sha2::Sha512;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Serves images from memory; can cut a download short.
#[derive(Default)]
struct MemFetcher {
    images: Mutex<HashMap<String, Vec<u8>>>,
    /// Bytes to send (and report) instead of the whole image.
    cut_at: Mutex<Option<usize>>,
    calls: AtomicUsize,
}

#[async_trait]
impl ImageFetcher for MemFetcher {
    async fn fetch(
        &self,
        image_id: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> anyhow::Result<u64> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let data = self
            .images
            .lock()
            .unwrap()
            .get(image_id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("404 image not found"))?;
        let n = self.cut_at.lock().unwrap().unwrap_or(data.len());
        // Slow enough that concurrent callers overlap.
        for chunk in data[..n].chunks(64 * 1024) {
            dest.write_all(chunk).await?;
            tokio::task::yield_now().await;
        }
        Ok(n as u64)
    }
}

fn qemu_img(args: &[&str]) {
    let st = std::process::Command::new("qemu-img")
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "qemu-img {args:?}");
}

/// A small qcow2 image's bytes.
fn qcow2_bytes(dir: &Path) -> Vec<u8> {
    let p = dir.join("src.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", p.to_str().unwrap(), "2M"]);
    std::fs::read(p).unwrap()
}

fn spec_for(id: &str, format: &str, data: &[u8]) -> ImageSpec {
    ImageSpec {
        id: id.into(),
        disk_format: format.into(),
        size: data.len() as u64,
        checksum: hex::encode(Md5::digest(data)),
        sha512: Some(hex::encode(Sha512::digest(data))),
        properties: BTreeMap::new(),
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    cache_dir: PathBuf,
    fetcher: Arc<MemFetcher>,
    cache: Arc<ImageCache>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let cache_dir = tmp.path().join("cache");
    let fetcher = Arc::new(MemFetcher::default());
    let cache = Arc::new(ImageCache::new(cache_dir.clone(), fetcher.clone()));
    Setup {
        _tmp: tmp,
        src,
        cache_dir,
        fetcher,
        cache,
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn concurrent_spawns_download_once_and_share_the_base() {
    let s = setup();
    let data = qcow2_bytes(&s.src);
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("img-1".into(), data.clone());
    let spec = spec_for("img-1", "qcow2", &data);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let cache = s.cache.clone();
            let spec = spec.clone();
            tokio::spawn(async move { cache.ensure(&spec).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(s.fetcher.calls.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|r| r == &results[0]));
    assert_eq!(results[0].format, "qcow2");
    assert_eq!(results[0].virtual_size, 2 << 20);
    assert_eq!(files(&s.cache_dir), ["img-1.qcow2"]);
    assert_eq!(s.cache.cached_ids(), ["img-1"]);
}

#[tokio::test]
async fn corrupt_data_is_rejected_and_nothing_is_cached() {
    let s = setup();
    let data = qcow2_bytes(&s.src);
    let spec = spec_for("img-2", "qcow2", &data);
    let mut corrupt = data.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("img-2".into(), corrupt);
    let err = s.cache.ensure(&spec).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CacheError::Image { .. }), "{msg}");
    assert!(msg.contains("checksum mismatch: MD5"), "{msg}");
    assert_eq!(files(&s.cache_dir), Vec::<String>::new());

    // The next attempt with good data downloads again and succeeds.
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("img-2".into(), data);
    s.cache.ensure(&spec).await.unwrap();
    assert_eq!(files(&s.cache_dir), ["img-2.qcow2"]);
}

#[tokio::test]
async fn a_truncated_download_is_rejected() {
    let s = setup();
    let data = qcow2_bytes(&s.src);
    let spec = spec_for("img-3", "qcow2", &data);
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("img-3".into(), data.clone());
    *s.fetcher.cut_at.lock().unwrap() = Some(data.len() / 2);
    let msg = s.cache.ensure(&spec).await.unwrap_err().to_string();
    assert!(msg.contains("download truncated"), "{msg}");
    assert_eq!(files(&s.cache_dir), Vec::<String>::new());
}

#[tokio::test]
async fn download_failures_and_bad_formats_are_image_errors() {
    let s = setup();
    let data = qcow2_bytes(&s.src);
    let err = s
        .cache
        .ensure(&spec_for("gone", "qcow2", &data))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("download failed: 404"), "{err}");

    // qcow2 bytes claimed to be raw would let the guest read host files.
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("liar".into(), data.clone());
    let err = s
        .cache
        .ensure(&spec_for("liar", "raw", &data))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is qcow2, but its disk format says raw"),
        "{err}"
    );

    let err = s
        .cache
        .ensure(&spec_for("iso1", "iso", &data))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");

    let err = s
        .cache
        .ensure(&spec_for("../etc", "raw", &data))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid image id"), "{err}");
    assert_eq!(files(&s.cache_dir), Vec::<String>::new());
}

#[tokio::test]
async fn other_formats_are_converted_to_qcow2_and_raw_is_kept() {
    let s = setup();
    let raw = s.src.join("x.raw");
    std::fs::write(&raw, vec![7u8; 1 << 20]).unwrap();
    let vmdk = s.src.join("x.vmdk");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        raw.to_str().unwrap(),
        vmdk.to_str().unwrap(),
    ]);
    let vmdk_bytes = std::fs::read(&vmdk).unwrap();
    let raw_bytes = std::fs::read(&raw).unwrap();
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("v".into(), vmdk_bytes.clone());
    s.fetcher
        .images
        .lock()
        .unwrap()
        .insert("r".into(), raw_bytes.clone());
    let v = s
        .cache
        .ensure(&spec_for("v", "vmdk", &vmdk_bytes))
        .await
        .unwrap();
    assert_eq!(v.format, "qcow2");
    assert_eq!(v.virtual_size, 1 << 20);
    let r = s
        .cache
        .ensure(&spec_for("r", "raw", &raw_bytes))
        .await
        .unwrap();
    assert_eq!(r.format, "raw");
    assert_eq!(files(&s.cache_dir), ["r.raw", "v.qcow2"]);
}

#[tokio::test]
async fn cleanup_removes_only_unused_images() {
    let s = setup();
    let data = qcow2_bytes(&s.src);
    for id in ["a", "b"] {
        s.fetcher
            .images
            .lock()
            .unwrap()
            .insert(id.into(), data.clone());
        s.cache.ensure(&spec_for(id, "qcow2", &data)).await.unwrap();
    }
    let in_use = HashSet::from(["a".to_string()]);
    // Recently used: kept for now.
    let removed = s
        .cache
        .cleanup_unused(Duration::from_secs(3600), &in_use)
        .await
        .unwrap();
    assert!(removed.is_empty());
    let removed = s
        .cache
        .cleanup_unused(Duration::ZERO, &in_use)
        .await
        .unwrap();
    assert_eq!(removed, ["b"]);
    assert_eq!(files(&s.cache_dir), ["a.qcow2"]);
}
