//! SSH keypairs, owned by a user.

use crate::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// A stored public key. The private key, when we generate one, is returned
/// once and never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keypair {
    /// Numeric id (Nova shows one; it has no other use).
    pub id: i64,
    /// Owner.
    pub user_id: UserId,
    /// Unique per user.
    pub name: String,
    /// OpenSSH public key line.
    pub public_key: String,
    /// MD5 of the key blob as `aa:bb:...`, as Nova shows it.
    pub fingerprint: String,
    /// `ssh` (x509 is not supported).
    pub key_type: String,
    /// Creation time.
    pub created_at: Timestamp,
}
