//! Image records. The bytes live in the API's file store; the record's
//! `status` is the lock that keeps two uploads from racing.

use crate::Scope;
use crate::db::{Store, db_error, flag, is_unique_violation, lock_scoped_row};
use crate::row::RowExt;
use cloud_model::image::Image;
use cloud_model::{Error, ImageId, InstanceId, ProjectId, ResourceKind, Timestamp};
use sqlx::any::AnyRow;

/// Which images a listing returns.
#[derive(Clone, Debug)]
pub struct ImageFilter {
    /// Whose images; public and community images are always included.
    pub scope: Scope,
    /// Exact name.
    pub name: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Exact visibility.
    pub visibility: Option<String>,
    /// Also list other projects' community images. Glance leaves them out
    /// of a default listing and shows them only when asked for
    /// (`visibility=community` or `visibility=all`); they stay readable by
    /// id either way.
    pub include_community: bool,
    /// Exact disk format.
    pub disk_format: Option<String>,
    /// Exact container format.
    pub container_format: Option<String>,
    /// Exact owner.
    pub owner: Option<ProjectId>,
    /// Only these ids (`id=in:a,b`).
    pub ids: Option<Vec<ImageId>>,
    /// Only images carrying every one of these tags.
    pub tags: Vec<String>,
    /// Only protected (`Some(true)`) or unprotected images.
    pub protected: Option<bool>,
    /// `Some(false)` hides hidden images (the default), `Some(true)` shows
    /// only them, `None` shows both.
    pub os_hidden: Option<bool>,
    /// Start after this image (newest first).
    pub marker: Option<ImageId>,
    /// At most this many.
    pub limit: i64,
}

/// What an upload learned about the bytes it stored.
#[derive(Clone, Debug)]
pub struct ImageUpload {
    /// Bytes stored.
    pub size: i64,
    /// MD5 hex.
    pub checksum: String,
    /// SHA-512 hex.
    pub sha512: String,
    /// Virtual disk size, when the format says.
    pub virtual_size: Option<i64>,
}

const COLS: &str = "id, owner, name, status, disk_format, container_format, visibility, size, \
                    virtual_size, checksum, os_hash_algo, os_hash_value, min_disk, min_ram, \
                    protected, os_hidden, properties, tags, created_at, updated_at";

fn image_from(r: &AnyRow) -> Result<Image, Error> {
    Ok(Image {
        id: r.parsed("id", ImageId::parse)?,
        owner: ProjectId::from_string(r.text("owner")?),
        name: r.opt_text("name")?,
        status: r.text("status")?,
        disk_format: r.opt_text("disk_format")?,
        container_format: r.opt_text("container_format")?,
        visibility: r.text("visibility")?,
        size: r.opt_int("size")?,
        virtual_size: r.opt_int("virtual_size")?,
        checksum: r.opt_text("checksum")?,
        os_hash_algo: r.opt_text("os_hash_algo")?,
        os_hash_value: r.opt_text("os_hash_value")?,
        min_disk: r.int("min_disk")?,
        min_ram: r.int("min_ram")?,
        protected: r.flag("protected")?,
        os_hidden: r.flag("os_hidden")?,
        properties: r.json("properties")?,
        tags: r.json("tags")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// The bytes of image data an owner stores, other than image `$2`'s.
const USED_BYTES: &str = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM images \
     WHERE owner = $1 AND status = 'active' AND id <> $2";

/// Refuses, inside `tx`, data of `size` bytes for image `id` if its
/// owner's other images and it would go over `limit` bytes (-1: none).
/// Uploads of one owner finishing at once are serialized (an advisory
/// lock on PostgreSQL; SQLite has one writer), so two cannot both fit in
/// the same room.
async fn check_size_total(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: crate::db::Backend,
    id: ImageId,
    size: i64,
    limit: i64,
) -> Result<(), Error> {
    if limit < 0 {
        return Ok(());
    }
    let owner = sqlx::query("SELECT owner FROM images WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .map(|r| r.text("owner"))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::Image, id))?;
    if backend == crate::db::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('image_size_total:' || $1))")
            .bind(&owner)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    let used = sqlx::query(USED_BYTES)
        .bind(&owner)
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?
        .int("n")?;
    if used.saturating_add(size) > limit {
        return Err(Error::quota(format!(
            "Image storage quota exceeded: {size} bytes of data for image {id} would take \
             project {owner}'s images to {} bytes, over its image_size_total limit of {limit} \
             bytes.",
            used.saturating_add(size)
        )));
    }
    Ok(())
}

impl Store {
    /// Stores a new image record (status `queued`).
    pub async fn image_create(&self, image: &Image) -> Result<(), Error> {
        sqlx::query(&format!(
            "INSERT INTO images ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        ))
        .bind(image.id.to_string())
        .bind(image.owner.as_str())
        .bind(image.name.clone())
        .bind(&image.status)
        .bind(image.disk_format.clone())
        .bind(image.container_format.clone())
        .bind(&image.visibility)
        .bind(image.size)
        .bind(image.virtual_size)
        .bind(image.checksum.clone())
        .bind(image.os_hash_algo.clone())
        .bind(image.os_hash_value.clone())
        .bind(image.min_disk)
        .bind(image.min_ram)
        .bind(flag(image.protected))
        .bind(flag(image.os_hidden))
        .bind(to_json(&image.properties))
        .bind(to_json(&image.tags))
        .bind(image.created_at.micros())
        .bind(image.updated_at.micros())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!(
                    "Image with identifier {} already exists.",
                    image.id
                ))
            } else {
                db_error(e)
            }
        })?;
        Ok(())
    }

    /// An image the scope may see: its own, or public/community ones.
    pub async fn image_get(&self, id: ImageId, scope: &Scope) -> Result<Image, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM images WHERE id = $1 AND \
             ($2 IS NULL OR owner = $2 OR visibility IN ('public', 'community'))"
        ))
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| image_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::Image, id))
    }

    /// Images matching `filter`, newest first.
    pub async fn image_list(&self, filter: &ImageFilter) -> Result<Vec<Image>, Error> {
        let marker = match filter.marker {
            Some(m) => Some(
                self.image_get(m, &filter.scope)
                    .await
                    .map_err(|_| Error::invalid(format!("marker {m} could not be found")))?,
            ),
            None => None,
        };
        // Filters SQL cannot express portably (list membership) run on the
        // rows; only without them may SQL apply the limit itself.
        let post_filter = filter.ids.is_some() || !filter.tags.is_empty();
        let limit = if post_filter {
            String::new()
        } else {
            format!(" LIMIT {}", filter.limit.max(0))
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM images WHERE \
               ($1 IS NULL OR owner = $1 OR visibility = 'public' \
                 OR (visibility = 'community' AND $11 = 1)) \
               AND ($2 IS NULL OR name = $2) AND ($3 IS NULL OR status = $3) \
               AND ($4 IS NULL OR visibility = $4) AND ($5 IS NULL OR disk_format = $5) \
               AND ($6 IS NULL OR container_format = $6) AND ($7 IS NULL OR owner = $7) \
               AND ($8 IS NULL OR os_hidden = $8) AND ($12 IS NULL OR protected = $12) \
               AND ($9 IS NULL OR created_at < $9 OR (created_at = $9 AND id < $10)) \
             ORDER BY created_at DESC, id DESC{limit}"
        ))
        .bind(filter.scope.project().map(|p| p.as_str().to_owned()))
        .bind(filter.name.clone())
        .bind(filter.status.clone())
        .bind(filter.visibility.clone())
        .bind(filter.disk_format.clone())
        .bind(filter.container_format.clone())
        .bind(filter.owner.as_ref().map(|o| o.as_str().to_owned()))
        .bind(filter.os_hidden.map(flag))
        .bind(marker.as_ref().map(|m| m.created_at.micros()))
        .bind(marker.as_ref().map(|m| m.id.to_string()))
        .bind(flag(filter.include_community))
        .bind(filter.protected.map(flag))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut out = Vec::new();
        for r in &rows {
            if out.len() as i64 >= filter.limit {
                break;
            }
            let img = image_from(r)?;
            if filter.ids.as_ref().is_some_and(|w| !w.contains(&img.id)) {
                continue;
            }
            if !filter.tags.iter().all(|t| img.tags.contains(t)) {
                continue;
            }
            out.push(img);
        }
        Ok(out)
    }

    /// Changes an image from what it is now (a PATCH): `change` gets the
    /// current record, read while the image's row is locked, and returns
    /// the new one (`None`: nothing to change, or an error: nothing is
    /// written); its mutable fields are written in the same transaction.
    /// So concurrent patches of different properties all land (a record
    /// read by one request and written back whole by another lost the
    /// other's changes: issue 16, finding 5). Returns the image as stored
    /// afterwards.
    pub async fn image_modify<E>(
        &self,
        id: ImageId,
        scope: &Scope,
        change: impl FnOnce(&Image) -> Result<Option<Image>, E> + Send,
    ) -> Result<Image, E>
    where
        E: From<Error> + Send,
    {
        let mut tx = self.begin().await?;
        lock_scoped_row(
            &mut tx,
            "UPDATE images SET updated_at = updated_at WHERE id = $1 AND \
             ($2 IS NULL OR owner = $2 OR visibility IN ('public', 'community'))",
            id,
            scope,
            ResourceKind::Image,
        )
        .await?;
        let row = sqlx::query(&format!("SELECT {COLS} FROM images WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let current = image_from(&row)?;
        let image = match change(&current) {
            Ok(Some(image)) => image,
            Ok(None) => {
                tx.rollback().await.map_err(db_error)?;
                return Ok(current);
            }
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        sqlx::query(
            "UPDATE images SET name = $2, disk_format = $3, container_format = $4, \
             visibility = $5, min_disk = $6, min_ram = $7, protected = $8, os_hidden = $9, \
             properties = $10, tags = $11, updated_at = $12 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(image.name.clone())
        .bind(image.disk_format.clone())
        .bind(image.container_format.clone())
        .bind(&image.visibility)
        .bind(image.min_disk)
        .bind(image.min_ram)
        .bind(flag(image.protected))
        .bind(flag(image.os_hidden))
        .bind(to_json(&image.properties))
        .bind(to_json(&image.tags))
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let row = sqlx::query(&format!("SELECT {COLS} FROM images WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let stored = image_from(&row)?;
        tx.commit().await.map_err(db_error)?;
        Ok(stored)
    }

    /// Moves an image from `queued` to `saving`, claiming the right to
    /// upload. An image left `saving` by an upload whose API process died
    /// (its claim not renewed since `stale_before`, see
    /// [`Store::image_renew_upload`]) may be claimed again, so a crash
    /// never strands an image. Any other status is a conflict that names it.
    pub async fn image_begin_upload(
        &self,
        id: ImageId,
        stale_before: Timestamp,
    ) -> Result<(), Error> {
        let r = sqlx::query(
            "UPDATE images SET status = 'saving', updated_at = $2 WHERE id = $1 \
             AND (status = 'queued' OR (status = 'saving' AND updated_at < $3))",
        )
        .bind(id.to_string())
        .bind(Timestamp::now().micros())
        .bind(stale_before.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        let status: Option<String> = sqlx::query("SELECT status FROM images WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| r.text("status"))
            .transpose()?;
        match status {
            None => Err(Error::not_found(ResourceKind::Image, id)),
            Some(s) => Err(Error::conflict(format!(
                "Image status transition from {s} to saving is not allowed: data can only be \
                 uploaded to a queued image."
            ))),
        }
    }

    /// Renews an upload's claim while its data streams in, so that it is
    /// not mistaken for an abandoned one. Returns whether the image is
    /// still `saving`.
    pub async fn image_renew_upload(&self, id: ImageId) -> Result<bool, Error> {
        self.stamp_saving_image(id, "saving").await
    }

    /// Moves a `saving` image to `status` (which may be `saving` again),
    /// stamping `updated_at`; whether the image was `saving`.
    async fn stamp_saving_image(&self, id: ImageId, status: &str) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE images SET status = $3, updated_at = $2 WHERE id = $1 AND status = 'saving'",
        )
        .bind(id.to_string())
        .bind(Timestamp::now().micros())
        .bind(status)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a finished upload: `saving` -> `active` with sizes and hashes,
    /// if the owner's images stay within `size_total` bytes (Glance's
    /// `image_size_total`; `None` or -1: no limit), checked in the same
    /// transaction; otherwise a quota error and the image stays `saving`
    /// for the caller to release.
    pub async fn image_finish_upload(
        &self,
        id: ImageId,
        up: &ImageUpload,
        size_total: Option<i64>,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        if let Some(limit) = size_total {
            check_size_total(&mut tx, self.backend(), id, up.size, limit).await?;
        }
        let r = sqlx::query(
            "UPDATE images SET status = 'active', size = $2, checksum = $3, \
             os_hash_algo = 'sha512', os_hash_value = $4, virtual_size = $5, updated_at = $6 \
             WHERE id = $1 AND status = 'saving'",
        )
        .bind(id.to_string())
        .bind(up.size)
        .bind(&up.checksum)
        .bind(&up.sha512)
        .bind(up.virtual_size)
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::conflict(format!(
                "Image {id} was deleted or changed while its data was being uploaded."
            )));
        }
        tx.commit().await.map_err(db_error)
    }

    /// Bytes of image data `owner` stores: the sizes of its images that
    /// have data (Glance's `image_size_total` usage).
    pub async fn image_bytes_used(&self, owner: &ProjectId) -> Result<i64, Error> {
        sqlx::query(USED_BYTES)
            .bind(owner.as_str())
            .bind("")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?
            .int("n")
    }

    /// Returns a failed upload's image to `queued` so it can be retried.
    /// Returns whether it did: `false` when the image is no longer
    /// `saving` (deleted, or its upload was recorded after all).
    pub async fn image_abort_upload(&self, id: ImageId) -> Result<bool, Error> {
        self.stamp_saving_image(id, "queued").await
    }

    /// The snapshot images taken of server `instance` (their
    /// `instance_uuid` property names it), in any status: what a snapshot
    /// that never finished leaves behind for the conductor to remove.
    pub async fn image_snapshots_of(&self, instance: InstanceId) -> Result<Vec<Image>, Error> {
        let needle = format!("%\"instance_uuid\":\"{instance}\"%");
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM images WHERE properties LIKE $1"
        ))
        .bind(needle)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut out = Vec::new();
        for r in &rows {
            let image = image_from(r)?;
            if image.properties.get("instance_uuid").map(String::as_str)
                == Some(instance.to_string().as_str())
            {
                out.push(image);
            }
        }
        Ok(out)
    }

    /// Deletes an image record.
    pub async fn image_delete(&self, id: ImageId) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM images WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Image, id));
        }
        Ok(())
    }
}
