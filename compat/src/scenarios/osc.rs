//! The `openstack` CLI session: every command a user of a small cloud
//! types, in that order, with assertions on the output (layer 3 — a
//! router, a floating IP on the server — in [`super::l3`]). It runs whole on
//! both layouts (about 75 s on cloud-aio, 85 s on the multi-process
//! deployment: each command costs the CLI about a second, and `--wait`
//! polls every 5 s).

use super::{assert_contains, column, l3, one, with};
use crate::cloud::Cloud;
use crate::tools::{DEMO_CLOUD, DEMO_PASSWORD, Tools};
use serde_json::Value;
use std::time::{Duration, Instant};

/// An ed25519 public key and its MD5 fingerprint as computed by
/// `ssh-keygen -l -E md5` (what Nova shows).
pub const PUBLIC_KEY: &str = "ssh-ed25519 \
    AAAAC3NzaC1lZDI1NTE5AAAAIID8WWrhACz4lyISpcoGgzOdYeWT+2zlZCpM0LFmUQhS compat@test";
/// See [`PUBLIC_KEY`].
pub const PUBLIC_KEY_FINGERPRINT: &str = "b8:88:37:48:7f:8f:a9:b0:49:f5:4c:93:04:00:2e:9a";

/// Polls `server show` until the server has `status`.
pub async fn wait_status(t: &Tools, server: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = t
            .osc(&["server", "show", server, "-c", "status", "-f", "value"])
            .await;
        if s.trim() == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{server} stayed {} instead of {status}",
            s.trim()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The whole session; leaves the cloud as it found it.
pub async fn run(cloud: &Cloud, t: &Tools) {
    // Identity.
    let token = t.osc_json(&["token", "issue"]).await;
    for key in ["id", "project_id", "user_id", "expires"] {
        assert!(
            token[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} in {token}"
        );
    }

    // The token's catalog is where the clients learn every URL: one public
    // endpoint per service, in RegionOne, under the cloud's address.
    let catalog = t.osc_json(&["catalog", "list"]).await;
    for (ty, path) in [
        ("identity", "/identity"),
        ("compute", "/compute/v2.1"),
        ("image", "/image"),
        ("network", "/network"),
    ] {
        let ep = &one(&catalog, "Type", ty)["Endpoints"];
        assert_eq!(ep.as_array().map(Vec::len), Some(1), "{catalog}");
        assert_eq!(ep[0]["interface"], "public");
        assert_eq!(ep[0]["region_id"], "RegionOne");
        assert_eq!(ep[0]["url"], format!("{}{path}", cloud.url), "{catalog}");
    }
    // Version discovery through that catalog: compute advertises exactly
    // the microversion range it implements, 2.1..2.1.
    let versions = t.osc_json(&["versions", "show"]).await;
    let compute = with(&versions, "Service Type", "compute");
    let current = compute
        .iter()
        .find(|v| v["Status"] == "CURRENT")
        .unwrap_or_else(|| panic!("no current compute version in {versions}"));
    assert_eq!(current["Min Microversion"], "2.1", "{versions}");
    assert_eq!(current["Max Microversion"], "2.1", "{versions}");
    one(&versions, "Service Type", "network");

    // Flavors.
    let f = t
        .osc_json(&[
            "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "c-flavor",
        ])
        .await;
    assert_eq!(f["name"], "c-flavor");
    assert_eq!(f["ram"], 256);
    assert_eq!(f["vcpus"], 1);
    assert_eq!(f["disk"], 1);
    let flavors = t.osc_json(&["flavor", "list"]).await;
    assert_eq!(one(&flavors, "Name", "c-flavor")["RAM"], 256);
    one(&flavors, "Name", "m1.tiny");
    let f = t.osc_json(&["flavor", "show", "c-flavor"]).await;
    assert_eq!(f["os-flavor-access:is_public"], true);
    assert_eq!(f["vcpus"], 1);

    // Images: upload from a file, list, show, download, (delete at the end).
    let bytes: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(t.path("disk.qcow2"), &bytes).unwrap();
    let file = t.path("disk.qcow2");
    let img = t
        .osc_json(&[
            "image",
            "create",
            "--file",
            file.to_str().unwrap(),
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "c-image",
        ])
        .await;
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["disk_format"], "qcow2");
    assert_eq!(img["size"], bytes.len());
    let images = t.osc_json(&["image", "list"]).await;
    assert_eq!(one(&images, "Name", "c-image")["Status"], "active");
    let img = t.osc_json(&["image", "show", "c-image"]).await;
    assert_eq!(img["container_format"], "bare");
    let out = t.path("saved.img");
    t.osc(&["image", "save", "--file", out.to_str().unwrap(), "c-image"])
        .await;
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "downloaded image differs"
    );

    // Networks.
    let net = t.osc_json(&["network", "create", "c-net"]).await;
    assert_eq!(net["status"], "ACTIVE");
    assert_eq!(net["name"], "c-net");
    let sub = t
        .osc_json(&[
            "subnet",
            "create",
            "--network",
            "c-net",
            "--subnet-range",
            "10.20.0.0/24",
            "c-sub",
        ])
        .await;
    assert_eq!(sub["cidr"], "10.20.0.0/24");
    assert_eq!(sub["gateway_ip"], "10.20.0.1");
    assert_eq!(sub["network_id"], net["id"]);
    let nets = t.osc_json(&["network", "list"]).await;
    let listed = one(&nets, "Name", "c-net");
    assert_eq!(listed["Subnets"], serde_json::json!([sub["id"]]));
    let subs = t.osc_json(&["subnet", "list"]).await;
    assert_eq!(one(&subs, "Name", "c-sub")["Subnet"], "10.20.0.0/24");
    let port = t
        .osc_json(&[
            "port",
            "create",
            "--network",
            "c-net",
            "--fixed-ip",
            "subnet=c-sub,ip-address=10.20.0.50",
            "c-port",
        ])
        .await;
    assert_eq!(port["fixed_ips"][0]["ip_address"], "10.20.0.50", "{port}");
    assert_eq!(port["fixed_ips"][0]["subnet_id"], sub["id"]);

    // Security groups.
    let sg = t.osc_json(&["security", "group", "create", "c-sg"]).await;
    assert_eq!(sg["name"], "c-sg");
    let rule = t
        .osc_json(&[
            "security",
            "group",
            "rule",
            "create",
            "--protocol",
            "tcp",
            "--dst-port",
            "22",
            "c-sg",
        ])
        .await;
    assert_eq!(rule["protocol"], "tcp");
    assert_eq!(rule["port_range_min"], 22);
    assert_eq!(rule["port_range_max"], 22);
    assert_eq!(rule["direction"], "ingress");
    assert_eq!(rule["security_group_id"], sg["id"]);

    // Keypairs: with a supplied public key and without (the CLI then
    // generates one and saves the private key).
    std::fs::write(t.path("k.pub"), format!("{PUBLIC_KEY}\n")).unwrap();
    let pubfile = t.path("k.pub");
    let k = t
        .osc_json(&[
            "keypair",
            "create",
            "--public-key",
            pubfile.to_str().unwrap(),
            "c-key",
        ])
        .await;
    assert_eq!(k["name"], "c-key");
    assert_eq!(k["fingerprint"], PUBLIC_KEY_FINGERPRINT);
    let private = t.path("gen.pem");
    let k2 = t
        .osc_json(&[
            "keypair",
            "create",
            "--private-key",
            private.to_str().unwrap(),
            "c-key2",
        ])
        .await;
    assert_eq!(k2["name"], "c-key2");
    assert_contains(&std::fs::read_to_string(&private).unwrap(), "PRIVATE KEY");
    let keys = t.osc_json(&["keypair", "list"]).await;
    assert_eq!(
        one(&keys, "Name", "c-key")["Fingerprint"],
        PUBLIC_KEY_FINGERPRINT
    );
    one(&keys, "Name", "c-key2");

    // A server's life.
    std::fs::write(t.path("user-data"), "#cloud-config\nhostname: c-vm\n").unwrap();
    let ud = t.path("user-data");
    let s = t
        .osc_json(&[
            "server",
            "create",
            "--flavor",
            "c-flavor",
            "--image",
            "c-image",
            "--network",
            "c-net",
            "--key-name",
            "c-key",
            "--user-data",
            ud.to_str().unwrap(),
            "--wait",
            "c-vm",
        ])
        .await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["name"], "c-vm");
    assert_eq!(s["key_name"], "c-key");
    assert_contains(s["flavor"].as_str().unwrap_or_default(), "c-flavor");
    assert_contains(s["image"].as_str().unwrap_or_default(), "c-image");
    let addr = s["addresses"]["c-net"][0].as_str().unwrap_or_default();
    assert!(addr.starts_with("10.20.0."), "address {addr} of {s}");
    let vm_id = s["id"].as_str().unwrap().to_owned();

    let list = t
        .osc_json(&[
            "server", "list", "--name", "c-vm", "--status", "ACTIVE", "--long",
        ])
        .await;
    let row = one(&list, "Name", "c-vm");
    assert_eq!(row["ID"], vm_id.as_str());
    assert_eq!(row["Status"], "ACTIVE");
    assert_eq!(row["Power State"], 1, "{row}");
    assert_eq!(row["Flavor Name"], "c-flavor");
    assert_eq!(row["Image Name"], "c-image");
    assert!(row["Host"].as_str().is_some_and(|h| !h.is_empty()), "{row}");
    assert_eq!(row["Networks"]["c-net"][0], addr);
    // Filters narrow: nothing is SHUTOFF yet.
    let none = t
        .osc_json(&["server", "list", "--name", "c-vm", "--status", "SHUTOFF"])
        .await;
    assert_eq!(none, serde_json::json!([]));

    let shown = t.osc_json(&["server", "show", "c-vm"]).await;
    assert_eq!(shown["id"], vm_id.as_str());
    assert_eq!(shown["OS-EXT-STS:vm_state"], "active");
    assert_eq!(shown["OS-EXT-AZ:availability_zone"], "nova");
    assert_eq!(
        column(&shown["security_groups"], "name"),
        ["default".to_owned()]
    );

    let log = t.osc(&["console", "log", "show", "c-vm"]).await;
    assert_contains(&log, "c-vm");

    t.osc(&["server", "stop", "c-vm"]).await;
    wait_status(t, "c-vm", "SHUTOFF").await;
    let s = t.osc_json(&["server", "show", "c-vm"]).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 4, "{s}");
    t.osc(&["server", "start", "c-vm"]).await;
    wait_status(t, "c-vm", "ACTIVE").await;
    t.osc(&["server", "reboot", "--wait", "c-vm"]).await;
    wait_status(t, "c-vm", "ACTIVE").await;
    t.osc(&["server", "reboot", "--hard", "--wait", "c-vm"])
        .await;
    wait_status(t, "c-vm", "ACTIVE").await;
    let s = t.osc_json(&["server", "show", "c-vm"]).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    super::server_states::run(t, "c-vm").await;
    super::server_ports::run(t, "c-vm", "c-net").await;
    super::server_console::run(t, "c-vm").await;
    super::server_rebuild::run(t, "c-vm", "c-image").await;
    super::server_rescue::run(t, "c-vm").await;
    super::server_shelve::run(t, "c-vm").await;
    super::server_snapshot::run(t, "c-vm").await;

    // Reaching it from outside: a router to the external network and a
    // floating IP.
    let public = l3::ensure_public(cloud, t).await;
    l3::run(t, &public, "c-vm", "c-net", "c-sub").await;

    // Server groups: boot into one with the scheduler hint.
    let mut servers = vec!["c-vm"];
    let g = t
        .osc_json(&[
            "server",
            "group",
            "create",
            "--policy",
            "anti-affinity",
            "c-group",
        ])
        .await;
    assert_eq!(g["name"], "c-group");
    assert_eq!(g["policies"], serde_json::json!(["anti-affinity"]), "{g}");
    let hint = format!("group={}", g["id"].as_str().unwrap());
    let s2 = t
        .osc_json(&[
            "server",
            "create",
            "--flavor",
            "c-flavor",
            "--image",
            "c-image",
            "--network",
            "c-net",
            "--hint",
            &hint,
            "--wait",
            "c-vm2",
        ])
        .await;
    assert_eq!(s2["status"], "ACTIVE", "{s2}");
    let g = t.osc_json(&["server", "group", "show", "c-group"]).await;
    assert_eq!(g["members"], serde_json::json!([s2["id"]]), "{g}");
    // Anti-affinity: another host than c-vm's.
    let a = t.osc_json(&["server", "show", "c-vm"]).await;
    assert_ne!(
        a["OS-EXT-SRV-ATTR:host"], s2["OS-EXT-SRV-ATTR:host"],
        "anti-affinity members share a host"
    );
    servers.push("c-vm2");

    // Quotas and limits.
    let quota = t.osc_json(&["quota", "show"]).await;
    let limit = |name: &str| -> Value { one(&quota, "Resource", name)["Limit"].clone() };
    assert_eq!(limit("instances"), 10, "{quota}");
    assert_eq!(limit("cores"), 20);
    assert_eq!(limit("security_groups"), 10);
    assert_eq!(limit("networks"), 100);
    let limits = t.osc_json(&["limits", "show", "--absolute"]).await;
    let value = |name: &str| one(&limits, "Name", name)["Value"].clone();
    assert_eq!(value("max_total_instances"), 10, "{limits}");
    assert_eq!(value("total_instances_used"), servers.len());
    assert_eq!(value("total_cores_used"), servers.len());
    assert_eq!(value("total_ram_used"), 256 * servers.len());

    // Admin views.
    let hv = t.osc_json(&["hypervisor", "list"]).await;
    assert_eq!(hv.as_array().unwrap().len(), cloud.hosts, "{hv}");
    assert_eq!(with(&hv, "State", "up").len(), cloud.hosts, "{hv}");
    let services = t.osc_json(&["compute", "service", "list"]).await;
    assert_eq!(
        with(&services, "Binary", "cloud-compute").len(),
        cloud.hosts,
        "{services}"
    );
    for binary in ["cloud-conductor", "cloud-scheduler"] {
        let rows = with(&services, "Binary", binary);
        assert!(!rows.is_empty(), "{binary} missing from {services}");
        assert!(rows.iter().all(|r| r["State"] == "up"), "{services}");
    }

    // Identity: a project with a member, as an admin sets one up; the
    // member sees none of the admin's servers and is refused admin views
    // with the policy's reason.
    let p = t.osc_json(&["project", "create", "compat-demo"]).await;
    assert_eq!(p["name"], "compat-demo");
    assert_eq!(p["enabled"], true);
    let u = t
        .osc_json(&[
            "user",
            "create",
            "--project",
            "compat-demo",
            "--password",
            DEMO_PASSWORD,
            "demo",
        ])
        .await;
    assert_eq!(u["name"], "demo");
    assert_eq!(u["default_project_id"], p["id"]);
    t.osc(&[
        "role",
        "add",
        "--project",
        "compat-demo",
        "--user",
        "demo",
        "member",
    ])
    .await;
    let roles = t
        .osc_json(&[
            "role",
            "assignment",
            "list",
            "--user",
            "demo",
            "--project",
            "compat-demo",
            "--names",
        ])
        .await;
    let row = one(&roles, "Role", "member");
    assert_eq!(row["User"], "demo@Default", "{roles}");
    assert_eq!(row["Project"], "compat-demo@Default", "{roles}");
    let demo_servers = t
        .osc_json(&["--os-cloud", DEMO_CLOUD, "server", "list"])
        .await;
    assert_eq!(demo_servers, serde_json::json!([]));
    l3::member(t, &public).await;
    let err = t
        .osc_fails(&["--os-cloud", DEMO_CLOUD, "hypervisor", "list"])
        .await;
    assert_contains(&err, "403");
    assert_contains(&err, "needs the 'admin' role");
    t.osc(&["user", "delete", "demo"]).await;
    t.osc(&["project", "delete", "compat-demo"]).await;
    let projects = t.osc_json(&["project", "list"]).await;
    assert!(
        with(&projects, "Name", "compat-demo").is_empty(),
        "{projects}"
    );

    // Tear down, checking each deletion through the listing.
    let mut args = vec!["server", "delete", "--wait"];
    args.extend(&servers);
    t.osc(&args).await;
    assert_eq!(t.osc_json(&["server", "list"]).await, serde_json::json!([]));
    t.osc(&["server", "group", "delete", "c-group"]).await;
    t.osc(&["port", "delete", "c-port"]).await;
    t.osc(&["keypair", "delete", "c-key", "c-key2"]).await;
    assert_eq!(
        t.osc_json(&["keypair", "list"]).await,
        serde_json::json!([])
    );
    t.osc(&["security", "group", "delete", "c-sg"]).await;
    t.osc(&["subnet", "delete", "c-sub"]).await;
    t.osc(&["network", "delete", "c-net"]).await;
    assert!(with(&t.osc_json(&["network", "list"]).await, "Name", "c-net").is_empty());
    l3::remove_public(cloud, t).await;
    t.osc(&["image", "delete", "c-image"]).await;
    assert!(with(&t.osc_json(&["image", "list"]).await, "Name", "c-image").is_empty());
    t.osc(&["flavor", "delete", "c-flavor"]).await;
    let flavors = t.osc_json(&["flavor", "list"]).await;
    assert!(with(&flavors, "Name", "c-flavor").is_empty());
}
