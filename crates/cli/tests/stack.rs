//! `cloud plan|apply|destroy` against a running cloud: the first apply
//! creates everything, the second changes nothing and says so, a flavor
//! change replaces that server only, a network dropped from the file is
//! deleted after what uses it, and applies interrupted in every way
//! (crash right after a create, kill -9 half way, servers going to ERROR)
//! converge when run again, without duplicates.

mod common;

use common::{Cloud, snapshot};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA5BXW5G1Iyj42wmvnMkpmOdFwnT/msLBF1XaEVBh13s test";

fn stack(web2_flavor: &str, with_db: bool) -> String {
    let mut s = format!(
        "stack: demo
keypairs:
  - name: deploy
    public_key: {KEY}
server_groups:
  - {{name: spread, policy: anti-affinity}}
security_groups:
  - name: web
    description: HTTP in
    rules:
      - {{protocol: tcp, port: 80, remote_ip_prefix: 0.0.0.0/0}}
      - {{protocol: tcp, port: 22, remote_group: web}}
networks:
  - name: app
{db_net}subnets:
  - {{name: app-v4, network: app, cidr: 10.0.1.0/24}}
{db_sub}servers:
  - name: web-1
    flavor: m1.tiny
    image: cirros
    networks: [app]
    security_groups: [web]
    server_group: spread
    key_name: deploy
    metadata: {{role: web}}
  - name: web-2
    flavor: {web2_flavor}
    image: cirros
    networks: [app]
    security_groups: [web]
    server_group: spread
",
        db_net = if with_db { "  - name: db\n" } else { "" },
        db_sub = if with_db {
            "  - {name: db-v4, network: db, cidr: 10.0.2.0/24}\n"
        } else {
            ""
        },
    );
    if with_db {
        s.push_str(
            "  - name: db-1
    flavor: m1.tiny
    image: cirros
    networks: [{network: db, fixed_ip: 10.0.2.10}]
",
        );
    }
    s
}

/// `name -> id` of a kind of resource, through the CLI.
async fn ids(cloud: &Cloud, args: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut a = args.to_vec();
    a.extend(["-f", "json", "-c", "id", "-c", "name"]);
    let out = cloud.run(&a).await.json();
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in out.as_array().unwrap() {
        m.entry(item["name"].as_str().unwrap().to_owned())
            .or_default()
            .push(item["id"].as_str().unwrap().to_owned());
    }
    m
}

/// Every stack resource exists exactly once and every server is ACTIVE.
async fn assert_converged(cloud: &Cloud, with_db: bool) {
    let servers = cloud
        .run(&["list", "-f", "json", "-c", "name", "-c", "status"])
        .await
        .json();
    let mut names: Vec<(String, String)> = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort();
    let mut want = vec!["web-1", "web-2"];
    if with_db {
        want.insert(0, "db-1");
    }
    assert_eq!(
        names,
        want.iter()
            .map(|n| (n.to_string(), "ACTIVE".to_string()))
            .collect::<Vec<_>>()
    );
    let nets = ids(cloud, &["network", "list"]).await;
    assert_eq!(
        nets.keys().cloned().collect::<Vec<_>>(),
        if with_db {
            vec!["app", "db"]
        } else {
            vec!["app"]
        }
    );
    assert!(nets.values().all(|v| v.len() == 1), "{nets:?}");
    let subnets = ids(cloud, &["subnet", "list"]).await;
    assert!(subnets.values().all(|v| v.len() == 1), "{subnets:?}");
    let groups = ids(cloud, &["security-group", "list"]).await;
    assert_eq!(groups["web"].len(), 1, "{groups:?}");
    let rules = cloud
        .run(&["security-group", "rule", "list", "web", "-f", "json"])
        .await
        .json();
    let ingress = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .count();
    assert_eq!(ingress, 2, "{rules}");
    assert_eq!(
        ids(cloud, &["server-group", "list"]).await["spread"].len(),
        1
    );
    assert_eq!(
        cloud
            .run(&["keypair", "list", "-f", "value", "-c", "name"])
            .await
            .ok(),
        "deploy\n"
    );
}

async fn start() -> Cloud {
    let cloud = Cloud::start(3).await;
    cloud.image("cirros").await;
    cloud
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_apply_change_remove_destroy() {
    let cloud = start().await;
    let file = cloud.write("stack.yaml", &stack("m1.tiny", true));
    let f = file.to_str().unwrap();
    let state = cloud.path("stack.state.json");

    // Plan and dry run write nothing; an unconfirmed apply does nothing.
    let plan = cloud.run(&["plan", "-f", f]).await;
    snapshot("plan-create.txt", &plan.ok().replace(f, "stack.yaml"));
    let dry = cloud.run(&["apply", "-f", f, "--dry-run"]).await;
    assert!(dry.ok().ends_with("Dry run: nothing was changed.\n"));
    assert!(!state.exists());
    let unconfirmed = cloud.run(&["apply", "-f", f]).await;
    assert_eq!(unconfirmed.code, 8, "{}", unconfirmed.stderr);
    assert!(!state.exists());
    assert!(ids(&cloud, &["network", "list"]).await.is_empty());

    // The first apply creates everything.
    let first = cloud.run(&["apply", "-f", f, "--auto-approve"]).await;
    let text = first.ok().replace(f, "stack.yaml");
    snapshot("apply-create.txt", &text);
    assert_converged(&cloud, true).await;
    let before = ids(&cloud, &["list"]).await;

    // The second changes nothing and says so.
    let second = cloud.run(&["apply", "-f", f, "--auto-approve"]).await;
    assert_eq!(second.ok(), format!("No changes: the cloud matches {f}.\n"));
    assert_eq!(ids(&cloud, &["list"]).await, before);

    // A new flavor for web-2 replaces web-2, and nothing else.
    cloud.write("stack.yaml", &stack("m1.small", true));
    let plan = cloud.run(&["plan", "-f", f]).await;
    snapshot("plan-flavor.txt", plan.ok());
    cloud.run(&["apply", "-f", f, "--auto-approve"]).await.ok();
    let after = ids(&cloud, &["list"]).await;
    assert_ne!(after["web-2"], before["web-2"]);
    assert_eq!(after["web-1"], before["web-1"]);
    assert_eq!(after["db-1"], before["db-1"]);
    let flavor = cloud
        .run(&["show", "web-2", "-f", "json", "-c", "flavor"])
        .await
        .json();
    assert_eq!(flavor["flavor"]["id"], "2");

    // Dropping the db network (its subnet and server too): deleted, users
    // first. Keeping a server that uses a dropped network is refused.
    let mut dangling = stack("m1.small", false);
    dangling.push_str("  - {name: db-1, flavor: m1.tiny, image: cirros, networks: [db]}\n");
    cloud.write("stack.yaml", &dangling);
    let refused = cloud.run(&["plan", "-f", f]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("server db-1 refers to network db, which the file no longer declares"),
        "{}",
        refused.stderr
    );
    cloud.write("stack.yaml", &stack("m1.small", false));
    let plan = cloud.run(&["plan", "-f", f]).await;
    snapshot("plan-remove-network.txt", plan.ok());
    cloud.run(&["apply", "-f", f, "--auto-approve"]).await.ok();
    assert_converged(&cloud, false).await;

    // Destroy deletes what the stack owns, and only that.
    cloud.run(&["network", "create", "not-ours"]).await.ok();
    let destroy = cloud.run(&["destroy", "-f", f, "--auto-approve"]).await;
    snapshot("destroy.txt", &destroy.ok().replace(f, "stack.yaml"));
    assert!(ids(&cloud, &["list"]).await.is_empty());
    assert_eq!(
        ids(&cloud, &["network", "list"])
            .await
            .keys()
            .collect::<Vec<_>>(),
        ["not-ours"]
    );
    assert!(!state.exists());
    cloud.plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_applies_converge_without_duplicates() {
    let cloud = start().await;
    let file = cloud.write("stack.yaml", &stack("m1.tiny", true));
    let f = file.to_str().unwrap();
    let state_path = cloud.path("stack.state.json");

    // 1. Death right after a create succeeded, before it was recorded: the
    //    state holds it as pending with its idempotency key.
    let crash = cloud
        .run_env(
            &["apply", "-f", f, "--auto-approve"],
            &[("CLOUD_TEST_CRASH_AFTER_CREATE", "network.app")],
        )
        .await;
    assert_eq!(crash.code, 137, "{}", crash.stderr);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert!(
        state["resources"]["network.app"]["pending"]["key"].is_string(),
        "{state}"
    );
    let plan = cloud.run(&["plan", "-f", f]).await;
    assert!(
        plan.ok()
            .contains("+   network app (resuming an interrupted create)"),
        "{}",
        plan.stdout
    );

    // 2. Killed (SIGKILL) half way through the resumed apply.
    for h in ["host-1", "host-2", "host-3"] {
        cloud
            .plane
            .driver(h)
            .set_spawn_delay(Some(Duration::from_millis(400)));
    }
    let mut child = cloud
        .command(&["apply", "-f", f, "--auto-approve"], &[])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&state_path).unwrap_or_default();
        if text.contains("\"server.") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "apply made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success());

    // 3. Every spawn fails: the apply ends with the servers' faults.
    for h in ["host-1", "host-2", "host-3"] {
        cloud.plane.driver(h).set_spawn_delay(None);
        cloud
            .plane
            .driver(h)
            .fail_next_spawns(100, "hypervisor on strike");
    }
    let failed = cloud.run(&["apply", "-f", f, "--auto-approve"]).await;
    assert_eq!(failed.code, 6, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("hypervisor on strike"),
        "{}",
        failed.stderr
    );

    // Healthy again: the next apply replaces the servers in ERROR and
    // converges, with exactly one of everything.
    for h in ["host-1", "host-2", "host-3"] {
        cloud.plane.driver(h).fail_next_spawns(0, "");
    }
    let plan = cloud.run(&["plan", "-f", f]).await;
    assert!(plan.ok().contains("(it is in ERROR)"), "{}", plan.stdout);
    cloud.run(&["apply", "-f", f, "--auto-approve"]).await.ok();
    assert_converged(&cloud, true).await;
    let again = cloud.run(&["apply", "-f", f, "--auto-approve"]).await;
    assert!(again.ok().starts_with("No changes"), "{}", again.stdout);
    cloud.plane.shutdown().await;
}
