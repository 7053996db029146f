//! Instance actions and their events: the record a user reads to learn
//! why something happened to a server.

use crate::db::{Store, db_error};
use crate::row::RowExt;
use cloud_model::instance::{ActionEvent, InstanceAction};
use cloud_model::{ActionId, Error, InstanceId, ProjectId, ResourceKind, Timestamp, UserId};
use sqlx::any::AnyRow;

const COLS: &str =
    "id, instance_id, request_id, action, project_id, user_id, start_time, finish_time, message";

fn action_from(r: &AnyRow) -> Result<InstanceAction, Error> {
    Ok(InstanceAction {
        id: r.parsed("id", ActionId::parse)?,
        instance_id: r.parsed("instance_id", InstanceId::parse)?,
        request_id: r.text("request_id")?,
        action: r.text("action")?,
        project_id: ProjectId::from_string(r.text("project_id")?),
        user_id: UserId::from_string(r.text("user_id")?),
        start_time: r.ts("start_time")?,
        finish_time: r.opt_ts("finish_time")?,
        message: r.opt_text("message")?,
        events: Vec::new(),
    })
}

impl Store {
    /// Records the start of an action on a server.
    pub async fn action_start(
        &self,
        instance: InstanceId,
        request_id: &str,
        action: &str,
        project: &ProjectId,
        user: &UserId,
    ) -> Result<ActionId, Error> {
        let id = ActionId::new();
        sqlx::query(
            "INSERT INTO instance_actions (id, instance_id, request_id, action, project_id, \
             user_id, start_time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(instance.to_string())
        .bind(request_id)
        .bind(action)
        .bind(project.as_str())
        .bind(user.as_str())
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(id)
    }

    /// The newest action of `kind` on a server (to attach events to it).
    pub async fn action_latest(
        &self,
        instance: InstanceId,
        kind: &str,
    ) -> Result<Option<InstanceAction>, Error> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM instance_actions WHERE instance_id = $1 AND action = $2 \
             ORDER BY start_time DESC LIMIT 1"
        ))
        .bind(instance.to_string())
        .bind(kind)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| action_from(&r))
        .transpose()
    }

    /// Records a finished event of the newest action of `kind` on a server;
    /// the action is created if there is none (events from reconcilers).
    pub async fn action_event(
        &self,
        instance: &cloud_model::instance::Instance,
        kind: &str,
        event: &str,
        host: Option<&str>,
        ok: bool,
        details: Option<&str>,
    ) -> Result<(), Error> {
        let action = match self.action_latest(instance.id, kind).await? {
            Some(a) => a.id,
            None => {
                self.action_start(
                    instance.id,
                    &format!("req-{}", ActionId::new()),
                    kind,
                    &instance.project_id,
                    &instance.user_id,
                )
                .await?
            }
        };
        let now = Timestamp::now().micros();
        sqlx::query(
            "INSERT INTO instance_action_events (id, action_id, event, host, start_time, \
             finish_time, result, details) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        )
        .bind(ActionId::new().to_string())
        .bind(action.to_string())
        .bind(event)
        .bind(host.map(str::to_owned))
        .bind(now)
        .bind(if ok { "Success" } else { "Error" })
        .bind(details.map(str::to_owned))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if !ok {
            sqlx::query("UPDATE instance_actions SET message = 'Error' WHERE id = $1")
                .bind(action.to_string())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// Marks the newest action of `kind` finished.
    pub async fn action_finish(&self, instance: InstanceId, kind: &str) -> Result<(), Error> {
        if let Some(a) = self.action_latest(instance, kind).await? {
            sqlx::query(
                "UPDATE instance_actions SET finish_time = $2 WHERE id = $1 AND finish_time IS NULL",
            )
            .bind(a.id.to_string())
            .bind(Timestamp::now().micros())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    /// A server's actions, newest first, with their events.
    pub async fn action_list(&self, instance: InstanceId) -> Result<Vec<InstanceAction>, Error> {
        let mut actions = sqlx::query(&format!(
            "SELECT {COLS} FROM instance_actions WHERE instance_id = $1 \
             ORDER BY start_time DESC, id"
        ))
        .bind(instance.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(action_from)
        .collect::<Result<Vec<_>, _>>()?;
        for a in &mut actions {
            a.events = self.action_events(a.id).await?;
        }
        Ok(actions)
    }

    /// One action of a server by its request id.
    pub async fn action_get(
        &self,
        instance: InstanceId,
        request_id: &str,
    ) -> Result<InstanceAction, Error> {
        let mut a = sqlx::query(&format!(
            "SELECT {COLS} FROM instance_actions WHERE instance_id = $1 AND request_id = $2"
        ))
        .bind(instance.to_string())
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| action_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::InstanceAction, request_id))?;
        a.events = self.action_events(a.id).await?;
        Ok(a)
    }

    async fn action_events(&self, action: ActionId) -> Result<Vec<ActionEvent>, Error> {
        sqlx::query(
            "SELECT event, host, start_time, finish_time, result, details \
             FROM instance_action_events WHERE action_id = $1 ORDER BY start_time, id",
        )
        .bind(action.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok(ActionEvent {
                event: r.text("event")?,
                host: r.opt_text("host")?,
                start_time: r.ts("start_time")?,
                finish_time: r.opt_ts("finish_time")?,
                result: r.opt_text("result")?,
                details: r.opt_text("details")?,
            })
        })
        .collect()
    }
}
