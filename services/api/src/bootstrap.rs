//! First-start bootstrap: the default domain, the three roles, the `admin`
//! project and user, and (optionally) default flavors.
//!
//! Idempotent: run at every start, it creates only what is missing and
//! never changes an existing admin's password.

use crate::auth::password::hash_password;
use cloud_model::flavor::NewFlavor;
use cloud_model::identity::role_names;
use cloud_model::{DomainId, Error, FlavorId};
use cloud_store::{FlavorFilter, NewUser, Store};
use rand::Rng;

/// What the bootstrap did that the operator must know.
#[derive(Debug, Default)]
pub struct BootstrapOutcome {
    /// Set when the admin user was created with a generated password: it
    /// is shown once and never stored in clear.
    pub generated_admin_password: Option<String>,
    /// Whether the admin user was created by this run.
    pub admin_created: bool,
}

/// Ensures the base identity records exist. `admin_password` is used only
/// when the admin user does not exist yet.
pub async fn bootstrap(
    store: &Store,
    admin_password: Option<String>,
    default_flavors: bool,
) -> Result<BootstrapOutcome, Error> {
    let mut outcome = BootstrapOutcome::default();
    let domain = store.domain_ensure_default().await?;
    let admin_role = store.role_ensure(role_names::ADMIN).await?;
    store.role_ensure(role_names::MEMBER).await?;
    store.role_ensure(role_names::READER).await?;
    let project = match store.project_find(&domain.id, "admin").await {
        Ok(p) => p,
        Err(Error::NotFound { .. }) => {
            match store
                .project_create(&domain.id, "admin", "Bootstrap admin project", true)
                .await
            {
                Ok(p) => p,
                // Another process bootstrapping at the same time won.
                Err(Error::Conflict { .. }) => store.project_find(&domain.id, "admin").await?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let user = match store.user_find_with_hash(&domain.id, "admin").await? {
        Some((u, _)) => u,
        None => {
            let password = match admin_password {
                Some(p) => p,
                None => {
                    let p = generate_password();
                    outcome.generated_admin_password = Some(p.clone());
                    p
                }
            };
            let created = store
                .user_create(&NewUser {
                    domain_id: DomainId::default_domain(),
                    name: "admin".to_owned(),
                    password_hash: hash_password(password).await?,
                    enabled: true,
                    default_project_id: Some(project.id.clone()),
                    email: None,
                })
                .await;
            match created {
                Ok(u) => {
                    outcome.admin_created = true;
                    u
                }
                Err(Error::Conflict { .. }) => {
                    outcome.generated_admin_password = None;
                    store
                        .user_find_with_hash(&domain.id, "admin")
                        .await?
                        .map(|(u, _)| u)
                        .ok_or_else(|| Error::internal("admin user vanished"))?
                }
                Err(e) => return Err(e),
            }
        }
    };
    store
        .role_assign(&project.id, &user.id, &admin_role.id)
        .await?;
    store.security_group_ensure_default(&project.id).await?;
    if default_flavors
        && store
            .flavor_list(&FlavorFilter::default())
            .await?
            .is_empty()
    {
        for (id, name, vcpus, ram, disk) in [
            ("1", "m1.tiny", 1, 512, 1),
            ("2", "m1.small", 1, 2048, 20),
            ("3", "m1.medium", 2, 4096, 40),
        ] {
            let r = store
                .flavor_create(&NewFlavor {
                    id: Some(FlavorId::from_string(id)),
                    name: name.to_owned(),
                    vcpus,
                    ram_mb: ram,
                    disk_gb: disk,
                    swap_mb: 0,
                    ephemeral_gb: 0,
                    rxtx_factor: 1.0,
                    is_public: true,
                    description: None,
                })
                .await;
            match r {
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(outcome)
}

/// A random 20-character password from an unambiguous alphabet.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
