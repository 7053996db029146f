//! Deleting a project: refused while it still owns resources, so that
//! nothing is left behind without an owner (docs/adr/0008-project-deletion.md).
//!
//! What a project gets without asking for it, its default security group
//! and its quota limits and usage, goes with it. Everything a user made
//! (servers, networks, subnets, ports, routers, floating IPs, other
//! security groups, server groups, images) must be deleted first, through
//! the APIs that know how to take it apart (a server's VM, a network's
//! DHCP namespace, an image's data).

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::{Error, ProjectId, ResourceKind};

/// What a project may still own, as (count query, singular, plural).
/// Ports that belong to a network, router or floating IP (`network:*`)
/// are not listed: they go with what owns them, which is listed.
const LEFTOVERS: &[(&str, &str, &str)] = &[
    (
        "SELECT COUNT(*) AS n FROM instances WHERE project_id = $1 AND deleted_at IS NULL",
        "server",
        "servers",
    ),
    (
        "SELECT COUNT(*) AS n FROM networks WHERE project_id = $1",
        "network",
        "networks",
    ),
    (
        "SELECT COUNT(*) AS n FROM subnets WHERE project_id = $1",
        "subnet",
        "subnets",
    ),
    (
        "SELECT COUNT(*) AS n FROM ports WHERE project_id = $1 \
         AND device_owner NOT LIKE 'network:%'",
        "port",
        "ports",
    ),
    (
        "SELECT COUNT(*) AS n FROM routers WHERE project_id = $1",
        "router",
        "routers",
    ),
    (
        "SELECT COUNT(*) AS n FROM floatingips WHERE project_id = $1",
        "floating IP",
        "floating IPs",
    ),
    (
        "SELECT COUNT(*) AS n FROM security_groups WHERE project_id = $1 AND is_default = 0",
        "security group",
        "security groups",
    ),
    (
        "SELECT COUNT(*) AS n FROM server_groups WHERE project_id = $1",
        "server group",
        "server groups",
    ),
    (
        "SELECT COUNT(*) AS n FROM images WHERE owner = $1",
        "image",
        "images",
    ),
];

impl Store {
    /// Deletes a project if it owns nothing any more, with its default
    /// security group (and its rules), its quota limits and usage, role
    /// assignments and tokens. If it still owns resources, nothing is
    /// deleted and the conflict names them ("1 server, 2 networks").
    ///
    /// One transaction: the check and the deletes see the same state.
    pub async fn project_delete(&self, id: &ProjectId) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let found = sqlx::query("SELECT id FROM projects WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if found.is_none() {
            return Err(Error::not_found(ResourceKind::Project, id));
        }
        let mut left = Vec::new();
        for (sql, one, many) in LEFTOVERS {
            let n = sqlx::query(sql)
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?
                .int("n")?;
            if n > 0 {
                left.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
        }
        if !left.is_empty() {
            return Err(Error::conflict(format!(
                "Project {id} still has {}: delete them first, then the project.",
                left.join(", ")
            )));
        }
        for sql in [
            "DELETE FROM security_groups WHERE project_id = $1",
            "DELETE FROM quota_limits WHERE project_id = $1",
            "DELETE FROM quota_usages WHERE project_id = $1",
            "DELETE FROM projects WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query("DELETE FROM quota_limits WHERE project_id LIKE $1 ESCAPE '\\'")
            .bind(crate::quotas::user_overrides_pattern(id))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}
