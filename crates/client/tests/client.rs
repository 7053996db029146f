//! The client against a real API: password login, catalog endpoints,
//! microversion negotiation, token renewal after revocation, errors with
//! request ids, name lookups, streamed image transfers with progress.

use cloud_client::{
    AuthOptions, Client, Credentials, Domain, Error, FLAVOR, IMAGE, Microversion, Named,
    SERVER_GROUP, Service, ValueExt,
};
use cloud_test_utils::TestApi;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn options(api: &TestApi, user: &str, password: &str, project: &str) -> AuthOptions {
    AuthOptions::password(
        &format!("{}/identity", api.url),
        Named::Name {
            name: user.into(),
            domain: Domain::Name("Default".into()),
        },
        password,
        Some(Named::Name {
            name: project.into(),
            domain: Domain::Id("default".into()),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_endpoints_microversion_and_renewal() {
    let api = TestApi::start().await;
    api.account("demo", "alice", "member").await;
    let c = Client::connect(options(&api, "alice", "alice-password", "demo"))
        .await
        .unwrap();
    let t = c.token().await;
    assert_eq!(t.project_name.as_deref(), Some("demo"));
    assert!(t.has_role("member"));
    assert_eq!(
        c.endpoint(Service::Compute).await.unwrap(),
        format!("{}/compute/v2.1", api.url)
    );
    assert_eq!(
        c.endpoint(Service::Network).await.unwrap(),
        format!("{}/network/v2.0", api.url)
    );
    assert_eq!(
        c.compute_microversion().await.unwrap(),
        Some(Microversion::new(2, 1))
    );

    // A revoked token is renewed once, transparently.
    let old = t.secret.clone();
    let r = api
        .anonymous()
        .with_token(&old)
        .request("DELETE", "/identity/v3/auth/tokens")
        .header("X-Subject-Token", &old);
    assert_eq!(cloud_test_utils::Client::finish(r).await.status, 204);
    let flavors = c.list(FLAVOR, &[]).await.unwrap();
    assert!(!flavors.is_empty());
    assert_ne!(c.token().await.secret, old, "a new token was issued");

    // An existing token can be used as is.
    let by_token = Client::connect(AuthOptions {
        credentials: Credentials::Token(c.token().await.secret),
        project: None,
        ..options(&api, "x", "x", "x")
    })
    .await
    .unwrap();
    assert_eq!(by_token.token().await.user_name, "alice");

    // Wrong password: the server's message and status.
    let bad = Client::connect(options(&api, "alice", "nope", "demo"))
        .await
        .err()
        .unwrap();
    assert_eq!(bad.status(), Some(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_names_and_image_transfers() {
    let api = TestApi::start().await;
    api.account("demo", "alice", "member").await;
    let c = Client::connect(options(&api, "alice", "alice-password", "demo"))
        .await
        .unwrap();

    // Errors carry the server's message, status and request id.
    let e = c
        .create(
            SERVER_GROUP,
            json!({"server_group": {"name": "g", "policies": ["sideways"]}}),
            None,
        )
        .await
        .unwrap_err();
    let Error::Api(a) = &e else { panic!("{e:?}") };
    assert_eq!(a.status, 400);
    assert!(a.message.contains("sideways"), "{}", a.message);
    assert!(
        a.request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("req-"))
    );

    // Names or ids; an ambiguous name lists the matches.
    let g1 = c
        .create(
            SERVER_GROUP,
            json!({"server_group": {"name": "g", "policies": ["affinity"]}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        c.find(SERVER_GROUP, "g").await.unwrap().id_str(),
        g1.id_str()
    );
    assert_eq!(
        c.find(SERVER_GROUP, &g1.id_str()).await.unwrap()["name"],
        "g"
    );
    c.create(
        SERVER_GROUP,
        json!({"server_group": {"name": "g", "policies": ["affinity"]}}),
        None,
    )
    .await
    .unwrap();
    let amb = c.find(SERVER_GROUP, "g").await.unwrap_err();
    assert!(
        matches!(&amb, Error::Ambiguous { matches, .. } if matches.len() == 2),
        "{amb}"
    );
    assert!(c.find(FLAVOR, "m1.tiny").await.is_ok());
    assert!(c.find(FLAVOR, "no-such").await.unwrap_err().is_not_found());

    // Image data streams up and down, with progress.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("img.raw");
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let img = c
        .create(
            IMAGE,
            json!({"name": "img", "disk_format": "raw", "container_format": "bare"}),
            None,
        )
        .await
        .unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    c.image_upload(
        &img.id_str(),
        &src,
        Some(Arc::new(move |done, _| s.store(done, Ordering::SeqCst))),
    )
    .await
    .unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), data.len() as u64);
    assert_eq!(c.find(IMAGE, "img").await.unwrap()["status"], "active");
    let dst = dir.path().join("back.raw");
    let n = c.image_download(&img.id_str(), &dst, None).await.unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&dst).unwrap(), data);
}
