//! Tokens issued from tokens (issue 16, finding 6), as Keystone does
//! them: a token re-issued from a token keeps its parent's expiry (it
//! cannot be renewed forever), revoking a token revokes every token issued
//! from it, and expired tokens are purged rather than kept forever. On
//! both store backends.

use cloud_model::Timestamp;
use cloud_test_utils::{Client, Reply, TestApi, TestDb, both_backends};
use serde_json::json;
use std::time::{Duration, Instant};

/// `POST /auth/tokens` with method `token`, scoped to project `admin`.
async fn from_token(api: &TestApi, token: &str) -> Reply {
    api.anonymous()
        .post(
            "/identity/v3/auth/tokens",
            json!({"auth": {
                "identity": {"methods": ["token"], "token": {"id": token}},
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}
            }}),
        )
        .await
}

/// A token issued from `token`, and its `expires_at`.
async fn child(api: &TestApi, token: &str) -> (String, String) {
    let r = from_token(api, token).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (
        r.header("x-subject-token").unwrap().to_owned(),
        r.body["token"]["expires_at"].as_str().unwrap().to_owned(),
    )
}

/// What `GET /auth/tokens` answers about `subject`, asked by `admin`.
async fn check(admin: &Client, subject: &str) -> u16 {
    let req = admin
        .request("GET", "/identity/v3/auth/tokens")
        .header("X-Subject-Token", subject);
    Client::finish(req).await.status
}

/// `GET /projects` with `token`: whether a token still authenticates.
async fn projects_with(api: &TestApi, token: &str) -> Reply {
    api.anonymous()
        .with_token(token)
        .get("/identity/v3/projects")
        .await
}

/// The admin's token and its `expires_at`.
async fn login(api: &TestApi) -> (String, String) {
    let token = api
        .token("admin", cloud_test_utils::ADMIN_PASSWORD, "admin")
        .await;
    let r = Client::finish(
        api.anonymous()
            .with_token(&token)
            .request("GET", "/identity/v3/auth/tokens")
            .header("X-Subject-Token", &token),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let expires = r.body["token"]["expires_at"].as_str().unwrap().to_owned();
    (token, expires)
}

both_backends!(
    a_token_from_a_token_keeps_its_parents_expiry,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |c| c.token_ttl_seconds = 3).await;
        let (parent, parent_expires) = login(&api).await;
        // Expiries have whole seconds: a fresh lifetime would end later.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (child, child_expires) = child(&api, &parent).await;
        assert_eq!(
            child_expires, parent_expires,
            "the child got a fresh lifetime"
        );
        let (grandchild, grandchild_expires) = self::child(&api, &child).await;
        assert_eq!(grandchild_expires, parent_expires);

        // When the parent expires, so do they.
        assert_eq!(projects_with(&api, &child).await.status, 200);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        for (what, token) in [("child", &child), ("grandchild", &grandchild)] {
            let r = projects_with(&api, token).await;
            assert_eq!(
                r.status, 401,
                "the {what} outlived its parent: {:?}",
                r.body
            );
        }
    }
);

both_backends!(
    revoking_a_token_revokes_the_tokens_issued_from_it,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let admin = api.admin().await.client;
        let (parent, _) = login(&api).await;
        let (child, _) = child(&api, &parent).await;
        let (grandchild, _) = self::child(&api, &child).await;
        // A sibling chain from another login is not touched.
        let (other, _) = login(&api).await;
        let (other_child, _) = self::child(&api, &other).await;
        for t in [&parent, &child, &grandchild, &other, &other_child] {
            assert_eq!(check(&admin, t).await, 200);
        }

        let revoke = admin
            .request("DELETE", "/identity/v3/auth/tokens")
            .header("X-Subject-Token", &parent);
        assert_eq!(Client::finish(revoke).await.status, 204);

        for (what, token) in [
            ("parent", &parent),
            ("child", &child),
            ("grandchild", &grandchild),
        ] {
            assert_eq!(check(&admin, token).await, 404, "the {what} is still valid");
            let r = projects_with(&api, token).await;
            assert_eq!(
                r.status, 401,
                "the {what} still authenticates: {:?}",
                r.body
            );
            // Nor can it be renewed.
            assert_eq!(from_token(&api, token).await.status, 401, "{what}");
        }
        assert_eq!(check(&admin, &other).await, 200);
        assert_eq!(check(&admin, &other_child).await, 200);
    }
);

both_backends!(expired_tokens_are_purged, |db: TestDb| async move {
    let api = TestApi::start_with(db, |c| {
        // Expiries have whole seconds: this lives 2 to 3 s.
        c.token_ttl_seconds = 3;
        c.token_purge_interval_secs = 1;
    })
    .await;
    // Tokens that expire, from passwords and from tokens.
    for _ in 0..3 {
        let (t, _) = login(&api).await;
        child(&api, &t).await;
    }
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let store = &api.db.store;
    assert_eq!(
        store.token_count_expired(Timestamp::now()).await.unwrap(),
        6
    );

    // Issuing a token is what makes the table grow, and what purges it.
    api.token("admin", cloud_test_utils::ADMIN_PASSWORD, "admin")
        .await;
    let started = Instant::now();
    loop {
        let left = store.token_count_expired(Timestamp::now()).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{left} expired tokens still stored 10 s after a login"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
});
