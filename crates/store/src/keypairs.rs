//! Keypairs: public keys owned by a user.

use crate::db::{Store, db_error, is_unique_violation};
use crate::row::RowExt;
use cloud_model::keypair::Keypair;
use cloud_model::{Error, ResourceKind, Timestamp, UserId};
use rand::Rng;
use sqlx::any::AnyRow;

const COLS: &str = "id, user_id, name, public_key, fingerprint, key_type, created_at";

fn keypair_from(r: &AnyRow) -> Result<Keypair, Error> {
    Ok(Keypair {
        id: r.int("id")?,
        user_id: UserId::from_string(r.text("user_id")?),
        name: r.text("name")?,
        public_key: r.text("public_key")?,
        fingerprint: r.text("fingerprint")?,
        key_type: r.text("key_type")?,
        created_at: r.ts("created_at")?,
    })
}

impl Store {
    /// Stores a keypair; a duplicate name for the same user is a conflict.
    /// `limit` is the user's keypair quota (-1: none), checked in the same
    /// statement so concurrent creates cannot exceed it.
    pub async fn keypair_create(
        &self,
        user: &UserId,
        name: &str,
        public_key: &str,
        fingerprint: &str,
        limit: i64,
    ) -> Result<Keypair, Error> {
        let kp = Keypair {
            id: rand::thread_rng().gen_range(1..i64::from(i32::MAX)),
            user_id: user.clone(),
            name: name.to_owned(),
            public_key: public_key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            key_type: "ssh".to_owned(),
            created_at: Timestamp::now(),
        };
        let r = sqlx::query(&format!(
            "INSERT INTO keypairs ({COLS}) SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE $8 < 0 OR (SELECT COUNT(*) FROM keypairs WHERE user_id = $2) < $8"
        ))
        .bind(kp.id)
        .bind(user.as_str())
        .bind(name)
        .bind(public_key)
        .bind(fingerprint)
        .bind(&kp.key_type)
        .bind(kp.created_at.micros())
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!("Key pair '{name}' already exists."))
            } else {
                db_error(e)
            }
        })?;
        if r.rows_affected() == 0 {
            return Err(Error::quota(format!(
                "Quota exceeded, too many key pairs (limit {limit})."
            )));
        }
        Ok(kp)
    }

    /// A user's keypair by name.
    pub async fn keypair_get(&self, user: &UserId, name: &str) -> Result<Keypair, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM keypairs WHERE user_id = $1 AND name = $2"
        ))
        .bind(user.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| keypair_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::Keypair, name))
    }

    /// A user's keypairs, by name.
    pub async fn keypair_list(&self, user: &UserId) -> Result<Vec<Keypair>, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM keypairs WHERE user_id = $1 ORDER BY name"
        ))
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(keypair_from)
        .collect()
    }

    /// Deletes a user's keypair.
    pub async fn keypair_delete(&self, user: &UserId, name: &str) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM keypairs WHERE user_id = $1 AND name = $2")
            .bind(user.as_str())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Keypair, name));
        }
        Ok(())
    }
}
