//! One-time console tokens (`console_tokens`): the secret in a serial
//! console URL. Only a hash is stored; a token is good once, until it
//! expires, and for the one server it was made for.

use crate::db::{Store, db_error};
use cloud_model::{Error, InstanceId, Timestamp};

impl Store {
    /// Records a token (by its hash) for `instance`'s console of
    /// `console_type`, valid until `expires_at`. Expired tokens are purged
    /// on the way, so the table holds only live ones.
    pub async fn console_token_create(
        &self,
        token_hash: &str,
        instance: InstanceId,
        console_type: &str,
        expires_at: Timestamp,
    ) -> Result<(), Error> {
        let now = Timestamp::now();
        sqlx::query("DELETE FROM console_tokens WHERE expires_at <= $1")
            .bind(now.micros())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO console_tokens \
             (token_hash, instance_id, console_type, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.to_owned())
        .bind(instance.to_string())
        .bind(console_type.to_owned())
        .bind(expires_at.micros())
        .bind(now.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Uses up a token: true, and the token is gone, when it was live and
    /// made for `instance`'s console of `console_type`; false otherwise
    /// (unknown, used, expired, or another server's). One statement, so
    /// two connections racing with one token cannot both win.
    pub async fn console_token_consume(
        &self,
        token_hash: &str,
        instance: InstanceId,
        console_type: &str,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "DELETE FROM console_tokens WHERE token_hash = $1 AND instance_id = $2 \
             AND console_type = $3 AND expires_at > $4",
        )
        .bind(token_hash.to_owned())
        .bind(instance.to_string())
        .bind(console_type.to_owned())
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }
}
