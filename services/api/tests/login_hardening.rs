//! Logins under attack (issue 16, finding 1): a burst of password logins
//! for users that do not exist must not take the process's memory with
//! it, an overloaded API answers 503 with `Retry-After` in Keystone's
//! format rather than queueing forever, and a login for a missing user
//! costs the same password hash as one for a real user.
//!
//! The API runs in this test's process, so `/proc/self/status` is the
//! server's memory. Each test takes `SERIAL`, so they also measure right
//! under `cargo test` (nextest runs each in its own process anyway).

use cloud_api::auth::password;
use cloud_test_utils::{Reply, TestApi};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn by_name(user: &str, domain: &str, password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": domain}, "password": password}}}}})
}

fn by_id(user_id: &str, password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user_id, "password": password}}}}})
}

/// The login body of the `i`th request of a burst: unknown users by
/// name, in an unknown domain and by id.
fn ghost(i: usize) -> Value {
    match i % 3 {
        0 => by_name(&format!("ghost-{i}"), "Default", "guess"),
        1 => by_name("admin", &format!("no-such-domain-{i}"), "guess"),
        _ => by_id(&format!("{i:032x}"), "guess"),
    }
}

async fn burst(api: &TestApi, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = api.anonymous();
            tokio::spawn(async move { c.post("/identity/v3/auth/tokens", ghost(i)).await })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for t in tasks {
        replies.push(t.await.expect("login task"));
    }
    replies
}

/// A 503 from the login is Keystone's error document with `Retry-After`.
fn assert_busy_reply(r: &Reply) {
    assert_eq!(r.status, 503, "{:?}", r.body);
    let after: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("503 without Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!(after >= 1, "Retry-After {after}");
    assert_eq!(r.body["error"]["code"], 503, "{:?}", r.body);
    assert_eq!(
        r.body["error"]["title"], "Service Unavailable",
        "{:?}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry")),
        "{:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_for_unknown_users_keeps_memory_bounded() {
    let _serial = SERIAL.lock().await;
    let api = TestApi::start().await;
    let start = status_kib("VmRSS:");
    let replies = burst(&api, 128).await;
    let after = status_kib("VmRSS:");
    let peak = status_kib("VmHWM:");
    let mut counts = std::collections::BTreeMap::new();
    for r in &replies {
        *counts.entry(r.status).or_insert(0) += 1;
        match r.status {
            401 => assert!(r.body["error"]["code"] == 401, "{:?}", r.body),
            503 => assert_busy_reply(r),
            other => panic!("login answered {other}: {:?}", r.body),
        }
    }
    // Each running hash holds one worker's 19 MiB buffer; allow some room
    // for the rest of the API (connections, SQLite) on top.
    let bound = password::workers() as u64 * 20 * 1024 + 48 * 1024;
    eprintln!(
        "128 logins: {counts:?}; VmRSS {} MiB before, {} MiB after, peak {} MiB; \
         bound +{} MiB ({} workers)",
        start / 1024,
        after / 1024,
        peak / 1024,
        bound / 1024,
        password::workers()
    );
    assert!(
        after.saturating_sub(start) <= bound,
        "RSS grew from {} MiB to {} MiB after 128 logins (bound: +{} MiB)",
        start / 1024,
        after / 1024,
        bound / 1024
    );
    assert!(
        peak.saturating_sub(start) <= bound,
        "RSS peaked at {} MiB from {} MiB during 128 logins (bound: +{} MiB)",
        peak / 1024,
        start / 1024,
        bound / 1024
    );
    // The API still serves real logins afterwards.
    api.admin().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_that_wait_too_long_for_a_worker_get_503_with_retry_after() {
    let _serial = SERIAL.lock().await;
    let api = TestApi::start().await;
    // No waiting at all: whoever finds every worker busy is turned away.
    password::set_queue_wait(Duration::ZERO);
    let replies = burst(&api, 64).await;
    password::set_queue_wait(Duration::from_secs(5));
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "64 concurrent logins with {} workers and no queue wait: none got 503",
        password::workers()
    );
    for r in &replies {
        match r.status {
            401 => {}
            503 => assert_busy_reply(r),
            other => panic!("login answered {other}: {:?}", r.body),
        }
    }
    api.admin().await;
}

/// How long a login takes and how many password hashes it costs.
async fn timed(api: &TestApi, body: &Value) -> (Duration, u64, u16) {
    let before = password::verifications();
    let t = Instant::now();
    let r = api
        .anonymous()
        .post("/identity/v3/auth/tokens", body.clone())
        .await;
    (t.elapsed(), password::verifications() - before, r.status)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_for_a_missing_user_costs_what_one_for_a_real_user_costs() {
    let _serial = SERIAL.lock().await;
    let api = TestApi::start().await;
    let admin_id = api.admin().await.user_id;
    let known = [
        (
            "right password",
            by_name("admin", "Default", "admin-secret"),
            201,
        ),
        ("wrong password", by_name("admin", "Default", "guess"), 401),
        ("by id, wrong password", by_id(&admin_id, "guess"), 401),
    ];
    let unknown = [
        ("unknown user", by_name("nobody", "Default", "guess"), 401),
        ("unknown domain", by_name("admin", "Nowhere", "guess"), 401),
        ("unknown user id", by_id("0123456789abcdef", "guess"), 401),
    ];
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        for (cases, times) in [(&known, &mut known_times), (&unknown, &mut unknown_times)] {
            for (what, body, status) in cases {
                let (took, hashes, got) = timed(&api, body).await;
                assert_eq!(got, *status, "{what}");
                assert_eq!(hashes, 1, "a login with {what} must cost one password hash");
                times.push(took);
            }
        }
    }
    let (k, u) = (median(known_times), median(unknown_times));
    eprintln!("median login: known user {k:?}, unknown user {u:?}");
    // Both are one hash; only a gross difference (no hash at all, or two)
    // would fail this.
    assert!(
        u * 3 >= k && k * 3 >= u,
        "median login time: known user {k:?}, unknown user {u:?}"
    );
}
