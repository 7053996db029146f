//! `PATCH /v3/users/{id}` is all or nothing (issue 16, finding 9): a
//! request refused for any of its fields changes none of them. Before the
//! fix the name, e-mail, enabled flag and default project were written
//! first and an empty password was refused only afterwards, so a 400 left
//! the user renamed (or disabled).

use cloud_test_utils::{Client, TestApi, both_backends};
use serde_json::{Value, json};

/// The status of a password login of `user` (no project scope).
async fn login(api: &TestApi, user: &str, password: &str) -> u16 {
    api.anonymous()
        .post(
            "/identity/v3/auth/tokens",
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}}}}),
        )
        .await
        .status
}

async fn user(admin: &Client, id: &str) -> Value {
    let r = admin.get(&format!("/identity/v3/users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["user"].clone()
}

both_backends!(a_refused_user_update_changes_nothing, |db| async move {
    let api = TestApi::start_with(db, |_| {}).await;
    let admin = api.admin().await.client;
    let r = admin
        .post(
            "/identity/v3/users",
            json!({"user": {"name": "bob", "password": "bob-password", "email": "bob@example.org"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["user"]["id"].as_str().unwrap().to_owned();
    let path = format!("/identity/v3/users/{id}");
    let before = user(&admin, &id).await;

    let refused = [
        // The case: a new name with an empty password.
        json!({"user": {"name": "bob-renamed", "password": ""}}),
        // Every other field with a password that is too long.
        json!({"user": {"name": "bob-renamed", "email": "new@example.org", "enabled": false,
                        "password": "x".repeat(5000)}}),
        // A valid password with a default project that does not exist.
        json!({"user": {"name": "bob-renamed", "password": "new-password",
                        "default_project_id": "no-such-project"}}),
        // A valid password with a name that is not.
        json!({"user": {"name": "", "password": "new-password", "enabled": false}}),
    ];
    for body in &refused {
        let r = admin.send("PATCH", &path, Some(body)).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(user(&admin, &id).await, before, "{body} changed the user");
        assert_eq!(login(&api, "bob", "bob-password").await, 201, "{body}");
        assert_eq!(login(&api, "bob", "new-password").await, 401, "{body}");
    }

    // A name taken by another user is a 409, and the password stays.
    let r = admin
        .send(
            "PATCH",
            &path,
            Some(&json!({"user": {"name": "admin", "password": "new-password"}})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(user(&admin, &id).await, before);
    assert_eq!(login(&api, "bob", "bob-password").await, 201);

    // A valid update changes everything it names, the password included.
    let r = admin
        .send(
            "PATCH",
            &path,
            Some(&json!({"user": {"name": "bob2", "email": "b2@example.org", "password": "new-password"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user"]["name"], "bob2");
    assert_eq!(r.body["user"]["email"], "b2@example.org");
    assert_eq!(login(&api, "bob2", "new-password").await, 201);
    assert_eq!(login(&api, "bob2", "bob-password").await, 401);
});
