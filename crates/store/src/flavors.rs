//! Flavors, their extra specs and their access lists.

use crate::db::{Store, db_error, flag, is_unique_violation};
use crate::row::RowExt;
use cloud_model::flavor::{Flavor, NewFlavor};
use cloud_model::{Error, FlavorId, ProjectId, ResourceKind, Timestamp};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// Which flavors a listing returns.
#[derive(Clone, Debug, Default)]
pub struct FlavorFilter {
    /// `Some(true)`: public only; `Some(false)`: private only; `None`: both.
    pub is_public: Option<bool>,
    /// For non-admins: private flavors are shown only if this project has
    /// access. `None` (admins) shows every private flavor.
    pub access_project: Option<ProjectId>,
    /// Only flavors with at least this much RAM (MiB).
    pub min_ram: Option<i64>,
    /// Only flavors with at least this much disk (GiB).
    pub min_disk: Option<i64>,
    /// Start after this flavor id.
    pub marker: Option<FlavorId>,
    /// At most this many.
    pub limit: Option<i64>,
}

const COLS: &str = "id, name, vcpus, ram_mb, disk_gb, swap_mb, ephemeral_gb, rxtx_factor, \
                    is_public, disabled, description, created_at";

fn flavor_from(r: &AnyRow) -> Result<Flavor, Error> {
    Ok(Flavor {
        id: FlavorId::from_string(r.text("id")?),
        name: r.text("name")?,
        vcpus: r.int("vcpus")?,
        ram_mb: r.int("ram_mb")?,
        disk_gb: r.int("disk_gb")?,
        swap_mb: r.int("swap_mb")?,
        ephemeral_gb: r.int("ephemeral_gb")?,
        rxtx_factor: r.float("rxtx_factor")?,
        is_public: r.flag("is_public")?,
        disabled: r.flag("disabled")?,
        description: r.opt_text("description")?,
        extra_specs: BTreeMap::new(),
        created_at: r.ts("created_at")?,
    })
}

impl Store {
    /// Creates a flavor. A duplicate name or id is a conflict.
    pub async fn flavor_create(&self, new: &NewFlavor) -> Result<Flavor, Error> {
        let id = new
            .id
            .clone()
            .unwrap_or_else(|| FlavorId::from_string(uuid_string()));
        let created_at = Timestamp::now();
        sqlx::query(&format!(
            "INSERT INTO flavors ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)"
        ))
        .bind(id.as_str())
        .bind(&new.name)
        .bind(new.vcpus)
        .bind(new.ram_mb)
        .bind(new.disk_gb)
        .bind(new.swap_mb)
        .bind(new.ephemeral_gb)
        .bind(new.rxtx_factor)
        .bind(flag(new.is_public))
        .bind(new.description.clone())
        .bind(created_at.micros())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!(
                    "Flavor with name {} or ID {id} already exists.",
                    new.name
                ))
            } else {
                db_error(e)
            }
        })?;
        self.flavor_get(&id).await
    }

    /// A flavor by id, with its extra specs.
    pub async fn flavor_get(&self, id: &FlavorId) -> Result<Flavor, Error> {
        let mut flavor = sqlx::query(&format!("SELECT {COLS} FROM flavors WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| flavor_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Flavor, id))?;
        flavor.extra_specs = self.flavor_extra_specs(id).await?;
        Ok(flavor)
    }

    /// Flavors matching `filter`, by id, with their extra specs.
    pub async fn flavor_list(&self, filter: &FlavorFilter) -> Result<Vec<Flavor>, Error> {
        if let Some(marker) = &filter.marker {
            // An unknown marker is the caller's error, as in Nova.
            self.flavor_get(marker)
                .await
                .map_err(|_| Error::invalid(format!("marker [{marker}] not found")))?;
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM flavors f \
             WHERE ($1 IS NULL OR f.is_public = $1) \
               AND ($2 IS NULL OR f.is_public = 1 OR EXISTS \
                    (SELECT 1 FROM flavor_projects a WHERE a.flavor_id = f.id AND a.project_id = $2)) \
               AND ($3 IS NULL OR f.ram_mb >= $3) \
               AND ($4 IS NULL OR f.disk_gb >= $4) \
               AND ($5 IS NULL OR f.id > $5) \
             ORDER BY f.id"
        ))
        .bind(filter.is_public.map(flag))
        .bind(filter.access_project.as_ref().map(|p| p.as_str().to_owned()))
        .bind(filter.min_ram)
        .bind(filter.min_disk)
        .bind(filter.marker.as_ref().map(|m| m.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut flavors = rows
            .iter()
            .map(flavor_from)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(limit) = filter.limit {
            flavors.truncate(limit.max(0) as usize);
        }
        let specs = sqlx::query("SELECT flavor_id, spec_key, spec_value FROM flavor_extra_specs")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut by_flavor: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in &specs {
            by_flavor
                .entry(r.text("flavor_id")?)
                .or_default()
                .insert(r.text("spec_key")?, r.text("spec_value")?);
        }
        for f in &mut flavors {
            if let Some(s) = by_flavor.remove(f.id.as_str()) {
                f.extra_specs = s;
            }
        }
        Ok(flavors)
    }

    /// Deletes a flavor. Servers keep their own snapshot of it.
    pub async fn flavor_delete(&self, id: &FlavorId) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM flavors WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Flavor, id));
        }
        Ok(())
    }

    /// Whether a project may use a flavor (public, or on its access list).
    pub async fn flavor_visible_to(
        &self,
        flavor: &Flavor,
        project: &ProjectId,
    ) -> Result<bool, Error> {
        if flavor.is_public {
            return Ok(true);
        }
        let hit = sqlx::query(
            "SELECT 1 AS one FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2",
        )
        .bind(flavor.id.as_str())
        .bind(project.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(hit.is_some())
    }

    /// Extra specs of a flavor.
    pub async fn flavor_extra_specs(
        &self,
        id: &FlavorId,
    ) -> Result<BTreeMap<String, String>, Error> {
        sqlx::query("SELECT spec_key, spec_value FROM flavor_extra_specs WHERE flavor_id = $1")
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| Ok((r.text("spec_key")?, r.text("spec_value")?)))
            .collect()
    }

    /// Adds or replaces extra specs (merge, as Nova's POST does).
    pub async fn flavor_extra_specs_set(
        &self,
        id: &FlavorId,
        specs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT id FROM flavors WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if exists.is_none() {
            return Err(Error::not_found(ResourceKind::Flavor, id));
        }
        for (k, v) in specs {
            sqlx::query(
                "INSERT INTO flavor_extra_specs (flavor_id, spec_key, spec_value) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (flavor_id, spec_key) DO UPDATE SET spec_value = excluded.spec_value",
            )
            .bind(id.as_str())
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        self.flavor_extra_specs(id).await
    }

    /// Removes one extra spec.
    pub async fn flavor_extra_spec_delete(&self, id: &FlavorId, key: &str) -> Result<(), Error> {
        let r =
            sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND spec_key = $2")
                .bind(id.as_str())
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::FlavorExtraSpec, key));
        }
        Ok(())
    }

    /// Projects with access to a private flavor.
    pub async fn flavor_access_list(&self, id: &FlavorId) -> Result<Vec<ProjectId>, Error> {
        sqlx::query(
            "SELECT project_id FROM flavor_projects WHERE flavor_id = $1 ORDER BY project_id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok(ProjectId::from_string(r.text("project_id")?)))
        .collect()
    }

    /// Gives a project access to a flavor; a repeat is a conflict, as in Nova.
    pub async fn flavor_access_add(&self, id: &FlavorId, project: &ProjectId) -> Result<(), Error> {
        sqlx::query("INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)")
            .bind(id.as_str())
            .bind(project.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict(format!(
                        "Flavor access already exists for flavor {id} and project {project} combination."
                    ))
                } else {
                    db_error(e)
                }
            })?;
        Ok(())
    }

    /// Takes a project's access away.
    pub async fn flavor_access_remove(
        &self,
        id: &FlavorId,
        project: &ProjectId,
    ) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2")
            .bind(id.as_str())
            .bind(project.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(
                ResourceKind::FlavorAccess,
                format!("{id}/{project}"),
            ));
        }
        Ok(())
    }
}

/// A new random UUID as text (flavor ids are strings).
fn uuid_string() -> String {
    cloud_model::InstanceId::new().to_string()
}
