//! Boot-to-READY through the whole stack vs a plain `qemu-system-x86_64`
//! boot of the same image, both under TCG; the difference is what the
//! control plane costs. Method and figures: docs/benchmarks.md, section
//! "Real VM boot overhead".
//!
//! Run: `BENCH_RUNS=5 cargo nextest run -p cloud-e2e --test real_vms
//! --run-ignored only boot_overhead_benchmark --no-capture`.

use crate::support::{RealCloud, count};
use cloud_model::InstanceId;
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How often the console log file is read while waiting for READY.
const POLL: Duration = Duration::from_millis(20);

/// Runs the benchmark and prints the figures.
pub async fn run() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let cloud = RealCloud::start().await;
    let image = cloud
        .upload("testguest", "testguest.qcow2", "qcow2", json!({}))
        .await;
    let flavor = cloud.flavor("bench.1c128", 1, 128).await;
    let (net, _) = cloud.network().await;

    // The first boot downloads the image into the host's cache.
    let cold = stack_boot(&cloud, &flavor, &image, &net, "bench-cold").await;
    eprintln!("stack, cold image cache: {cold:?}");
    let mut stack = Vec::new();
    let mut plain = Vec::new();
    let work = tempfile::tempdir().unwrap();
    let base = cloud.guest.join("testguest.qcow2");
    for i in 0..runs {
        // Interleaved, so both see the same host load.
        let s = stack_boot(&cloud, &flavor, &image, &net, &format!("bench-{i}")).await;
        let p = plain_boot(&base, work.path(), i).await;
        eprintln!(
            "run {i}: stack {:.2} s (ACTIVE after {:.2} s), plain qemu {p:.2} s",
            s.ready, s.active
        );
        stack.push(s);
        plain.push(p);
    }
    let ready: Vec<f64> = stack.iter().map(|s| s.ready).collect();
    let active: Vec<f64> = stack.iter().map(|s| s.active).collect();
    let (m_stack, m_plain) = (median(&ready), median(&plain));
    println!(
        "boot-to-READY, {runs} runs, TCG, 1 vCPU / 128 MiB:\n  stack (API -> READY): runs {ready:.2?}, median {m_stack:.2} s\n  \
         stack (API -> ACTIVE): median {:.2} s\n  plain qemu: runs {plain:.2?}, median {m_plain:.2} s\n  \
         overhead (median difference): {:.2} s\n  stack with a cold image cache: {:.2} s to READY",
        median(&active),
        m_stack - m_plain,
        cold.ready,
    );
}

#[derive(Debug)]
struct StackBoot {
    /// Seconds from the create request to READY on the console.
    ready: f64,
    /// Seconds from the create request to ACTIVE in the API.
    active: f64,
}

/// Boots a server, times it to ACTIVE and to READY (read from the
/// instance's console log file, so polling the API adds nothing), then
/// deletes it.
async fn stack_boot(
    cloud: &RealCloud,
    flavor: &str,
    image: &str,
    net: &str,
    name: &str,
) -> StackBoot {
    let started = Instant::now();
    let id = cloud.boot(name, flavor, image, net, None, None).await;
    let log = cloud
        .driver
        .instance_path(InstanceId::parse(&id).unwrap())
        .join("console.log");
    let mut active = None;
    let ready = loop {
        if active.is_none() {
            let r = cloud
                .client()
                .get(&format!("/compute/v2.1/servers/{id}"))
                .await;
            match r.body["server"]["status"].as_str() {
                Some("ACTIVE") => active = Some(started.elapsed()),
                Some("ERROR") => panic!("{name} failed: {}", r.body),
                _ => {}
            }
        }
        if ready_in(&log) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < crate::support::BOOT_TIMEOUT,
            "{name}: no READY"
        );
        tokio::time::sleep(POLL).await;
    };
    let active = match active {
        Some(a) => a,
        None => {
            cloud.wait(&id, &["ACTIVE"]).await;
            started.elapsed()
        }
    };
    cloud.delete(&id).await;
    StackBoot {
        ready: ready.as_secs_f64(),
        active: active.as_secs_f64(),
    }
}

fn ready_in(log: &Path) -> bool {
    std::fs::read(log)
        .map(|b| count(&String::from_utf8_lossy(&b), "READY") >= 1)
        .unwrap_or(false)
}

/// Boots the same image with `qemu-system-x86_64` alone, as close to the
/// domain libvirt runs as a command line gets: TCG, `pc` machine, 1 vCPU,
/// 128 MiB, a qcow2 overlay on virtio-blk, a config drive on an IDE
/// CD-ROM, a virtio NIC (user-mode networking, QEMU's own DHCP) and the
/// serial console in a file. Returns seconds from spawn to READY.
async fn plain_boot(base: &Path, work: &Path, i: usize) -> f64 {
    let dir = work.join(format!("plain-{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let overlay = dir.join("disk.qcow2");
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(base)
        .arg(&overlay)
        .arg("1G")
        .status()
        .unwrap();
    assert!(status.success());
    let cd = dir.join("config.iso");
    let script = crate::support::images_dir().join("make-config-drive.sh");
    let status = std::process::Command::new(script)
        .args(["--hostname", "plain", "--name", "plain"])
        .arg(&cd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "make-config-drive.sh failed");
    let log = dir.join("console.log");
    let started = Instant::now();
    let mut qemu = tokio::process::Command::new("qemu-system-x86_64")
        .args(["-machine", "pc,accel=tcg", "-m", "128", "-smp", "1"])
        .args(["-display", "none", "-nodefaults", "-no-user-config"])
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=qcow2", overlay.display()))
        .arg("-drive")
        .arg(format!(
            "file={},media=cdrom,if=ide,readonly=on",
            cd.display()
        ))
        .args(["-nic", "user,model=virtio-net-pci"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("qemu-system-x86_64");
    let ready = loop {
        if ready_in(&log) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < crate::support::BOOT_TIMEOUT,
            "plain qemu: no READY"
        );
        tokio::time::sleep(POLL).await;
    };
    let _ = qemu.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    ready.as_secs_f64()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
