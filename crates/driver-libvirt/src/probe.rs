//! Choosing the virtualization type when it is `auto`.
//!
//! `/dev/kvm` existing does not mean KVM guests run: on nested or
//! paravirtualised hosts (e.g. PVM, which only runs guest kernels built for
//! it) a normal guest hangs. So `auto` boots real guests under KVM and
//! checks they make progress, falling back to TCG (`qemu`):
//!
//! 1. `/dev/kvm` must open read-write and libvirt must offer `kvm` domains;
//! 2. a 512-byte boot sector ([`BOOT_SECTOR`]) must go from real mode
//!    through 32-bit protected mode to 64-bit long mode with paging and
//!    print a marker on the serial port within a few seconds;
//! 3. if a Linux kernel is installed in `/boot`, it must print its banner
//!    under KVM (this is what hangs on PVM); without a kernel, the CPU must
//!    show hardware virtualization (`vmx`/`svm` in `/proc/cpuinfo`).
//!
//! The result is cached in the state directory per host boot, so the probe
//! (seconds when KVM hangs) runs once.

use crate::config::VirtType;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A boot sector that prints `R` in real mode, `P` in protected mode and
/// `L-OK` in long mode to COM1, then halts. Assembled from (GNU as, linked
/// at 0x7c00; padded with zeros and the 0x55AA signature at run time):
///
/// ```text
/// .code16: cli; ds=es=ss=0; sp=0x7c00; outb 'R' -> 0x3f8; A20 via port 0x92;
///          lgdtl gdtr; cr0 |= PE; ljmpl $0x18, prot
/// .code32: ds=es=ss=0x10; outb 'P'; zero 0x1000-0x3fff; PML4[0]=0x2003,
///          PDPT[0]=0x3003, PD[0]=0x83 (2 MiB identity page); cr4 |= PAE;
///          cr3=0x1000; EFER |= LME; cr0 |= PG; ljmp $0x08, long_mode
/// .code64: print "L-OK\n" to 0x3f8; hlt loop
/// gdt: null, 64-bit code (0x00209A0000000000), flat data, flat 32-bit code
/// ```
pub const BOOT_SECTOR: &[u8] = &[
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xba, 0xf8, 0x03, 0xb0,
    0x52, 0xee, 0xe4, 0x92, 0x0c, 0x02, 0xe6, 0x92, 0x66, 0x0f, 0x01, 0x16, 0xe0, 0x7c, 0x0f, 0x20,
    0xc0, 0x66, 0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x30, 0x7c, 0x00, 0x00, 0x18, 0x00,
    0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0x00, 0x00, 0x66,
    0xba, 0xf8, 0x03, 0xb0, 0x50, 0xee, 0xbf, 0x00, 0x10, 0x00, 0x00, 0xb9, 0x00, 0x0c, 0x00, 0x00,
    0x31, 0xc0, 0xfc, 0xf3, 0xab, 0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0xc7,
    0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83,
    0x00, 0x00, 0x00, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x10, 0x00,
    0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00,
    0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0xa4, 0x7c,
    0x00, 0x00, 0x08, 0x00, 0x66, 0xba, 0xf8, 0x03, 0x48, 0x8d, 0x35, 0x0b, 0x00, 0x00, 0x00, 0xac,
    0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd, 0x4c, 0x2d, 0x4f, 0x4b, 0x0a, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x20, 0x00,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,
    0x1f, 0x00, 0xc0, 0x7c,
];

/// What the boot sector prints when it reached long mode.
const BOOT_SECTOR_MARKER: &str = "L-OK";

/// What a Linux kernel prints first on the serial console.
const KERNEL_MARKER: &str = "Linux version";

/// How long a kernel gets to print its banner under KVM (it takes well
/// under a second there, and about 4 s even under TCG).
const KERNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// The probe's verdict, cached on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The type to use.
    pub virt_type: VirtType,
    /// Why, for the logs.
    pub reason: String,
    /// The host boot the result belongs to.
    pub boot_id: String,
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The cached verdict for this host boot, or a fresh probe (then cached).
/// `kvm_offered` says whether libvirt's capabilities list `kvm` domains.
pub async fn detect(state_path: &Path, emulator: &Path, kvm_offered: bool) -> ProbeResult {
    let cache = state_path.join("virt-type.json");
    let boot = boot_id();
    if let Some(cached) = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<ProbeResult>(&b).ok())
        .filter(|r| r.boot_id == boot)
    {
        return cached;
    }
    let (virt_type, reason) = probe(emulator, kvm_offered).await;
    let result = ProbeResult {
        virt_type,
        reason,
        boot_id: boot,
    };
    tracing::info!(virt_type = virt_type.as_str(), reason = %result.reason, "virt type probed");
    let _ = std::fs::create_dir_all(state_path);
    if let Ok(bytes) = serde_json::to_vec_pretty(&result) {
        let _ = std::fs::write(&cache, bytes);
    }
    result
}

async fn probe(emulator: &Path, kvm_offered: bool) -> (VirtType, String) {
    let qemu = |why: String| (VirtType::Qemu, why);
    if let Err(e) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return qemu(format!("/dev/kvm is not usable: {e}"));
    }
    if !kvm_offered {
        return qemu("libvirt offers no kvm domain type".into());
    }
    match boot_sector_runs(emulator, "kvm", Duration::from_secs(5)).await {
        Ok(true) => {}
        Ok(false) => return qemu("a boot sector made no progress under KVM".into()),
        Err(e) => return qemu(format!("cannot run the KVM probe: {e:#}")),
    }
    if let Some(kernel) = find_kernel() {
        return match kernel_runs(emulator, "kvm", &kernel, KERNEL_TIMEOUT).await {
            Ok(true) => (
                VirtType::Kvm,
                format!("{} boots under KVM", kernel.display()),
            ),
            Ok(false) => qemu(format!(
                "{} printed nothing under KVM within {KERNEL_TIMEOUT:?} ({})",
                kernel.display(),
                kvm_module()
            )),
            Err(e) => qemu(format!("cannot run the KVM kernel probe: {e:#}")),
        };
    }
    if cpu_has_virt_extensions() {
        (
            VirtType::Kvm,
            "KVM runs a boot sector and the CPU has vmx/svm".into(),
        )
    } else {
        qemu(format!(
            "the CPU shows no vmx/svm, so /dev/kvm is not hardware KVM ({})",
            kvm_module()
        ))
    }
}

/// Which KVM module provides `/dev/kvm`, for the reason text.
fn kvm_module() -> String {
    ["kvm_intel", "kvm_amd", "kvm_pvm"]
        .into_iter()
        .find(|m| Path::new("/sys/module").join(m).exists())
        .map(|m| format!("module {m}"))
        .unwrap_or_else(|| "module unknown".into())
}

fn cpu_has_virt_extensions() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// The newest `/boot/vmlinuz-*`.
fn find_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

/// Boots [`BOOT_SECTOR`] with accelerator `accel`; true when it reached
/// long mode within `timeout`.
pub async fn boot_sector_runs(
    emulator: &Path,
    accel: &str,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir().context("cannot create a probe directory")?;
    let disk = dir.path().join("probe.img");
    let mut sector = BOOT_SECTOR.to_vec();
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    std::fs::write(&disk, &sector)?;
    let drive = format!("file={},format=raw,if=ide,snapshot=on", disk.display());
    run_until(
        emulator,
        accel,
        &["-drive", &drive, "-m", "16"],
        dir.path(),
        BOOT_SECTOR_MARKER,
        timeout,
    )
    .await
}

/// Boots `kernel` directly with accelerator `accel`; true when it printed
/// its banner within `timeout`.
pub async fn kernel_runs(
    emulator: &Path,
    accel: &str,
    kernel: &Path,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir().context("cannot create a probe directory")?;
    let kernel = kernel.to_string_lossy();
    run_until(
        emulator,
        accel,
        &[
            "-kernel",
            &kernel,
            "-append",
            "console=ttyS0 earlyprintk=ttyS0 panic=-1",
            "-m",
            "256",
        ],
        dir.path(),
        KERNEL_MARKER,
        timeout,
    )
    .await
}

/// Runs a throw-away QEMU with the serial port in a file and waits for
/// `marker` to appear in it.
async fn run_until(
    emulator: &Path,
    accel: &str,
    args: &[&str],
    dir: &Path,
    marker: &str,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let serial = dir.join("serial.log");
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path)?;
    let mut child = tokio::process::Command::new(emulator)
        .args([
            "-accel",
            accel,
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", emulator.display()))?;
    let start = Instant::now();
    let found = loop {
        let out = std::fs::read(&serial).unwrap_or_default();
        if String::from_utf8_lossy(&out).contains(marker) {
            break true;
        }
        if let Some(status) = child.try_wait()? {
            let why = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            anyhow::bail!("{} exited ({status}): {}", emulator.display(), why.trim());
        }
        if start.elapsed() > timeout {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_boot_sector_reaches_long_mode_under_tcg() {
        let ok = boot_sector_runs(
            Path::new("qemu-system-x86_64"),
            "tcg",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        assert!(ok, "the probe boot sector must work where emulation works");
    }

    #[tokio::test]
    async fn the_verdict_is_cached_per_boot() {
        let dir = tempfile::tempdir().unwrap();
        let cached = ProbeResult {
            virt_type: VirtType::Kvm,
            reason: "cached".into(),
            boot_id: boot_id(),
        };
        std::fs::write(
            dir.path().join("virt-type.json"),
            serde_json::to_vec(&cached).unwrap(),
        )
        .unwrap();
        let got = detect(dir.path(), Path::new("/nonexistent"), false).await;
        assert_eq!(got, cached);

        // A verdict from another boot is not trusted.
        let stale = ProbeResult {
            boot_id: "another-boot".into(),
            ..cached
        };
        std::fs::write(
            dir.path().join("virt-type.json"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        let got = detect(dir.path(), Path::new("/nonexistent"), false).await;
        assert_eq!(got.virt_type, VirtType::Qemu);
        assert_ne!(got.reason, "cached");
    }
}
