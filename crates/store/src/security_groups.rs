//! Security groups and their rules.

use crate::Scope;
use crate::db::{Store, db_error, is_foreign_key_violation, is_unique_violation};
use crate::row::RowExt;
use cloud_model::network::{SecurityGroup, SecurityGroupRule};
use cloud_model::{
    Error, ProjectId, ResourceKind, SecurityGroupId, SecurityGroupRuleId, Timestamp,
};
use sqlx::any::AnyRow;

/// The fields of a new rule, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewRule {
    /// Group to add the rule to.
    pub security_group_id: SecurityGroupId,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// Protocol, or any.
    pub protocol: Option<String>,
    /// First port.
    pub port_range_min: Option<i64>,
    /// Last port.
    pub port_range_max: Option<i64>,
    /// Remote CIDR.
    pub remote_ip_prefix: Option<String>,
    /// Remote group.
    pub remote_group_id: Option<SecurityGroupId>,
    /// Free text.
    pub description: String,
}

const SG_COLS: &str =
    "id, project_id, name, description, is_default, created_at, updated_at, revision";
pub(crate) const RULE_COLS: &str = "id, security_group_id, project_id, direction, ethertype, protocol, \
                         port_range_min, port_range_max, remote_ip_prefix, remote_group_id, \
                         description, created_at";

fn sg_from(r: &AnyRow) -> Result<SecurityGroup, Error> {
    Ok(SecurityGroup {
        id: r.parsed("id", SecurityGroupId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        name: r.text("name")?,
        description: r.text("description")?,
        is_default: r.flag("is_default")?,
        rules: Vec::new(),
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        revision: r.int("revision")?,
    })
}

pub(crate) fn rule_from(r: &AnyRow) -> Result<SecurityGroupRule, Error> {
    Ok(SecurityGroupRule {
        id: r.parsed("id", SecurityGroupRuleId::parse)?,
        security_group_id: r.parsed("security_group_id", SecurityGroupId::parse)?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        direction: r.text("direction")?,
        ethertype: r.text("ethertype")?,
        protocol: r.opt_text("protocol")?,
        port_range_min: r.opt_int("port_range_min")?,
        port_range_max: r.opt_int("port_range_max")?,
        remote_ip_prefix: r.opt_text("remote_ip_prefix")?,
        remote_group_id: r
            .opt_text("remote_group_id")?
            .and_then(|g| SecurityGroupId::parse(&g)),
        description: r.text("description")?,
        created_at: r.ts("created_at")?,
    })
}

impl Store {
    /// The project's default group, created with Neutron's default rules
    /// (all egress; ingress from members of the group) on first use.
    /// Concurrent first uses create exactly one.
    pub async fn security_group_ensure_default(
        &self,
        project: &ProjectId,
    ) -> Result<SecurityGroup, Error> {
        if let Some(sg) = self.default_group(project).await? {
            return Ok(sg);
        }
        let id = SecurityGroupId::new();
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!(
            "INSERT INTO security_groups ({SG_COLS}) VALUES ($1, $2, 'default', \
             'Default security group', 1, $3, $3, 1) ON CONFLICT DO NOTHING"
        ))
        .bind(id.to_string())
        .bind(project.as_str())
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 1 {
            for (direction, ethertype, remote) in [
                ("egress", "IPv4", None),
                ("egress", "IPv6", None),
                ("ingress", "IPv4", Some(id)),
                ("ingress", "IPv6", Some(id)),
            ] {
                sqlx::query(&format!(
                    "INSERT INTO security_group_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, \
                     NULL, NULL, NULL, NULL, $6, '', $7)"
                ))
                .bind(SecurityGroupRuleId::new().to_string())
                .bind(id.to_string())
                .bind(project.as_str())
                .bind(direction)
                .bind(ethertype)
                .bind(remote.map(|g| g.to_string()))
                .bind(now.micros())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
        }
        tx.commit().await.map_err(db_error)?;
        self.default_group(project)
            .await?
            .ok_or_else(|| Error::internal("default security group vanished"))
    }

    async fn default_group(&self, project: &ProjectId) -> Result<Option<SecurityGroup>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {SG_COLS} FROM security_groups WHERE project_id = $1 AND is_default = 1"
        ))
        .bind(project.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        match row {
            Some(r) => {
                let mut sg = sg_from(&r)?;
                sg.rules = self.rules_of(sg.id).await?;
                Ok(Some(sg))
            }
            None => Ok(None),
        }
    }

    /// Creates a group with Neutron's default egress rules. `limit` is the
    /// project's group quota (-1: none).
    pub async fn security_group_create(
        &self,
        project: &ProjectId,
        name: &str,
        description: &str,
        limit: i64,
    ) -> Result<SecurityGroup, Error> {
        let id = SecurityGroupId::new();
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!(
            "INSERT INTO security_groups ({SG_COLS}) SELECT $1, $2, $3, $4, 0, $5, $5, 1 \
             WHERE $6 < 0 OR (SELECT COUNT(*) FROM security_groups WHERE project_id = $2) < $6"
        ))
        .bind(id.to_string())
        .bind(project.as_str())
        .bind(name)
        .bind(description)
        .bind(now.micros())
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::quota(format!(
                "Quota exceeded for resources: ['security_group'] (limit {limit})."
            )));
        }
        for ethertype in ["IPv4", "IPv6"] {
            sqlx::query(&format!(
                "INSERT INTO security_group_rules ({RULE_COLS}) VALUES ($1, $2, $3, 'egress', $4, \
                 NULL, NULL, NULL, NULL, NULL, '', $5)"
            ))
            .bind(SecurityGroupRuleId::new().to_string())
            .bind(id.to_string())
            .bind(project.as_str())
            .bind(ethertype)
            .bind(now.micros())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        self.security_group_get(id, &Scope::All).await
    }

    /// A group the scope may see, with its rules.
    pub async fn security_group_get(
        &self,
        id: SecurityGroupId,
        scope: &Scope,
    ) -> Result<SecurityGroup, Error> {
        let row = sqlx::query(&format!(
            "SELECT {SG_COLS} FROM security_groups WHERE id = $1 AND ($2 IS NULL OR project_id = $2)"
        ))
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroup, id))?;
        let mut sg = sg_from(&row)?;
        sg.rules = self.rules_of(id).await?;
        Ok(sg)
    }

    /// Groups of the scope, optionally by exact name, with their rules.
    pub async fn security_group_list(
        &self,
        scope: &Scope,
        name: Option<&str>,
    ) -> Result<Vec<SecurityGroup>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {SG_COLS} FROM security_groups WHERE ($1 IS NULL OR project_id = $1) \
             AND ($2 IS NULL OR name = $2) ORDER BY created_at, id"
        ))
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .bind(name.map(str::to_owned))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut sg = sg_from(r)?;
            sg.rules = self.rules_of(sg.id).await?;
            out.push(sg);
        }
        Ok(out)
    }

    /// Renames or redescribes a group.
    pub async fn security_group_update(
        &self,
        id: SecurityGroupId,
        name: &str,
        description: &str,
    ) -> Result<SecurityGroup, Error> {
        let r = sqlx::query(
            "UPDATE security_groups SET name = $2, description = $3, updated_at = $4, \
             revision = revision + 1 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(description)
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::SecurityGroup, id));
        }
        self.security_group_get(id, &Scope::All).await
    }

    /// Deletes a group. The default group and groups in use are refused.
    pub async fn security_group_delete(&self, id: SecurityGroupId) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT is_default FROM security_groups WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroup, id))?;
        if row.flag("is_default")? {
            return Err(Error::conflict(format!(
                "Insufficient rights for removing default security group {id}."
            )));
        }
        let in_use = sqlx::query(
            "SELECT COUNT(*) AS n FROM port_security_groups WHERE security_group_id = $1",
        )
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?
        .int("n")?;
        if in_use > 0 {
            return Err(Error::conflict(format!(
                "Security Group {id} in use by {in_use} port(s)."
            )));
        }
        // Rules of other groups that name this one as their remote group
        // would match nothing any more; Neutron removes them with it.
        sqlx::query("DELETE FROM security_group_rules WHERE remote_group_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        // A port that took the group concurrently (after the count) makes
        // the delete fail its foreign key: the same conflict.
        let in_use = |e: sqlx::Error| {
            if is_foreign_key_violation(&e) {
                Error::conflict(format!("Security Group {id} in use."))
            } else {
                db_error(e)
            }
        };
        sqlx::query("DELETE FROM security_groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(in_use)?;
        tx.commit().await.map_err(in_use)
    }

    async fn rules_of(&self, group: SecurityGroupId) -> Result<Vec<SecurityGroupRule>, Error> {
        sqlx::query(&format!(
            "SELECT {RULE_COLS} FROM security_group_rules WHERE security_group_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(group.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(rule_from)
        .collect()
    }

    /// Adds a rule; an identical rule in the group is a conflict.
    /// `limit` is the project's rule quota (-1: none).
    pub async fn security_group_rule_create(
        &self,
        project: &ProjectId,
        new: &NewRule,
        limit: i64,
    ) -> Result<SecurityGroupRule, Error> {
        let existing = self.rules_of(new.security_group_id).await?;
        if let Some(dup) = existing.iter().find(|r| {
            r.direction == new.direction
                && r.ethertype == new.ethertype
                && r.protocol == new.protocol
                && r.port_range_min == new.port_range_min
                && r.port_range_max == new.port_range_max
                && r.remote_ip_prefix == new.remote_ip_prefix
                && r.remote_group_id == new.remote_group_id
        }) {
            return Err(Error::conflict(format!(
                "Security group rule already exists. Rule id is {}.",
                dup.id
            )));
        }
        let id = SecurityGroupRuleId::new();
        let r = sqlx::query(&format!(
            "INSERT INTO security_group_rules ({RULE_COLS}) SELECT $1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12 WHERE $13 < 0 OR \
             (SELECT COUNT(*) FROM security_group_rules WHERE project_id = $3) < $13"
        ))
        .bind(id.to_string())
        .bind(new.security_group_id.to_string())
        .bind(project.as_str())
        .bind(&new.direction)
        .bind(&new.ethertype)
        .bind(new.protocol.clone())
        .bind(new.port_range_min)
        .bind(new.port_range_max)
        .bind(new.remote_ip_prefix.clone())
        .bind(new.remote_group_id.map(|g| g.to_string()))
        .bind(&new.description)
        .bind(Timestamp::now().micros())
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict("Security group rule already exists.")
            } else if is_foreign_key_violation(&e) {
                Error::not_found(ResourceKind::SecurityGroup, new.security_group_id)
            } else {
                db_error(e)
            }
        })?;
        if r.rows_affected() == 0 {
            return Err(Error::quota(format!(
                "Quota exceeded for resources: ['security_group_rule'] (limit {limit})."
            )));
        }
        self.security_group_rule_get(id, &Scope::All).await
    }

    /// A rule the scope may see.
    pub async fn security_group_rule_get(
        &self,
        id: SecurityGroupRuleId,
        scope: &Scope,
    ) -> Result<SecurityGroupRule, Error> {
        sqlx::query(&format!(
            "SELECT {RULE_COLS} FROM security_group_rules WHERE id = $1 \
             AND ($2 IS NULL OR project_id = $2)"
        ))
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| rule_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroupRule, id))
    }

    /// Rules of the scope, optionally of one group.
    pub async fn security_group_rule_list(
        &self,
        scope: &Scope,
        group: Option<SecurityGroupId>,
    ) -> Result<Vec<SecurityGroupRule>, Error> {
        sqlx::query(&format!(
            "SELECT {RULE_COLS} FROM security_group_rules WHERE ($1 IS NULL OR project_id = $1) \
             AND ($2 IS NULL OR security_group_id = $2) ORDER BY created_at, id"
        ))
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .bind(group.map(|g| g.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(rule_from)
        .collect()
    }

    /// Deletes a rule.
    pub async fn security_group_rule_delete(&self, id: SecurityGroupRuleId) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM security_group_rules WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::SecurityGroupRule, id));
        }
        Ok(())
    }
}
