//! The `cloud` binary against a running cloud: boot with `--wait`, list,
//! show, power actions, delete; a boot ending in ERROR; names, ids and
//! ambiguity; idempotent retries; outputs checked by snapshot.

mod common;

use common::{Cloud, normalize, snapshot, squeeze};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boot_wait_list_show_act_delete() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud.network("app-net", "app-v4", "10.0.1.0/24").await;

    let out = cloud
        .run(&[
            "boot",
            "vm1",
            "--flavor",
            "m1.tiny",
            "--image",
            "cirros",
            "--nic",
            "net-id=app-net,v4-fixed-ip=10.0.1.20",
            "--wait",
            "-f",
            "json",
        ])
        .await;
    let server = out.json();
    assert_eq!(server["status"], "ACTIVE", "{}", out.stdout);
    assert!(
        out.stderr.contains("vm1: BUILD"),
        "transitions shown: {}",
        out.stderr
    );
    assert!(out.stderr.contains("vm1: ACTIVE"), "{}", out.stderr);
    let id = server["id"].as_str().unwrap().to_owned();

    // Outputs, by snapshot: table and JSON list, JSON show.
    let table = cloud.run(&["list"]).await;
    snapshot("list.table", &squeeze(&normalize(table.ok())));
    let list = cloud.run(&["list", "-f", "json"]).await;
    snapshot("list.json", &normalize(list.ok()));
    assert_eq!(list.json()[0]["name"], "vm1");
    assert_eq!(
        list.json()[0]["addresses"]["app-net"][0]["addr"],
        "10.0.1.20"
    );
    let show = cloud.run(&["show", "vm1", "-f", "json"]).await;
    snapshot("show.json", &normalize(show.ok()));
    assert_eq!(show.json()["id"], id.as_str());
    let yaml = cloud
        .run(&["show", &id, "-f", "yaml", "-c", "name", "-c", "status"])
        .await;
    assert_eq!(yaml.ok(), "name: vm1\nstatus: ACTIVE\n");
    let value = cloud
        .run(&["show", "vm1", "-f", "value", "-c", "status"])
        .await;
    assert_eq!(value.ok(), "ACTIVE\n");
    let table = cloud
        .run(&["show", "vm1", "-c", "name", "-c", "status"])
        .await;
    snapshot("show.table", table.ok());

    // Power actions with --wait, the console, the action log.
    cloud.run(&["stop", "vm1", "--wait"]).await.ok();
    assert_eq!(
        cloud
            .run(&["show", "vm1", "-f", "value", "-c", "status"])
            .await
            .ok(),
        "SHUTOFF\n"
    );
    let again = cloud.run(&["stop", "vm1"]).await;
    assert_eq!(
        again.code, 5,
        "stopping a stopped server is a conflict: {}",
        again.stderr
    );
    assert!(
        again.stderr.contains("HTTP 409") && again.stderr.contains("request req-"),
        "{}",
        again.stderr
    );
    cloud.run(&["start", "vm1", "--wait"]).await.ok();
    cloud.run(&["reboot", "vm1", "--hard", "--wait"]).await.ok();
    assert_eq!(
        cloud
            .run(&["show", "vm1", "-f", "value", "-c", "status"])
            .await
            .ok(),
        "ACTIVE\n"
    );
    let log = cloud.run(&["console-log", "vm1", "--lines", "2"]).await;
    assert!(log.ok().lines().count() <= 2, "{}", log.stdout);
    let actions = cloud
        .run(&["actions", "vm1", "-f", "value", "-c", "action"])
        .await;
    let names: Vec<&str> = actions.ok().lines().collect();
    for a in ["create", "stop", "start", "reboot"] {
        assert!(names.contains(&a), "{names:?}");
    }

    // Names: unknown is exit 4; a second vm1 makes the name ambiguous.
    let missing = cloud.run(&["show", "nope"]).await;
    assert_eq!(missing.code, 4);
    assert!(
        missing.stderr.contains("no server named or with id 'nope'"),
        "{}",
        missing.stderr
    );
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "1", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();
    let ambiguous = cloud.run(&["show", "vm1"]).await;
    assert_eq!(ambiguous.code, 4);
    assert!(
        ambiguous
            .stderr
            .contains("2 servers are named 'vm1'; use an id:")
            && ambiguous.stderr.contains(&id),
        "{}",
        ambiguous.stderr
    );

    cloud.run(&["delete", &id, "--wait"]).await.ok();
    let left = cloud.run(&["list", "-f", "value", "-c", "id"]).await;
    assert_eq!(left.ok().lines().count(), 1);
    assert!(!left.stdout.contains(&id));
    cloud.plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boot_ending_in_error_exits_6_with_the_fault() {
    let cloud = Cloud::start(2).await;
    cloud.image("cirros").await;
    for h in ["host-1", "host-2"] {
        cloud
            .plane
            .driver(h)
            .fail_next_spawns(5, &format!("disk on fire on {h}"));
    }
    let out = cloud
        .run(&[
            "boot", "doomed", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await;
    assert_eq!(out.code, 6, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("went to ERROR"), "{}", out.stderr);
    assert!(
        out.stderr.contains("disk on fire on host-1"),
        "the fault is shown: {}",
        out.stderr
    );
    let status = cloud
        .run(&["show", "doomed", "-f", "value", "-c", "status"])
        .await;
    assert_eq!(status.ok(), "ERROR\n");
    // A server in ERROR can still be deleted and waited for.
    cloud.run(&["delete", "doomed", "--wait"]).await.ok();
    assert_eq!(cloud.run(&["list", "-f", "value"]).await.ok(), "");

    // Input mistakes are caught before anything is created.
    let bad = cloud
        .run(&[
            "boot",
            "x",
            "--flavor",
            "no-such-flavor",
            "--image",
            "cirros",
        ])
        .await;
    assert_eq!(bad.code, 4, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("no flavor named or with id 'no-such-flavor'")
    );
    let bad = cloud
        .run(&[
            "boot", "x", "--flavor", "1", "--image", "cirros", "--nic", "bogus=1",
        ])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    cloud.plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retried_boots_with_one_client_token_make_one_server() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    let args = [
        "boot",
        "once",
        "--flavor",
        "1",
        "--image",
        "cirros",
        "--nic",
        "none",
        "--client-token",
        "tok-1",
        "-f",
        "value",
        "-c",
        "id",
    ];
    let (a, b) = tokio::join!(cloud.run(&args), cloud.run(&args));
    assert_eq!(a.ok(), b.ok(), "the same server both times");
    let ids = cloud.run(&["list", "-f", "value", "-c", "id"]).await;
    assert_eq!(ids.ok().lines().count(), 1);

    // The same token for another server is refused, saying why.
    let other = cloud
        .run(&[
            "boot",
            "twice",
            "--flavor",
            "1",
            "--image",
            "cirros",
            "--nic",
            "none",
            "--client-token",
            "tok-1",
        ])
        .await;
    assert_eq!(other.code, 5, "{}", other.stderr);
    assert!(
        other
            .stderr
            .contains("already used for a different request"),
        "{}",
        other.stderr
    );
    // Without a token, each command is its own create.
    let plain = [
        "boot", "many", "--flavor", "1", "--image", "cirros", "--nic", "none",
    ];
    cloud.run(&plain).await.ok();
    cloud.run(&plain).await.ok();
    assert_eq!(
        cloud
            .run(&["list", "-f", "value", "-c", "id"])
            .await
            .ok()
            .lines()
            .count(),
        3
    );

    // A multi-create waits for every server and lists them all.
    let batch = cloud
        .run(&[
            "boot",
            "batch",
            "--flavor",
            "1",
            "--image",
            "cirros",
            "--nic",
            "none",
            "--min-count",
            "3",
            "--max-count",
            "3",
            "--wait",
            "-f",
            "json",
        ])
        .await;
    let servers = batch.json();
    let servers = servers.as_array().expect("a list of the batch's servers");
    assert_eq!(servers.len(), 3, "{}", batch.stdout);
    for s in servers {
        assert_eq!(s["status"], "ACTIVE", "{}", batch.stdout);
        assert!(s["name"].as_str().unwrap().starts_with("batch"), "{s}");
        let name = s["name"].as_str().unwrap();
        assert!(
            batch.stderr.contains(&format!("{name}: ACTIVE")),
            "{}",
            batch.stderr
        );
    }
    cloud.plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_token_cache_debug_and_help() {
    let cloud = Cloud::start(1).await;
    // First run logs in and caches the token (owner-only).
    cloud.run(&["flavor", "list"]).await.ok();
    let dir = cloud.path("cache/cloud/tokens");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        !std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("alice-password")
    );
    // Later runs use it: no login (a wrong password goes unnoticed).
    let debug = cloud
        .run_env(&["flavor", "list", "--debug"], &[("OS_PASSWORD", "wrong")])
        .await;
    assert_eq!(debug.code, 0, "{}", debug.stderr);
    assert!(!debug.stderr.contains("/auth/tokens"), "{}", debug.stderr);
    assert!(debug.stderr.contains("REQ  GET"), "{}", debug.stderr);
    assert!(debug.stderr.contains("request id req-"), "{}", debug.stderr);
    // Without the cache the wrong password is refused: exit 3.
    let refused = cloud
        .run_env(
            &["flavor", "list", "--no-token-cache"],
            &[("OS_PASSWORD", "wrong")],
        )
        .await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);

    // clouds.yaml with --os-cloud, instead of OS_* variables.
    let url = format!("{}/identity/v3", cloud.plane.api.url);
    cloud.write(
        "clouds.yaml",
        &format!(
            "clouds:\n  mine:\n    auth:\n      auth_url: {url}\n      username: alice\n      \
             password: alice-password\n      project_name: demo\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    region_name: RegionOne\n"
        ),
    );
    let mut cmd = cloud.command(
        &[
            "--os-cloud",
            "mine",
            "--no-token-cache",
            "token",
            "issue",
            "-f",
            "json",
        ],
        &[],
    );
    for k in [
        "OS_AUTH_URL",
        "OS_USERNAME",
        "OS_PASSWORD",
        "OS_PROJECT_NAME",
    ] {
        cmd.env_remove(k);
    }
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(token["id"].as_str().is_some_and(|t| !t.is_empty()));

    // Help with examples and exit codes; completions.
    let help = cloud.run(&["--help"]).await;
    assert!(help.ok().contains("Exit codes:") && help.stdout.contains("OS_CLOUD"));
    for cmd in [
        "boot",
        "list",
        "apply",
        "image create",
        "security-group rule create",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let h = cloud.run(&args).await;
        assert!(
            h.ok().contains("Example"),
            "{cmd} --help has examples: {}",
            h.stdout
        );
    }
    let bash = cloud.run(&["completion", "bash"]).await;
    assert!(bash.ok().contains("complete") && bash.stdout.contains("security-group"));
    let usage = cloud.run(&["boot"]).await;
    assert_eq!(usage.code, 2);
    cloud.plane.shutdown().await;
}
