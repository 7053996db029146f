//! One-time console tokens: the secret in a serial console URL.
//!
//! A token is 32 random bytes (hex) handed to the user once, in the URL;
//! the store keeps only its SHA-256, so a leaked database row opens no
//! console. A token is good for one connection, for the server it was made
//! for, until `[api.serial_console] token_ttl_secs` pass. The store holds
//! them (not this process's memory) because the API may run as several
//! replicas behind one address.

use crate::error::ApiError;
use crate::state::AppState;
use cloud_model::{InstanceId, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The console type of serial console tokens (Nova's name).
pub const SERIAL: &str = "serial";

/// A fresh token for `instance`'s console of `console_type`, recorded (by
/// its hash) until the configured lifetime passes.
pub async fn issue(
    state: &AppState,
    instance: InstanceId,
    console_type: &str,
) -> Result<String, ApiError> {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let token = hex::encode(secret);
    let ttl = state.config().serial_console.token_ttl_secs;
    let expires_at = Timestamp::now().plus_seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
    state
        .store()
        .console_token_create(&hash(&token), instance, console_type, expires_at)
        .await?;
    Ok(token)
}

/// Uses up `token`: true when it was live and made for `instance`'s
/// console of `console_type` (it then works no more); false for unknown,
/// used, expired or another server's tokens (which stay as they were).
pub async fn redeem(
    state: &AppState,
    token: &str,
    instance: InstanceId,
    console_type: &str,
) -> Result<bool, ApiError> {
    Ok(state
        .store()
        .console_token_consume(&hash(token), instance, console_type)
        .await?)
}

/// What the store keeps of a token.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_sees_a_digest_not_the_token() {
        let h = hash("abc");
        assert_eq!(h.len(), 64);
        assert_ne!(h, "abc");
        assert_eq!(h, hash("abc"));
        assert_ne!(h, hash("abd"));
    }
}
