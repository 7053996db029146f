//! Password hashing with argon2id.
//!
//! The OpenStack clients authenticate on every command, so a verification
//! must stay in the tens of milliseconds: we use argon2id with 19 MiB of
//! memory and two passes (OWASP's minimum recommendation), which costs
//! about 20-40 ms on one core. Hashing runs on the blocking pool so it
//! never stalls the async workers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use cloud_model::Error;
use rand::rngs::OsRng;

fn hasher() -> Argon2<'static> {
    // 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string (salt and parameters included).
pub async fn hash_password(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
}

/// Checks `password` against a stored PHC hash. When there is no user
/// (`hash` is `None`) the same work is done against a dummy hash, so the
/// response time does not reveal which user names exist.
pub async fn verify_password(hash: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let dummy;
        let stored = match &hash {
            Some(h) => h.as_str(),
            None => {
                dummy = dummy_hash();
                dummy.as_str()
            }
        };
        let ok = PasswordHash::new(stored)
            .map(|parsed| {
                hasher()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && hash.is_some()
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            hasher()
                .hash_password(b"not a password", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hash_password("s3cret".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(Some(h.clone()), "s3cret".into()).await);
        assert!(!verify_password(Some(h), "wrong".into()).await);
        assert!(!verify_password(None, "s3cret".into()).await);
    }
}
