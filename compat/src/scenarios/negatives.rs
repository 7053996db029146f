//! What a user sees when things go wrong: a wrong password, an unknown
//! flavor, a quota exceeded. Each must fail with the server's clear
//! message on stderr (not a traceback, not a bare status code).

use super::assert_contains;
use crate::tools::Tools;

/// Runs the failing commands; restores the quota it lowers.
pub async fn run(t: &Tools) {
    let err = t
        .osc_fails(&["--os-password", "wrong-password", "token", "issue"])
        .await;
    assert_contains(&err, "invalid username or password");
    assert_contains(&err, "HTTP 401");

    t.osc_image("neg-image", &[1u8; 4096]).await;
    t.osc(&["network", "create", "neg-net"]).await;
    let boot = |flavor: &'static str| {
        [
            "server",
            "create",
            "--flavor",
            flavor,
            "--image",
            "neg-image",
            "--network",
            "neg-net",
            "neg-vm",
        ]
    };

    let err = t.osc_fails(&boot("no-such-flavor")).await;
    assert_contains(&err, "No Flavor found for no-such-flavor");

    let project = t
        .osc(&["token", "issue", "-c", "project_id", "-f", "value"])
        .await;
    let project = project.trim();
    t.osc(&["quota", "set", "--instances", "0", project]).await;
    let err = t.osc_fails(&boot("m1.tiny")).await;
    assert_contains(&err, "403");
    assert_contains(
        &err,
        "Quota exceeded for instances: Requested 1, but already used 0 of 0 instances",
    );
    t.osc(&["quota", "set", "--instances", "10", project]).await;
    let servers = t.osc_json(&["server", "list"]).await;
    assert_eq!(servers, serde_json::json!([]), "a refused server exists");

    t.osc(&["network", "delete", "neg-net"]).await;
    t.osc(&["image", "delete", "neg-image"]).await;
}
