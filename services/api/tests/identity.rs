//! Identity over real HTTP: login, token validation and revocation, and
//! what each role may do.

use cloud_test_utils::{Client, TestApi};
use serde_json::json;

fn login_body(user: &str, password: &str, project: &str) -> serde_json::Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
    }})
}

#[tokio::test]
async fn login_issues_a_token_with_catalog_and_roles() {
    let api = TestApi::start().await;
    let r = api
        .anonymous()
        .post(
            "/identity/v3/auth/tokens",
            login_body("admin", "admin-secret", "admin"),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.header("x-subject-token").is_some());
    assert!(
        r.header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-")
    );
    let token = &r.body["token"];
    assert_eq!(token["project"]["name"], "admin");
    assert_eq!(token["user"]["domain"]["id"], "default");
    assert!(
        token["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "admin")
    );
    let expires = token["expires_at"].as_str().unwrap();
    assert!(
        chrono_like(expires),
        "expires_at must parse as %Y-%m-%dT%H:%M:%S.%fZ: {expires}"
    );
    let types: Vec<&str> = token["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["identity", "compute", "image", "network"]);
    for svc in token["catalog"].as_array().unwrap() {
        let ep = &svc["endpoints"][0];
        assert_eq!(ep["region"], "RegionOne");
        assert_eq!(ep["region_id"], "RegionOne");
        assert_eq!(ep["interface"], "public");
    }
    let compute = &token["catalog"][1]["endpoints"][0]["url"];
    assert_eq!(
        compute.as_str().unwrap(),
        format!("{}/compute/v2.1", api.url)
    );
}

fn chrono_like(s: &str) -> bool {
    // 2026-11-28T19:36:26.000000Z
    s.len() == 27 && s.ends_with('Z') && &s[10..11] == "T" && &s[19..20] == "."
}

#[tokio::test]
async fn wrong_password_is_401_in_keystone_format() {
    let api = TestApi::start().await;
    for (user, pw) in [("admin", "nope"), ("nobody", "admin-secret")] {
        let r = api
            .anonymous()
            .post("/identity/v3/auth/tokens", login_body(user, pw, "admin"))
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"]["code"], 401);
        assert_eq!(r.body["error"]["title"], "Unauthorized");
    }
}

#[tokio::test]
async fn revoked_and_bogus_tokens_are_401() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let other = api.token("admin", "admin-secret", "admin").await;
    let check = admin
        .client
        .request("GET", "/identity/v3/auth/tokens")
        .header("X-Subject-Token", &other);
    assert_eq!(Client::finish(check).await.status, 200);
    let revoke = admin
        .client
        .request("DELETE", "/identity/v3/auth/tokens")
        .header("X-Subject-Token", &other);
    assert_eq!(Client::finish(revoke).await.status, 204);
    let revoked = api.anonymous().with_token(&other);
    assert_eq!(revoked.get("/compute/v2.1/servers").await.status, 401);
    let bogus = api.anonymous().with_token("not-a-token");
    assert_eq!(bogus.get("/compute/v2.1/servers").await.status, 401);
    assert_eq!(
        api.anonymous().get("/compute/v2.1/servers").await.status,
        401
    );
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let db = cloud_test_utils::TestDb::sqlite().await;
    let api = TestApi::start_with(db, |c| c.token_ttl_seconds = 1).await;
    let token = api.token("admin", "admin-secret", "admin").await;
    let c = api.anonymous().with_token(&token);
    assert_eq!(c.get("/identity/v3/projects").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = c.get("/identity/v3/projects").await;
    assert_eq!(r.status, 401, "{:?}", r.body);
}

#[tokio::test]
async fn admins_manage_accounts_and_others_may_not() {
    let api = TestApi::start().await;
    let member = api.account("demo", "demo", "member").await;
    let r = member
        .client
        .post("/identity/v3/projects", json!({"project": {"name": "x"}}))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.error_message().contains("admin"), "{}", r.error_message());
    assert_eq!(member.client.get("/identity/v3/users").await.status, 403);
    // A member sees only its own project.
    let r = member.client.get("/identity/v3/projects").await;
    let names: Vec<&str> = r.body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo"]);
    // Duplicate project names conflict.
    let admin = api.admin().await.client;
    let r = admin
        .post(
            "/identity/v3/projects",
            json!({"project": {"name": "demo"}}),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn version_discovery_documents() {
    let api = TestApi::start().await;
    let c = api.anonymous();
    let r = c.get("/identity").await;
    assert_eq!(r.status, 300);
    assert_eq!(r.body["versions"]["values"][0]["id"], "v3.14");
    for path in ["/identity/v3", "/identity/v3/"] {
        let r = c.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["version"]["status"], "stable");
    }
}
