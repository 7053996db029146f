//! Tokens: random secrets handed to clients, stored only as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloud_model::identity::TokenInfo;
use cloud_model::{Error, ProjectId, Timestamp, UserId};
use cloud_store::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The stored form of a token secret.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new token secret (256 random bits) and its audit id (128 bits), both
/// URL-safe base64: every way of issuing a token, from a password or from
/// another token, draws them alike.
pub fn new_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut audit = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut audit);
    (URL_SAFE_NO_PAD.encode(bytes), URL_SAFE_NO_PAD.encode(audit))
}

/// Issues a token for `user`, scoped to `project` if given, valid for
/// `ttl_seconds`. Returns the secret (shown once) and what it stands for.
pub async fn issue(
    store: &Store,
    user: &UserId,
    project: Option<&ProjectId>,
    ttl_seconds: i64,
) -> Result<(String, TokenInfo), Error> {
    let (secret, audit_id) = new_secret();
    let now = Timestamp::now();
    // Keystone's expiry has whole seconds (tempest parses %f but other
    // clients round-trip the value).
    let expires = Timestamp::from_micros((now.micros() / 1_000_000 + ttl_seconds) * 1_000_000);
    store
        .token_insert(&token_hash(&secret), user, project, &audit_id, now, expires)
        .await?;
    let info = store
        .token_lookup(&token_hash(&secret), now)
        .await?
        .ok_or_else(|| Error::internal("token vanished right after it was issued"))?;
    Ok((secret, info))
}

/// What a presented token stands for, or an authentication error.
pub async fn validate(store: &Store, secret: &str) -> Result<TokenInfo, Error> {
    store
        .token_lookup(&token_hash(secret), Timestamp::now())
        .await?
        .ok_or_else(|| Error::unauthenticated("The request you have made requires authentication."))
}
