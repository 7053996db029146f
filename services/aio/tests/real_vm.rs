//! cloud-aio with the libvirt driver, as a newcomer uses it: the shared
//! test guest boots behind a router, gets a floating IP from `public`, and
//! this machine reaches a TCP port the guest opens, through that address.
//! Traffic stays on this machine (the external network is the host's own
//! uplink). Needs root, libvirtd and the data plane's tools
//! (`deploy/libvirt-host.sh`); fails, never skips, without them.

use base64::Engine;
use cloud_test_utils::{Client, free_port};
use cloud_test_utils::{create_network, create_router, first_subnet};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "real-vm";
/// Boot to READY under TCG on a busy 2-core host, with room.
const BOOT: Duration = Duration::from_secs(240);

/// Stops cloud-aio at the end, and removes what it left on this machine
/// even when the test failed half-way: its guests (domains whose files are
/// in its data directory), its networks and routers (its data plane's
/// record), and the uplink when this test made it (a cloud-aio already
/// running here keeps its own).
struct Aio {
    child: Child,
    data_dir: std::path::PathBuf,
    made_uplink: bool,
}

impl Drop for Aio {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let dir = self.data_dir.display().to_string();
        let names = Command::new("virsh")
            .args(["list", "--all", "--name"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for name in names.lines().filter(|n| n.starts_with("instance-")) {
            let xml = Command::new("virsh")
                .args(["dumpxml", name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if xml.contains(&dir) {
                let _ = Command::new("virsh").args(["destroy", name]).status();
                let _ = Command::new("virsh")
                    .args(["undefine", "--nvram", name])
                    .status();
            }
        }
        let state_dir = self.data_dir.join("libvirt/network");
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let plane = cloud_dataplane::DataPlane::new(cloud_dataplane::DataPlaneConfig {
                state_dir,
                ..cloud_dataplane::DataPlaneConfig::default()
            });
            let _ = rt.block_on(plane.apply(&cloud_driver::HostNetwork::default()));
        })
        .join();
        if self.made_uplink {
            let _ = Command::new("ip")
                .args(["link", "del", "cloudpub0"])
                .status();
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", "cloud_uplink"])
                .status();
        }
    }
}

async fn ok(r: cloud_test_utils::Reply, what: &str) -> Value {
    assert!(r.status < 300, "{what}: {} {}", r.status, r.body);
    r.body
}

async fn login(base: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .post(format!("{base}/identity/v3/auth/tokens"))
        .json(
            &json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}),
        )
        .send()
        .await
        .ok()?;
    (r.status() == 201).then(|| r.headers()["x-subject-token"].to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_guest_of_cloud_aio_is_reached_through_a_floating_ip_from_public() {
    let dir = tempfile::tempdir().unwrap();
    // QEMU (libvirt-qemu) must reach the data directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let made_uplink = !Command::new("ip")
        .args(["link", "show", "cloudpub0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_cloud-aio"))
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--driver",
            "libvirt",
        ])
        .env("CLOUD_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut aio = Aio {
        child,
        data_dir: std::fs::canonicalize(dir.path()).unwrap(),
        made_uplink,
    };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let token = loop {
        if let Some(t) = login(&base).await {
            break t;
        }
        if let Ok(Some(status)) = aio.child.try_wait() {
            panic!("cloud-aio --driver libvirt exited with {status}: run deploy/libvirt-host.sh");
        }
        assert!(Instant::now() < deadline, "cloud-aio did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let c = Client::new(&base).with_token(&token);

    // The test guest, as an image, and a flavor for it.
    let guest =
        cloud_test_utils::guest::test_guest(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")));
    let image = cloud_test_utils::upload_image(
        &c,
        "testguest",
        "qcow2",
        std::fs::read(guest.join("testguest.qcow2")).unwrap(),
        json!({}),
    )
    .await;
    ok(
        c.post(
            "/compute/v2.1/flavors",
            json!({"flavor": {"name": "t", "id": "t", "vcpus": 1, "ram": 128, "disk": 1}}),
        )
        .await,
        "flavor",
    )
    .await;
    // A network behind a router on `public`, and a group opening 8080.
    let public = ok(c.get("/network/v2.0/networks?name=public").await, "public").await["networks"]
        [0]["id"]
        .as_str()
        .expect("cloud-aio made no 'public' network")
        .to_owned();
    let (net, _) = create_network(&c, "aio-net", "10.78.0.0/24", json!({})).await;
    let subnet = first_subnet(&c, &net).await;
    let router = create_router(&c, &public, &subnet).await;
    let g = ok(
        c.post(
            "/network/v2.0/security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await,
        "group",
    )
    .await;
    ok(
        c.post(
            "/network/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": g["security_group"]["id"],
                "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 8080, "port_range_max": 8080,
                "remote_ip_prefix": "0.0.0.0/0"}}),
        )
        .await,
        "rule",
    )
    .await;
    let serve = "#!/bin/sh\n(while true; do nc -l -p 8080 -e echo hello-from-aio; done) \
                 </dev/null >/dev/null 2>&1 &\necho serving\n";
    let vm = ok(
        c.post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "vm1", "flavorRef": "t", "imageRef": image,
                "networks": [{"uuid": net}],
                "security_groups": [{"name": "default"}, {"name": "web"}],
                "user_data": base64::engine::general_purpose::STANDARD.encode(serve)}}),
        )
        .await,
        "boot",
    )
    .await["server"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = cloud_test_utils::wait_for_status(&c, &vm, &["ACTIVE", "ERROR"], BOOT).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    let deadline = Instant::now() + BOOT;
    loop {
        let out = c
            .post(
                &format!("/compute/v2.1/servers/{vm}/action"),
                json!({"os-getConsoleOutput": {}}),
            )
            .await;
        if out.body["output"]
            .as_str()
            .unwrap_or_default()
            .contains("TESTGUEST READY")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the guest never got READY");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // `openstack floating ip create public` + `server add floating ip`.
    let vm_port = ok(
        c.get(&format!("/network/v2.0/ports?device_id={vm}")).await,
        "ports",
    )
    .await["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fip = ok(
        c.post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public, "port_id": vm_port}}),
        )
        .await,
        "floating ip",
    )
    .await;
    let address = fip["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(address.starts_with("172.24.4."), "{fip}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = Command::new("busybox")
            .args(["nc", "-w", "2", &address, "8080"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if got == "hello-from-aio" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "this machine did not reach the guest at {address}:8080 (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Leave nothing running: the server, the floating IP and the router.
    let fip_id = fip["floatingip"]["id"].as_str().unwrap();
    ok(
        c.delete(&format!("/compute/v2.1/servers/{vm}")).await,
        "delete",
    )
    .await;
    cloud_test_utils::wait_for_status(&c, &vm, &["DELETED"], BOOT).await;
    ok(
        c.delete(&format!("/network/v2.0/floatingips/{fip_id}"))
            .await,
        "fip",
    )
    .await;
    ok(
        c.put(
            &format!("/network/v2.0/routers/{router}/remove_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await,
        "interface",
    )
    .await;
    ok(
        c.delete(&format!("/network/v2.0/routers/{router}")).await,
        "router",
    )
    .await;
    drop(aio);
}
