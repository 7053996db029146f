//! The compute agent's service account in the all-in-one cloud.
//!
//! Even in one process the agent downloads images the way a separate
//! `cloud-compute` does: over HTTP from the image API, logged in as a
//! service user (agents hold no database credentials, and the same code
//! path is exercised everywhere). The user `cloud-compute` gets the admin
//! role in the `service` project so it may read every project's images.
//! Its password is random and replaced at every start: it never leaves
//! the process, so nothing needs to store or rotate it.

use anyhow::Context;
use cloud_api::auth::password::hash_password;
use cloud_model::identity::role_names;
use cloud_model::{DomainId, Error};
use cloud_store::{NewUser, Store};
use rand::Rng;

/// The service user's name.
pub const USER: &str = "cloud-compute";
/// The project it is scoped to.
pub const PROJECT: &str = "service";

/// Creates the service user and project if missing (idempotent, safe when
/// another process does the same), gives the user a fresh random password
/// and the admin role on the project, and returns the password.
pub async fn ensure_service_user(store: &Store) -> anyhow::Result<String> {
    let domain = store.domain_ensure_default().await?;
    let admin = store.role_ensure(role_names::ADMIN).await?;
    let project = match store.project_find(&domain.id, PROJECT).await {
        Ok(p) => p,
        Err(Error::NotFound { .. }) => {
            match store
                .project_create(&domain.id, PROJECT, "Service accounts", true)
                .await
            {
                Ok(p) => p,
                Err(Error::Conflict { .. }) => store.project_find(&domain.id, PROJECT).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let password = random_password();
    let hash = hash_password(password.clone()).await?;
    let user = match store.user_find_with_hash(&domain.id, USER).await? {
        Some((u, _)) => {
            store.user_set_password(&u.id, &hash).await?;
            u
        }
        None => {
            let created = store
                .user_create(&NewUser {
                    domain_id: DomainId::default_domain(),
                    name: USER.to_owned(),
                    password_hash: hash.clone(),
                    enabled: true,
                    default_project_id: Some(project.id.clone()),
                    email: None,
                })
                .await;
            match created {
                Ok(u) => u,
                Err(Error::Conflict { .. }) => {
                    let (u, _) = store
                        .user_find_with_hash(&domain.id, USER)
                        .await?
                        .context("the service user vanished while it was created")?;
                    store.user_set_password(&u.id, &hash).await?;
                    u
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    store.role_assign(&project.id, &user.id, &admin.id).await?;
    Ok(password)
}

/// 32 random characters from an unambiguous alphabet.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud_compute::{HttpImageFetcher, ImageApiConfig};
    use cloud_driver::ImageFetcher;
    use cloud_test_utils::{TestApi, upload_image};
    use serde_json::json;

    fn config(api: &TestApi, password: &str) -> ImageApiConfig {
        ImageApiConfig {
            auth_url: format!("{}/identity/v3", api.url),
            username: USER.to_owned(),
            password: Some(password.to_owned()),
            user_domain_name: "Default".to_owned(),
            project_name: PROJECT.to_owned(),
            project_domain_name: "Default".to_owned(),
        }
    }

    async fn fetch(api: &TestApi, password: &str, image: &str) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        HttpImageFetcher::new(config(api, password))?
            .fetch(image, &mut out)
            .await?;
        Ok(out)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_service_user_reads_private_images_and_gets_a_new_password_each_start() {
        let api = TestApi::start().await;
        // A private image of another project.
        let owner = api.account("tenant", "alice", "member").await;
        let image = upload_image(
            &owner.client,
            "private",
            "raw",
            b"tenant bytes".to_vec(),
            json!({"visibility": "private"}),
        )
        .await;

        let first = ensure_service_user(&api.db.store).await.unwrap();
        assert_eq!(fetch(&api, &first, &image).await.unwrap(), b"tenant bytes");

        let second = ensure_service_user(&api.db.store).await.unwrap();
        assert_ne!(first, second);
        let err = fetch(&api, &first, &image).await.unwrap_err().to_string();
        assert!(err.contains("401"), "the old password is gone: {err}");
        assert_eq!(fetch(&api, &second, &image).await.unwrap(), b"tenant bytes");
        // Still one user and one service project.
        let users = api.db.store.user_list().await.unwrap();
        assert_eq!(users.iter().filter(|u| u.name == USER).count(), 1);
    }
}
