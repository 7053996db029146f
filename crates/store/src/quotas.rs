//! Quota limits: per-project overrides of the configured defaults, and
//! per-user overrides of a project's limits.
//!
//! User overrides live in the same table as the project's, under the
//! owner key `<project>/user/<user>` (project ids never contain `/`), so
//! they need no schema of their own and a project reset removes them too.

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::quota::QuotaDefaults;
use cloud_model::{Error, ProjectId, UserId};
use std::collections::BTreeMap;

/// A project's limit and use of one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The limit (-1: unlimited).
    pub limit: i64,
    /// Current use.
    pub in_use: i64,
}

/// The owner key of a user's overrides in `quota_limits`.
fn user_key(project: &ProjectId, user: &UserId) -> String {
    format!("{}/user/{}", project.as_str(), user.as_str())
}

/// The `LIKE` pattern (escape character `\`) matching every per-user
/// override key of `project`, the project id escaped so that it matches
/// literally: resetting a project's quotas and deleting the project both
/// drop them.
pub(crate) fn user_overrides_pattern(project: &ProjectId) -> String {
    let escaped: String = project
        .as_str()
        .chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("{escaped}/user/%")
}

impl Store {
    /// Effective limits of a project: its overrides over `defaults`.
    pub async fn quota_limits(
        &self,
        project: &ProjectId,
        defaults: &QuotaDefaults,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let mut limits: BTreeMap<String, i64> = cloud_model::quota::QUOTA_RESOURCES
            .iter()
            .map(|r| ((*r).to_owned(), defaults.get(r)))
            .collect();
        let rows =
            sqlx::query("SELECT resource, hard_limit FROM quota_limits WHERE project_id = $1")
                .bind(project.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        for r in &rows {
            limits.insert(r.text("resource")?, r.int("hard_limit")?);
        }
        Ok(limits)
    }

    /// Sets a project's limit for one resource.
    pub async fn quota_set(
        &self,
        project: &ProjectId,
        resource: &str,
        limit: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO quota_limits (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
        )
        .bind(project.as_str())
        .bind(resource)
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Effective limits of `user` in `project`: the user's overrides over
    /// the project's limits.
    pub async fn quota_user_limits(
        &self,
        project: &ProjectId,
        user: &UserId,
        defaults: &QuotaDefaults,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let mut limits = self.quota_limits(project, defaults).await?;
        let rows =
            sqlx::query("SELECT resource, hard_limit FROM quota_limits WHERE project_id = $1")
                .bind(user_key(project, user))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        for r in &rows {
            limits.insert(r.text("resource")?, r.int("hard_limit")?);
        }
        Ok(limits)
    }

    /// Sets several limits of a project (or, with `user`, of one user in
    /// it) at once: all of them or, on error, none (an API update never
    /// leaves half its values applied).
    pub async fn quota_set_many(
        &self,
        project: &ProjectId,
        user: Option<&UserId>,
        limits: &BTreeMap<String, i64>,
    ) -> Result<(), Error> {
        let owner = match user {
            Some(u) => user_key(project, u),
            None => project.as_str().to_owned(),
        };
        let mut tx = self.begin().await?;
        for (resource, limit) in limits {
            sqlx::query(
                "INSERT INTO quota_limits (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
                 ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
            )
            .bind(&owner)
            .bind(resource)
            .bind(*limit)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Removes a project's own overrides of `resources` (back to the
    /// defaults); its users' overrides stay.
    pub async fn quota_unset(&self, project: &ProjectId, resources: &[&str]) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        for resource in resources {
            sqlx::query("DELETE FROM quota_limits WHERE project_id = $1 AND resource = $2")
                .bind(project.as_str())
                .bind(*resource)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Removes one user's overrides (back to the project's limits).
    pub async fn quota_reset_user(&self, project: &ProjectId, user: &UserId) -> Result<(), Error> {
        sqlx::query("DELETE FROM quota_limits WHERE project_id = $1")
            .bind(user_key(project, user))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Removes a project's overrides, its users' included (back to
    /// defaults).
    pub async fn quota_reset(&self, project: &ProjectId) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM quota_limits WHERE project_id = $1 OR project_id LIKE $2 ESCAPE '\\'",
        )
        .bind(project.as_str())
        .bind(user_overrides_pattern(project))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// A project's tracked compute usage: `instances`, `cores`, `ram`
    /// (changed atomically by server create and delete) and `server_groups`.
    pub async fn compute_usage(&self, project: &ProjectId) -> Result<BTreeMap<String, i64>, Error> {
        let mut usage: BTreeMap<String, i64> = ["instances", "cores", "ram"]
            .iter()
            .map(|r| ((*r).to_owned(), 0))
            .collect();
        let rows = sqlx::query("SELECT resource, in_use FROM quota_usages WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        for r in &rows {
            usage.insert(r.text("resource")?, r.int("in_use")?);
        }
        let groups = sqlx::query("SELECT COUNT(*) AS n FROM server_groups WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?
            .int("n")?;
        usage.insert("server_groups".to_owned(), groups);
        Ok(usage)
    }

    /// Counts a project's networks, subnets and ports, keyed by their
    /// Neutron names (`network`, `subnet`, `port`), in one query.
    pub async fn network_counts(
        &self,
        project: &ProjectId,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM networks WHERE project_id = $1) AS networks, \
                    (SELECT COUNT(*) FROM subnets WHERE project_id = $1) AS subnets, \
                    (SELECT COUNT(*) FROM ports WHERE project_id = $1) AS ports",
        )
        .bind(project.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(BTreeMap::from([
            ("network".to_owned(), r.int("networks")?),
            ("subnet".to_owned(), r.int("subnets")?),
            ("port".to_owned(), r.int("ports")?),
        ]))
    }

    /// Counts a project's security groups and rules, and a user's keypairs
    /// (the resources whose use is not tracked by the compute quota).
    pub async fn quota_counts(
        &self,
        project: &ProjectId,
        user: &cloud_model::UserId,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM security_groups WHERE project_id = $1) AS sgs, \
                    (SELECT COUNT(*) FROM security_group_rules WHERE project_id = $1) AS rules, \
                    (SELECT COUNT(*) FROM keypairs WHERE user_id = $2) AS keys",
        )
        .bind(project.as_str())
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(BTreeMap::from([
            ("security_groups".to_owned(), r.int("sgs")?),
            ("security_group_rules".to_owned(), r.int("rules")?),
            ("key_pairs".to_owned(), r.int("keys")?),
        ]))
    }
}
