//! Deleting a project (issue 16, security 10; docs/adr/0008): refused with
//! 409 while the project still has resources, naming what is left, so
//! nothing is orphaned; once they are gone (or there never were any) the
//! project goes, with what was made for it automatically (its default
//! security group, its quota limits).

use cloud_test_utils::{Client, Reply, TestApi, TestDb, both_backends};
use serde_json::json;

async fn created(r: Reply, key: &str) -> String {
    assert!(r.status == 201 || r.status == 202, "{}", r.body);
    r.body[key]["id"]
        .as_str()
        .unwrap_or_else(|| r.body["id"].as_str().unwrap())
        .to_owned()
}

async fn delete_project(admin: &Client, id: &str) -> Reply {
    admin.delete(&format!("/identity/v3/projects/{id}")).await
}

both_backends!(
    a_project_with_resources_is_not_deleted,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let admin = api.admin().await.client;
        let user = api.account("busy", "bea", "member").await;
        let c = &user.client;

        let img = cloud_test_utils::upload_image(c, "img", "raw", vec![0u8; 16], json!({})).await;
        let net = created(
            c.post("/network/v2.0/networks", json!({"network": {"name": "n"}}))
                .await,
            "network",
        )
        .await;
        created(
            c.post(
                "/network/v2.0/subnets",
                json!({"subnet": {"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}}),
            )
            .await,
            "subnet",
        )
        .await;
        let sg = created(
            c.post(
                "/network/v2.0/security-groups",
                json!({"security_group": {"name": "web"}}),
            )
            .await,
            "security_group",
        )
        .await;
        let router = created(
            c.post("/network/v2.0/routers", json!({"router": {"name": "r"}}))
                .await,
            "router",
        )
        .await;
        created(
        c.post(
            "/compute/v2.1/servers",
            json!({"server": {"name": "s", "flavorRef": "1", "imageRef": img, "networks": "none"}}),
        )
        .await,
        "server",
    )
    .await;

        let r = delete_project(&admin, &user.project_id).await;
        assert_eq!(r.status, 409, "{}", r.body);
        let m = r.error_message();
        for what in [
            "1 server",
            "1 network",
            "1 subnet",
            "1 router",
            "1 security group",
            "1 image",
        ] {
            assert!(m.contains(what), "names '{what}': {m}");
        }
        // Nothing was taken away: the project, its roles, its resources.
        let p = admin
            .get(&format!("/identity/v3/projects/{}", user.project_id))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(
            c.get(&format!("/network/v2.0/networks/{net}")).await.status,
            200
        );
        api.token("bea", "bea-password", "busy").await;

        // Without the server: still refused while the rest is there, and the
        // message no longer mentions servers.
        let other = api.account("tidy", "tim", "member").await;
        let t = &other.client;
        let img2 = cloud_test_utils::upload_image(t, "img", "raw", vec![0u8; 16], json!({})).await;
        let net2 = created(
            t.post("/network/v2.0/networks", json!({"network": {"name": "n"}}))
                .await,
            "network",
        )
        .await;
        let r = delete_project(&admin, &other.project_id).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(!r.error_message().contains("server"), "{}", r.body);
        // Cleaned up, it goes.
        assert_eq!(
            t.delete(&format!("/image/v2/images/{img2}")).await.status,
            204
        );
        assert_eq!(
            t.delete(&format!("/network/v2.0/networks/{net2}"))
                .await
                .status,
            204
        );
        let r = delete_project(&admin, &other.project_id).await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(delete_project(&admin, &other.project_id).await.status, 404);
        let _ = (sg, router);
    }
);

both_backends!(
    an_empty_project_is_deleted_with_its_defaults,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let admin = api.admin().await.client;
        let user = api.account("empty", "eve", "member").await;
        // Listing security groups makes the project's default group.
        let r = user.client.get("/network/v2.0/security-groups").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["security_groups"].as_array().unwrap().len(), 1);
        let r = delete_project(&admin, &user.project_id).await;
        assert_eq!(r.status, 204, "{}", r.body);
        // Its default group went with it.
        let r = admin
            .get(&format!(
                "/network/v2.0/security-groups?project_id={}",
                user.project_id
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["security_groups"], json!([]), "{}", r.body);
    }
);
