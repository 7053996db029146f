//! Adding a security group to a running server, or removing it: the
//! server's list of group names and the groups of every port attached to
//! it change together, in one transaction.

use crate::Scope;
use crate::db::{Store, db_error};
use crate::instances::json;
use crate::row::RowExt;
use cloud_model::network::SecurityGroup;
use cloud_model::{Error, InstanceId, ResourceKind, Timestamp};

/// Whether a group is being added to a server or removed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupChange {
    /// `addSecurityGroup`.
    Add,
    /// `removeSecurityGroup`.
    Remove,
}

impl Store {
    /// Adds `sg` to (or removes it from) server `id` and every port
    /// attached to it. The server's list is swapped only if it is still the
    /// one read, so two concurrent changes never lose one another. Adding a
    /// group the server has, or removing one it lacks, is
    /// [`Error::invalid`] naming both (Nova answers 400 too).
    pub async fn instance_change_security_group(
        &self,
        id: InstanceId,
        scope: &Scope,
        sg: &SecurityGroup,
        change: GroupChange,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT security_groups FROM instances WHERE id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR project_id = $2)",
        )
        .bind(id.to_string())
        .bind(scope.project().map(|p| p.as_str().to_owned()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::not_found(ResourceKind::Server, id))?;
        let raw = row.text("security_groups")?;
        let mut names: Vec<String> = row.json("security_groups")?;
        let has = names.contains(&sg.name);
        match (change, has) {
            (GroupChange::Add, true) => {
                return Err(Error::invalid(format!(
                    "Security group {} is already associated with server {id}.",
                    sg.name
                )));
            }
            (GroupChange::Remove, false) => {
                return Err(Error::invalid(format!(
                    "Security group {} is not associated with server {id}.",
                    sg.name
                )));
            }
            (GroupChange::Add, false) => names.push(sg.name.clone()),
            (GroupChange::Remove, true) => names.retain(|n| n != &sg.name),
        }
        let now = Timestamp::now().micros();
        let r = sqlx::query(
            "UPDATE instances SET security_groups = $2, updated_at = $3 \
             WHERE id = $1 AND security_groups = $4",
        )
        .bind(id.to_string())
        .bind(json(&names))
        .bind(now)
        .bind(&raw)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::conflict(format!(
                "The security groups of server {id} changed while this request was \
                 handled; retry."
            )));
        }
        let ports = match change {
            GroupChange::Add => {
                "INSERT INTO port_security_groups (port_id, security_group_id) \
                 SELECT p.id, $2 FROM ports p WHERE p.device_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM port_security_groups g WHERE g.port_id = p.id \
                 AND g.security_group_id = $2)"
            }
            GroupChange::Remove => {
                "DELETE FROM port_security_groups WHERE security_group_id = $2 \
                 AND port_id IN (SELECT id FROM ports WHERE device_id = $1)"
            }
        };
        sqlx::query(ports)
            .bind(id.to_string())
            .bind(sg.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "UPDATE ports SET revision = revision + 1, updated_at = $2 WHERE device_id = $1",
        )
        .bind(id.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}
