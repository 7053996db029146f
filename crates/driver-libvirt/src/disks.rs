//! Disk files through `qemu-img`: inspecting downloaded images, converting
//! them, and creating each instance's qcow2 overlay over a cached base.

use crate::cmd;
use anyhow::{Context, bail};
use std::path::Path;

/// What `qemu-img info` says about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Detected format (`raw`, `qcow2`, `vmdk`...).
    pub format: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// The backing file, if the image names one.
    pub backing_file: Option<String>,
}

/// Inspects `path`. With `format` `None`, qemu-img probes the format: used
/// on untrusted downloads to check they are what the image API claims.
pub async fn info(path: &Path, format: Option<&str>) -> anyhow::Result<ImageInfo> {
    let mut args = vec!["info".to_string(), "--output=json".into()];
    if let Some(f) = format {
        args.push("-f".into());
        args.push(f.into());
    }
    args.push(path.display().to_string());
    let out = cmd::run("qemu-img", &args).await?;
    let v: serde_json::Value =
        serde_json::from_str(&out).context("qemu-img info printed invalid JSON")?;
    Ok(ImageInfo {
        format: v["format"].as_str().unwrap_or_default().to_string(),
        virtual_size: v["virtual-size"].as_u64().unwrap_or_default(),
        backing_file: v["backing-filename"].as_str().map(str::to_string),
    })
}

/// Converts `src` (in `src_format`) to a qcow2 file at `dest`.
pub async fn convert_to_qcow2(src: &Path, src_format: &str, dest: &Path) -> anyhow::Result<()> {
    cmd::run(
        "qemu-img",
        [
            "convert".as_ref(),
            "-f".as_ref(),
            src_format.as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            src.as_os_str(),
            dest.as_os_str(),
        ],
    )
    .await?;
    Ok(())
}

/// Creates the instance disk `overlay`: qcow2 over `base` (in
/// `base_format`), `size_bytes` big (`None`: the base's virtual size).
pub async fn create_overlay(
    base: &Path,
    base_format: &str,
    overlay: &Path,
    size_bytes: Option<u64>,
) -> anyhow::Result<()> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-F".into(),
        base_format.into(),
        "-b".into(),
        base.into(),
        overlay.into(),
    ];
    if let Some(size) = size_bytes {
        args.push(size.to_string().into());
    }
    cmd::run("qemu-img", &args).await?;
    let created = info(overlay, Some("qcow2")).await?;
    if created.backing_file.as_deref() != Some(&*base.to_string_lossy()) {
        bail!(
            "overlay {} does not point at its base {}",
            overlay.display(),
            base.display()
        );
    }
    Ok(())
}

/// Maps an image API `disk_format` to the qemu-img format name, `None` for
/// formats we cannot use as a disk.
pub fn qemu_format(disk_format: &str) -> Option<&'static str> {
    Some(match disk_format {
        "qcow2" => "qcow2",
        "raw" | "ami" | "aki" | "ari" => "raw",
        "vmdk" => "vmdk",
        "vdi" => "vdi",
        "vhd" => "vpc",
        "vhdx" => "vhdx",
        "qed" => "qed",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlay_is_qcow2_over_its_base_and_grows_to_the_flavor_disk() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.raw");
        std::fs::write(&base, vec![0u8; 1 << 20]).unwrap();
        let base_info = info(&base, None).await.unwrap();
        assert_eq!(base_info.format, "raw");
        assert_eq!(base_info.virtual_size, 1 << 20);

        let overlay = dir.path().join("disk");
        create_overlay(&base, "raw", &overlay, Some(1 << 30))
            .await
            .unwrap();
        let o = info(&overlay, None).await.unwrap();
        assert_eq!(o.format, "qcow2");
        assert_eq!(o.virtual_size, 1 << 30);
        assert_eq!(o.backing_file.as_deref(), Some(&*base.to_string_lossy()));

        let same = dir.path().join("disk2");
        create_overlay(&base, "raw", &same, None).await.unwrap();
        assert_eq!(info(&same, None).await.unwrap().virtual_size, 1 << 20);

        let converted = dir.path().join("conv.qcow2");
        convert_to_qcow2(&base, "raw", &converted).await.unwrap();
        assert_eq!(info(&converted, None).await.unwrap().format, "qcow2");
    }

    #[tokio::test]
    async fn a_missing_base_fails_with_qemu_imgs_reason() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_overlay(&dir.path().join("nope"), "raw", &dir.path().join("d"), None)
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("qemu-img create"), "{msg}");
    }
}
