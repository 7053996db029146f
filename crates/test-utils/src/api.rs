//! The API server on a free port, over a fresh store.

use crate::client::Client;
use crate::db::TestDb;
use cloud_api::{ApiConfig, AppState};
use cloud_store::Backend;
use serde_json::json;

/// The bootstrap admin's password in tests.
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// A running API with its database.
pub struct TestApi {
    /// The database (kept alive as long as the API).
    pub db: TestDb,
    /// Base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The image store directory.
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A user in a project with a token.
#[derive(Clone, Debug)]
pub struct Account {
    /// Project id.
    pub project_id: String,
    /// User id.
    pub user_id: String,
    /// A client carrying the user's token.
    pub client: Client,
    /// The token.
    pub token: String,
}

impl TestApi {
    /// Starts the API on SQLite.
    pub async fn start() -> TestApi {
        Self::start_on(Backend::Sqlite).await
    }

    /// Starts the API on `backend`, bootstrapped with the admin account.
    pub async fn start_on(backend: Backend) -> TestApi {
        Self::start_with(TestDb::new(backend).await, |_| {}).await
    }

    /// Starts the API on `db`, letting `tweak` adjust the configuration.
    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut ApiConfig)) -> TestApi {
        Self::start_full(db, std::sync::Arc::new(cloud_bus::InProcBus::new()), tweak).await
    }

    /// Starts the API on `db` and `bus`, letting `tweak` adjust the
    /// configuration.
    pub async fn start_full(
        db: TestDb,
        bus: std::sync::Arc<dyn cloud_bus::Bus>,
        tweak: impl FnOnce(&mut ApiConfig),
    ) -> TestApi {
        let data_dir = tempfile::tempdir().expect("data dir");
        cloud_api::bootstrap::bootstrap(&db.store, Some(ADMIN_PASSWORD.to_owned()), true)
            .await
            .expect("bootstrap");
        let mut config = ApiConfig::for_data_dir(data_dir.path().to_owned());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = cloud_api::serve(
            listener,
            AppState::with_bus(db.store.clone(), config, bus),
            async {
                let _ = rx.await;
            },
        )
        .expect("serve");
        TestApi {
            url: format!("http://{}", handle.addr),
            db,
            data_dir,
            shutdown: Some(tx),
        }
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url)
    }

    /// Authenticates `user` / `password` scoped to `project` (names in the
    /// default domain); returns the token.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let r = self
            .anonymous()
            .post(
                "/identity/v3/auth/tokens",
                json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": user, "domain": {"name": "Default"}, "password": password}}},
                    "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
                }}),
            )
            .await;
        assert_eq!(r.status, 201, "login of {user} failed: {:?}", r.body);
        r.header("x-subject-token")
            .expect("token header")
            .to_owned()
    }

    /// The bootstrap admin, in project `admin`.
    pub async fn admin(&self) -> Account {
        let token = self.token("admin", ADMIN_PASSWORD, "admin").await;
        let info = self
            .anonymous()
            .with_token(&token)
            .request("GET", "/identity/v3/auth/tokens")
            .header("X-Subject-Token", &token);
        let r = Client::finish(info).await;
        Account {
            project_id: r.body["token"]["project"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            user_id: r.body["token"]["user"]["id"].as_str().unwrap().to_owned(),
            client: self.anonymous().with_token(&token),
            token,
        }
    }

    /// Creates project `project` (if needed) and user `user` with `role` on
    /// it, and logs the user in.
    pub async fn account(&self, project: &str, user: &str, role: &str) -> Account {
        let admin = self.admin().await.client;
        let found = admin
            .get(&format!("/identity/v3/projects?name={project}"))
            .await;
        let project_id = match found.body["projects"].as_array().and_then(|a| a.first()) {
            Some(p) => p["id"].as_str().unwrap().to_owned(),
            None => {
                let r = admin
                    .post(
                        "/identity/v3/projects",
                        json!({"project": {"name": project}}),
                    )
                    .await;
                assert_eq!(r.status, 201, "{:?}", r.body);
                r.body["project"]["id"].as_str().unwrap().to_owned()
            }
        };
        let password = format!("{user}-password");
        let r = admin
            .post(
                "/identity/v3/users",
                json!({"user": {"name": user, "password": password, "default_project_id": project_id}}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let user_id = r.body["user"]["id"].as_str().unwrap().to_owned();
        let roles = admin.get(&format!("/identity/v3/roles?name={role}")).await;
        let role_id = roles.body["roles"][0]["id"]
            .as_str()
            .expect("role exists")
            .to_owned();
        let r = admin
            .send(
                "PUT",
                &format!("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let token = self.token(user, &password, project).await;
        Account {
            project_id,
            user_id,
            client: self.anonymous().with_token(&token),
            token,
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
