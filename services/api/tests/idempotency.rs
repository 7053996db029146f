//! `Idempotency-Key` over real HTTP on both backends: a retried create
//! returns the first answer, concurrent retries make one resource, a
//! reused key with another body is a 409, keys are per project, and
//! expired keys are purged.

mod support;

use cloud_model::Timestamp;
use cloud_store::IdempotencyRecord;
use cloud_test_utils::{Client, TestApi, both_backends};
use serde_json::json;
use support::post_with_key;

/// An active image owned by the caller, through the image API.
async fn image(c: &Client) -> String {
    cloud_test_utils::upload_image(c, "img", "qcow2", vec![7u8; 64], json!({})).await
}

async fn server_names(c: &Client) -> Vec<String> {
    let r = c.get("/compute/v2.1/servers").await;
    r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

both_backends!(
    concurrent_creates_with_one_key_make_one_server,
    |db| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let user = api.account("idem", "alice", "member").await;
        let c = &user.client;
        let img = image(c).await;
        let body = json!({"server": {"name": "once", "flavorRef": "1", "imageRef": img, "networks": "none"}});

        let replies = futures::future::join_all(
            (0..6).map(|_| post_with_key(c, "/compute/v2.1/servers", "boot-1", &body)),
        )
        .await;
        let ids: Vec<&str> = replies
            .iter()
            .map(|r| {
                assert_eq!(r.status, 202, "{}", r.body);
                r.body["server"]["id"].as_str().unwrap()
            })
            .collect();
        assert!(ids.iter().all(|i| *i == ids[0]), "one server id: {ids:?}");
        let locations: Vec<_> = replies.iter().map(|r| r.header("location")).collect();
        assert!(locations.iter().all(|l| l.is_some() && *l == locations[0]));
        assert_eq!(
            replies
                .iter()
                .filter(|r| r.header("idempotent-replayed") == Some("true"))
                .count(),
            5,
            "all but the first are replays"
        );
        assert_eq!(server_names(c).await, ["once"]);

        // A later retry still replays the same answer.
        let again = post_with_key(c, "/compute/v2.1/servers", "boot-1", &body).await;
        assert_eq!(again.status, 202);
        assert_eq!(again.body["server"]["id"], ids[0]);
        // (the same answer, less the generated password shown only once)
        let mut first = replies[0].body.clone();
        first["server"].as_object_mut().unwrap().remove("adminPass");
        assert_eq!(again.body, first);

        // Same key, another body: 409 that says why, and nothing is created.
        let other = json!({"server": {"name": "twice", "flavorRef": "1", "imageRef": img, "networks": "none"}});
        let r = post_with_key(c, "/compute/v2.1/servers", "boot-1", &other).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(
            r.body["conflictingRequest"].is_object(),
            "Nova's format: {}",
            r.body
        );
        assert!(
            r.error_message().contains("different request"),
            "{}",
            r.error_message()
        );
        assert_eq!(server_names(c).await, ["once"]);

        // Without a key every POST creates.
        assert_eq!(
            c.post("/compute/v2.1/servers", body.clone()).await.status,
            202
        );
        assert_eq!(server_names(c).await.len(), 2);
    }
);

both_backends!(keys_are_per_project_and_errors_replay, |db| async move {
    let api = TestApi::start_with(db, |_| {}).await;
    let a = api.account("pa", "a", "member").await;
    let b = api.account("pb", "b", "member").await;
    let body = json!({"server_group": {"name": "g", "policies": ["anti-affinity"]}});
    let ra = post_with_key(&a.client, "/compute/v2.1/os-server-groups", "k", &body).await;
    let rb = post_with_key(&b.client, "/compute/v2.1/os-server-groups", "k", &body).await;
    assert_eq!(ra.status, 200, "{}", ra.body);
    assert_eq!(rb.status, 200, "{}", rb.body);
    assert_ne!(
        ra.body["server_group"]["id"], rb.body["server_group"]["id"],
        "another project's key is another key"
    );

    // A rejected request is remembered too: the retry gets the same 400.
    let bad = json!({"server_group": {"name": "g", "policies": ["sideways"]}});
    let r1 = post_with_key(&a.client, "/compute/v2.1/os-server-groups", "bad", &bad).await;
    let r2 = post_with_key(&a.client, "/compute/v2.1/os-server-groups", "bad", &bad).await;
    assert_eq!((r1.status, r2.status), (400, 400));
    assert_eq!(r1.body, r2.body);

    // Server-generated private keys are shown once, never replayed.
    let kp = json!({"keypair": {"name": "gen"}});
    let first = post_with_key(&a.client, "/compute/v2.1/os-keypairs", "kp", &kp).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body["keypair"]["private_key"].is_string());
    let replay = post_with_key(&a.client, "/compute/v2.1/os-keypairs", "kp", &kp).await;
    assert_eq!(replay.status, 200);
    assert_eq!(
        replay.body["keypair"]["fingerprint"],
        first.body["keypair"]["fingerprint"]
    );
    assert!(replay.body["keypair"].get("private_key").is_none());

    // Token requests ignore the header (their answers are secrets).
    let login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "a", "domain": {"name": "Default"}, "password": "a-password"}}}}});
    let t1 = post_with_key(&api.anonymous(), "/identity/v3/auth/tokens", "t", &login).await;
    let t2 = post_with_key(&api.anonymous(), "/identity/v3/auth/tokens", "t", &login).await;
    assert_eq!((t1.status, t2.status), (201, 201));
    assert_ne!(t1.header("x-subject-token"), t2.header("x-subject-token"));

    // Bad keys and missing tokens get the service's own errors.
    let r = post_with_key(&a.client, "/compute/v2.1/os-server-groups", " ", &body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_with_key(
        &api.anonymous(),
        "/compute/v2.1/os-server-groups",
        "k",
        &body,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
});

both_backends!(
    expired_keys_are_purged_and_reusable,
    |db: cloud_test_utils::TestDb| async move {
        let store = db.store.clone();
        let now = Timestamp::now();
        let day = 24 * 3600 * 1_000_000i64;
        let old = Timestamp::from_micros(now.micros() - day - 1);
        let hold = support::idempotency_hold;
        let claim = |at: Timestamp, hash: &'static str, owner: &'static str| {
            let store = store.clone();
            let hold = hold(owner);
            async move {
                store
                    .idempotency_claim(
                        &hold,
                        hash,
                        at,
                        Timestamp::from_micros(at.micros() + 10_000_000),
                        Timestamp::from_micros(at.micros() - day),
                    )
                    .await
                    .unwrap()
            }
        };
        use cloud_store::IdempotencyClaim::*;
        assert_eq!(claim(old, "h1", "first").await, Claimed);
        let answer = IdempotencyRecord {
            hold: hold("first"),
            status: 201,
            response: "{}".into(),
        };
        assert!(store.idempotency_complete(&answer).await.unwrap());
        // Within the day the key answers for h1 only...
        let within = Timestamp::from_micros(old.micros() + day - 1_000_000);
        assert!(matches!(
            claim(within, "h1", "retry").await,
            Completed { status: 201, .. }
        ));
        assert_eq!(claim(within, "h2", "retry").await, Mismatch);
        // ... after it, the key is free again.
        assert_eq!(claim(now, "h2", "second").await, Claimed);
        assert_eq!(claim(now, "h2", "third").await, InFlight);
        // A purge removes what is older than the retention.
        assert_eq!(store.idempotency_purge(old).await.unwrap(), 0);
        let later = Timestamp::from_micros(now.micros() + 1);
        assert_eq!(store.idempotency_purge(later).await.unwrap(), 1);
        store.idempotency_release(&hold("second")).await.unwrap();
    }
);
