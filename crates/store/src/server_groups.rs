//! Server groups.

use crate::Scope;
use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::instance::{GroupPolicy, ServerGroup};
use cloud_model::{Error, InstanceId, ProjectId, ResourceKind, ServerGroupId, Timestamp, UserId};
use sqlx::any::AnyRow;

fn group_from(r: &AnyRow) -> Result<ServerGroup, Error> {
    Ok(ServerGroup {
        id: r.parsed("id", ServerGroupId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        user_id: UserId::from_string(r.text("user_id")?),
        name: r.text("name")?,
        policy: r.parsed("policy", GroupPolicy::parse)?,
        members: Vec::new(),
        created_at: r.ts("created_at")?,
    })
}

impl Store {
    /// Creates a group, within the project's `limit` of groups (-1: none).
    pub async fn server_group_create(
        &self,
        project: &ProjectId,
        user: &UserId,
        name: &str,
        policy: GroupPolicy,
        limit: i64,
    ) -> Result<ServerGroup, Error> {
        let id = ServerGroupId::new();
        let r = sqlx::query(
            "INSERT INTO server_groups (id, project_id, user_id, name, policy, rules, created_at) \
             SELECT $1, $2, $3, $4, $5, '{}', $6 WHERE $7 < 0 OR \
             (SELECT COUNT(*) FROM server_groups WHERE project_id = $2) < $7",
        )
        .bind(id.to_string())
        .bind(project.as_str())
        .bind(user.as_str())
        .bind(name)
        .bind(policy.as_str())
        .bind(Timestamp::now().micros())
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::quota(format!(
                "Quota exceeded, too many server groups (limit {limit})."
            )));
        }
        self.server_group_get(id, &Scope::All).await
    }

    /// A group the scope may see, with its live members.
    pub async fn server_group_get(
        &self,
        id: ServerGroupId,
        scope: &Scope,
    ) -> Result<ServerGroup, Error> {
        let mut g = sqlx::query(
            "SELECT id, project_id, user_id, name, policy, created_at FROM server_groups \
             WHERE id = $1 AND ($2 IS NULL OR project_id = $2)",
        )
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| group_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::ServerGroup, id))?;
        g.members = self.server_group_members(id).await?;
        Ok(g)
    }

    /// Groups of the scope, with members.
    pub async fn server_group_list(&self, scope: &Scope) -> Result<Vec<ServerGroup>, Error> {
        let rows = sqlx::query(
            "SELECT id, project_id, user_id, name, policy, created_at FROM server_groups \
             WHERE ($1 IS NULL OR project_id = $1) ORDER BY created_at, id",
        )
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut g = group_from(r)?;
            g.members = self.server_group_members(g.id).await?;
            out.push(g);
        }
        Ok(out)
    }

    async fn server_group_members(&self, id: ServerGroupId) -> Result<Vec<InstanceId>, Error> {
        sqlx::query(
            "SELECT m.instance_id FROM server_group_members m JOIN instances i \
             ON i.id = m.instance_id WHERE m.group_id = $1 AND i.deleted_at IS NULL \
             ORDER BY i.created_at",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.parsed("instance_id", InstanceId::parse))
        .collect()
    }

    /// Hosts where live members of a group (other than `except`) run or
    /// are being placed.
    pub async fn server_group_hosts(
        &self,
        id: ServerGroupId,
        except: InstanceId,
    ) -> Result<Vec<String>, Error> {
        let mut hosts: Vec<String> = sqlx::query(
            "SELECT DISTINCT i.host FROM server_group_members m JOIN instances i \
             ON i.id = m.instance_id WHERE m.group_id = $1 AND i.deleted_at IS NULL \
             AND i.host IS NOT NULL AND i.id <> $2",
        )
        .bind(id.to_string())
        .bind(except.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.text("host"))
        .collect::<Result<_, _>>()?;
        hosts.sort();
        Ok(hosts)
    }

    /// Deletes a group (members keep running).
    pub async fn server_group_delete(&self, id: ServerGroupId, scope: &Scope) -> Result<(), Error> {
        self.server_group_get(id, scope).await?;
        sqlx::query("DELETE FROM server_groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
