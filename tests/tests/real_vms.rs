//! Real virtual machines through the whole stack: API -> conductor ->
//! scheduler -> compute agent -> libvirt driver -> QEMU (TCG here), booting
//! the shared test guest (`../shared/images`, see its README for the
//! console markers) uploaded through the image API and downloaded by the
//! agent over HTTP.
//!
//! Needs libvirtd (`deploy/libvirt-host.sh`); fails, never skips, when
//! `qemu:///system` is unreachable. Boots are few (each ~10-15 s under TCG
//! on 2 cores). The boot-overhead benchmark at the end is ignored by
//! default; see docs/benchmarks.md for how to run it.

#[path = "real_vms/bench.rs"]
mod bench;
#[path = "real_vms/crash_dump.rs"]
mod crash_dump;
#[path = "real_vms/hard_reboot.rs"]
mod hard_reboot;
#[path = "real_vms/interface_attach.rs"]
mod interface_attach;
#[path = "real_vms/pause_suspend.rs"]
mod pause_suspend;
#[path = "real_vms/rebuild.rs"]
mod rebuild;
#[path = "real_vms/rescue.rs"]
mod rescue;
#[path = "real_vms/serial_console.rs"]
mod serial_console;
#[path = "real_vms/shelve.rs"]
mod shelve;
#[path = "real_vms/snapshot.rs"]
mod snapshot;
#[path = "real_vms/support.rs"]
mod support;

use base64::Engine;
use cloud_dataplane::names::{bridge_name, tap_name};
use cloud_model::InstanceId;
use cloud_test_utils::{create_external_network, create_router, first_subnet};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;
use support::{
    HOST, RealCloud, count, domain_exists, domain_running, fixed_ip, link_exists, markers,
    port_ids, value,
};

/// One server's life: boot with a flavor, name, uuid, user data and a
/// DHCP address the guest reports; an agent restart that changes nothing;
/// stop, start, soft and hard reboot as the guest sees them; delete that
/// leaves no domain, disk or tap; then the unused base image leaves the
/// host's cache (the agent's periodic maintenance).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_server_boots_reports_its_identity_and_obeys_power_actions() {
    let mut cloud = RealCloud::start().await;
    let image = cloud
        .upload("testguest", "testguest.qcow2", "qcow2", json!({}))
        .await;
    let flavor = cloud.flavor("real.2c192", 2, 192).await;
    let (net, _) = cloud.network().await;
    let script = "#!/bin/sh\necho \"hello from $(hostname)\"\n";
    let id = cloud
        .boot("vm-one", &flavor, &image, &net, None, Some(script))
        .await;

    let server = cloud.wait(&id, &["ACTIVE", "ERROR"]).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["OS-EXT-SRV-ATTR:host"], HOST);
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    assert!(domain_running(&id), "libvirt runs the domain");
    let console = cloud.wait_marker(&id, "READY", 1).await;
    // The flavor, the config drive, user data and DHCP, as the guest sees them.
    assert_eq!(value(&console, "CPUS"), "2");
    assert_eq!(value(&console, "RAM_MB"), "192");
    assert_eq!(value(&console, "HOSTNAME"), "vm-one");
    assert_eq!(value(&console, "NAME"), "vm-one");
    assert_eq!(value(&console, "UUID"), id);
    assert_eq!(value(&console, "USERDATA"), "script");
    assert_eq!(value(&console, "USERDATA_OUT"), "hello from vm-one");
    assert_eq!(value(&console, "USERDATA_RC"), "0");
    assert_eq!(
        value(&console, "IP"),
        fixed_ip(&server),
        "DHCP gave the API's address"
    );
    let ports = port_ids(&cloud, &id).await;
    assert_eq!(ports.len(), 1);
    assert!(link_exists(&tap_name(&ports[0])));
    assert!(link_exists(&bridge_name(&net)));

    // The agent restarts while the server runs: nothing changes.
    cloud.restart_agent().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    assert_eq!(server["OS-EXT-STS:task_state"], serde_json::Value::Null);
    assert!(domain_running(&id));
    let console = cloud.console(&id).await;
    assert_eq!(count(&console, "BOOTED"), 1, "the guest was not restarted");

    // Stop: ACPI, the guest powers itself off, then SHUTOFF.
    cloud.action(&id, json!({"os-stop": null})).await;
    let server = cloud.wait(&id, &["SHUTOFF"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 4);
    let console = cloud.console(&id).await;
    assert_eq!(count(&console, "ACPI_POWER_BUTTON"), 1, "{console}");
    assert_eq!(count(&console, "POWEROFF"), 1, "POWEROFF before SHUTOFF");
    assert!(domain_exists(&id) && !domain_running(&id));

    // Start: a second boot, same address.
    cloud.action(&id, json!({"os-start": null})).await;
    cloud.wait(&id, &["ACTIVE"]).await;
    let console = cloud.wait_marker(&id, "READY", 2).await;
    assert_eq!(value(&console, "IP"), fixed_ip(&server));

    // Soft reboot goes through the guest (ACPI); hard reboot does not.
    cloud.action(&id, json!({"reboot": {"type": "SOFT"}})).await;
    cloud.wait_marker(&id, "READY", 3).await;
    let console = cloud.console(&id).await;
    assert_eq!(
        count(&console, "POWEROFF"),
        2,
        "soft reboot asked the guest"
    );
    cloud.wait(&id, &["ACTIVE"]).await;
    cloud.action(&id, json!({"reboot": {"type": "HARD"}})).await;
    let console = cloud.wait_marker(&id, "READY", 4).await;
    assert_eq!(
        count(&console, "POWEROFF"),
        2,
        "hard reboot did not ask the guest"
    );
    let server = cloud.wait(&id, &["ACTIVE"]).await;
    assert_eq!(server["OS-EXT-STS:power_state"], 1);
    assert_eq!(server["OS-EXT-STS:task_state"], serde_json::Value::Null);

    // Delete: no domain, no disk, no tap, no bridge left.
    let dir = cloud.driver.instance_path(InstanceId::parse(&id).unwrap());
    assert!(dir.join("disk").is_file());
    cloud.delete(&id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!domain_exists(&id), "domain left behind");
    assert!(!dir.exists(), "instance directory (disk) left behind");
    assert!(!link_exists(&tap_name(&ports[0])), "tap left behind");
    assert!(!link_exists(&bridge_name(&net)), "bridge left behind");

    // The unused base image leaves the cache (max unused age 5 s here).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cloud.driver.cached_images().contains(&image) {
        assert!(std::time::Instant::now() < deadline, "image still cached");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Two servers on one network: the second pings the first from its user
/// data, and its console shows that it got through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_network_reach_each_other() {
    let cloud = RealCloud::start().await;
    let image = cloud
        .upload("testguest", "testguest.qcow2", "qcow2", json!({}))
        .await;
    let flavor = cloud.flavor("real.1c128", 1, 128).await;
    let (net, cidr) = cloud.network().await;
    let base = u32::from(cidr.network());
    let a_ip = Ipv4Addr::from(base + 10);
    let b_ip = Ipv4Addr::from(base + 11);
    let ping = format!(
        "#!/bin/sh\nfor i in $(seq 1 90); do\n  if ping -c 1 -W 1 {a_ip} >/dev/null 2>&1; then \
         echo \"ping-ok {a_ip}\"; exit 0; fi\n  sleep 1\ndone\necho \"ping-failed {a_ip}\"\nexit 1\n"
    );
    let a = cloud
        .boot("vm-a", &flavor, &image, &net, Some(a_ip), None)
        .await;
    let b = cloud
        .boot("vm-b", &flavor, &image, &net, Some(b_ip), Some(&ping))
        .await;
    for id in [&a, &b] {
        let s = cloud.wait(id, &["ACTIVE", "ERROR"]).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
    }
    let console_a = cloud.wait_marker(&a, "READY", 1).await;
    assert_eq!(value(&console_a, "IP"), a_ip.to_string());
    let console_b = cloud.wait_marker(&b, "READY", 1).await;
    assert_eq!(value(&console_b, "IP"), b_ip.to_string());
    let out: Vec<String> = markers(&console_b)
        .into_iter()
        .filter_map(|m| m.strip_prefix("USERDATA_OUT=").map(str::to_owned))
        .collect();
    assert!(
        out.contains(&format!("ping-ok {a_ip}")),
        "vm-b could not reach vm-a: {out:?}\n{console_b}"
    );
    assert_eq!(value(&console_b, "USERDATA_RC"), "0");
    for id in [&a, &b] {
        cloud.delete(id).await;
        assert!(!domain_exists(id));
    }
}

/// A real QEMU guest on the libvirt host (the root namespace) and a
/// namespace guest on another host share a VXLAN network: the QEMU guest
/// pings the other from its user data, and its console says it got
/// through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_guest_reaches_a_namespace_guest_on_another_host() {
    let cloud = RealCloud::start_with_bed(1).await;
    let image = cloud
        .upload("testguest", "testguest.qcow2", "qcow2", json!({}))
        .await;
    let flavor = cloud.flavor("real.1c128", 1, 128).await;
    let (net, cidr) = cloud.network().await;
    let base = u32::from(cidr.network());
    let ns_ip = Ipv4Addr::from(base + 20);
    let bed = cloud.bed.as_ref().unwrap();
    let far = json!({"name": "ns-guest", "flavorRef": flavor, "imageRef": image,
        "networks": [{"uuid": net, "fixed_ip": ns_ip.to_string()}],
        "availability_zone": format!("nova:{}", bed.hosts[0].name)});
    let r = cloud
        .client()
        .post("/compute/v2.1/servers", json!({ "server": far }))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let far_id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = cloud.wait(&far_id, &["ACTIVE", "ERROR"]).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let ping = format!(
        "#!/bin/sh\nfor i in $(seq 1 90); do\n  if ping -c 1 -W 1 {ns_ip} >/dev/null 2>&1; then \
         echo \"ping-ok {ns_ip}\"; exit 0; fi\n  sleep 1\ndone\necho \"ping-failed {ns_ip}\"\nexit 1\n"
    );
    let r = cloud
        .client()
        .post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "vm-q", "flavorRef": flavor, "imageRef": image,
                "networks": [{"uuid": net}], "availability_zone": format!("nova:{HOST}"),
                "user_data": base64::engine::general_purpose::STANDARD.encode(&ping)}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let vm = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = cloud.wait(&vm, &["ACTIVE", "ERROR"]).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(
        s["OS-EXT-SRV-ATTR:host"], HOST,
        "the QEMU guest is on the libvirt host"
    );
    let console = cloud.wait_marker(&vm, "READY", 1).await;
    let out: Vec<String> = markers(&console)
        .into_iter()
        .filter_map(|m| m.strip_prefix("USERDATA_OUT=").map(str::to_owned))
        .collect();
    assert!(
        out.contains(&format!("ping-ok {ns_ip}")),
        "the QEMU guest could not reach the namespace guest: {out:?}\n{console}"
    );
    for id in [&vm, &far_id] {
        cloud.delete(id).await;
    }
}

/// A real QEMU guest behind a router gets a floating IP, and this machine
/// reaches a TCP port the guest opens, through it (the external network
/// is the host's own test uplink: traffic stays on this machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_guest_is_reached_through_its_floating_ip() {
    let cloud = RealCloud::start().await;
    let c = cloud.client();
    let image = cloud
        .upload("testguest", "testguest.qcow2", "qcow2", json!({}))
        .await;
    let flavor = cloud.flavor("real.1c128", 1, 128).await;
    let public = create_external_network(
        c,
        "public",
        support::PUBLIC_PHYSNET,
        support::PUBLIC_CIDR,
        json!({"gateway_ip": "172.29.251.1",
            "allocation_pools": [{"start": "172.29.251.10", "end": "172.29.251.100"}]}),
    )
    .await;
    let (net, _) = cloud.network().await;
    let subnet = first_subnet(c, &net).await;
    let router = create_router(c, &public, &subnet).await;
    let r = c
        .post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    let web = r.body["security_group"]["id"].as_str().unwrap().to_owned();
    let r = c
        .post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": web, "direction": "ingress",
                "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 8080,
                "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let serve = "#!/bin/sh\n(while true; do nc -l -p 8080 -e echo hello-from-the-vm; done) \
                 </dev/null >/dev/null 2>&1 &\necho serving\n";
    let r = c
        .post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "vm-fip", "flavorRef": flavor, "imageRef": image,
                "networks": [{"uuid": net}],
                "security_groups": [{"name": "default"}, {"name": "web"}],
                "user_data": base64::engine::general_purpose::STANDARD.encode(serve)}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let vm = r.body["server"]["id"].as_str().unwrap().to_owned();
    let s = cloud.wait(&vm, &["ACTIVE", "ERROR"]).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    cloud.wait_marker(&vm, "READY", 1).await;
    let port = port_ids(&cloud, &vm).await.remove(0);
    let r = c
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public, "port_id": port}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let fip = r.body["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let fip_id = r.body["floatingip"]["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = cloud_dataplane::cmd::run("busybox", ["nc", "-w", "2", &fip, "8080"])
            .await
            .unwrap_or_default();
        if got.trim() == "hello-from-the-vm" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "this machine did not reach the guest at {fip}:8080 (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cloud.delete(&vm).await;
    let r = c
        .delete(&format!("/network/v2.0/floatingips/{fip_id}"))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = c
        .put(
            &format!("/network/v2.0/routers/{router}/remove_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.delete(&format!("/network/v2.0/routers/{router}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
}

/// An image whose bytes no longer match its record fails the build with a
/// fault naming the checksum mismatch, leaves nothing on the host and is
/// not cached; the next boot on that host works (here an image booting its
/// kernel and ramdisk directly, through `kernel_id` / `ramdisk_id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_image_fails_the_build_and_the_host_boots_the_next_one() {
    let cloud = RealCloud::start().await;
    let corrupt = cloud
        .upload("corrupt", "testguest.qcow2", "qcow2", json!({}))
        .await;
    // The stored bytes rot after the upload recorded their checksums.
    let stored = cloud
        .plane
        .api
        .data_dir
        .path()
        .join("images")
        .join(&corrupt);
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    let flavor = cloud.flavor("real.1c128", 1, 128).await;
    let (net, _) = cloud.network().await;

    let bad = cloud
        .boot("vm-bad", &flavor, &corrupt, &net, None, None)
        .await;
    let server = cloud.wait(&bad, &["ERROR", "ACTIVE"]).await;
    assert_eq!(server["status"], "ERROR", "{server}");
    let fault = server["fault"]["message"].as_str().unwrap_or_default();
    assert!(
        fault.contains("checksum mismatch") && fault.contains(&corrupt),
        "{server}"
    );
    assert!(!domain_exists(&bad));
    assert!(
        !cloud
            .driver
            .instance_path(InstanceId::parse(&bad).unwrap())
            .exists()
    );
    assert!(
        !cloud.driver.cached_images().contains(&corrupt),
        "not cached"
    );
    // The host set the network up for the spawn; with the failed build's
    // ports released, it takes it down again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while link_exists(&bridge_name(&net)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge of a failed build stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let kernel = cloud
        .upload(
            "kernel",
            "testguest-vmlinuz",
            "aki",
            json!({"container_format": "aki"}),
        )
        .await;
    let ramdisk = cloud
        .upload(
            "ramdisk",
            "testguest-initrd.img",
            "ari",
            json!({"container_format": "ari"}),
        )
        .await;
    let good = cloud
        .upload(
            "good",
            "testguest.qcow2",
            "qcow2",
            json!({"kernel_id": kernel, "ramdisk_id": ramdisk}),
        )
        .await;
    let id = cloud
        .boot("vm-good", &flavor, &good, &net, None, None)
        .await;
    let server = cloud.wait(&id, &["ACTIVE", "ERROR"]).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let console = cloud.wait_marker(&id, "READY", 1).await;
    // Booted the kernel directly, with Nova's default command line.
    assert_eq!(
        value(&console, "CMDLINE"),
        "root=/dev/vda console=tty0 console=ttyS0"
    );
    assert_eq!(value(&console, "UUID"), id);
    assert_eq!(value(&console, "IP"), fixed_ip(&server));
    let mut cached = cloud.driver.cached_images();
    cached.sort();
    let mut want = vec![good.clone(), kernel.clone(), ramdisk.clone()];
    want.sort();
    assert_eq!(cached, want);
    for s in [&bad, &id] {
        cloud.delete(s).await;
    }
    assert!(!domain_exists(&id));
}

/// Boot-to-READY through the stack vs plain QEMU; see docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: minutes of TCG boots; run with --run-ignored only"]
async fn boot_overhead_benchmark() {
    bench::run().await;
}
