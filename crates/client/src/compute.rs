//! Compute calls beyond plain CRUD: server actions, console output,
//! instance actions, metadata, quotas, and waiting for a server to settle.

use crate::error::Result;
use crate::resource::{SERVER, ValueExt, encode_segment};
use crate::session::{Client, Request, Service};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How a wait for a server ended.
#[derive(Clone, Debug, PartialEq)]
pub enum WaitOutcome {
    /// It reached one of the wanted statuses; the last view.
    Reached(Value),
    /// It went to ERROR; the last view (with its `fault`).
    Failed(Value),
    /// It no longer exists (what a wait after delete wants).
    Gone,
    /// The time ran out; the last view.
    TimedOut(Value),
}

impl Client {
    /// Creates several servers in one request (`min_count`/`max_count` in
    /// `body`) and returns them all. Nova's create answer names only the
    /// first server, so this asks for the batch's reservation id instead and
    /// lists the servers that carry it.
    pub async fn create_servers(
        &self,
        mut body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<Value>> {
        body["server"]["return_reservation_id"] = json!(true);
        let mut req = Request::new(Method::POST, Service::Compute, "servers").json(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let answer = self.send(req).await?.json()?;
        let reservation = answer.text("reservation_id").to_owned();
        let mut servers = self
            .list(SERVER, &[("reservation_id", reservation.as_str())])
            .await?;
        servers.sort_by(|a, b| a.text("name").cmp(b.text("name")));
        Ok(servers)
    }

    /// Posts a server action (`{"os-stop": null}`, `{"reboot": {...}}`).
    pub async fn server_action(&self, id: &str, action: Value) -> Result<Value> {
        let r = self
            .send(
                Request::new(
                    Method::POST,
                    Service::Compute,
                    format!("servers/{}/action", encode_segment(id)),
                )
                .json(action),
            )
            .await?;
        r.json()
    }

    /// The console log, or its last `lines` lines.
    pub async fn console_log(&self, id: &str, lines: Option<u32>) -> Result<String> {
        let arg = match lines {
            Some(n) => json!({ "length": n }),
            None => json!({}),
        };
        let v = self
            .server_action(id, json!({ "os-getConsoleOutput": arg }))
            .await?;
        Ok(v.text("output").to_owned())
    }

    /// The recorded actions of a server, newest first.
    pub async fn instance_actions(&self, id: &str) -> Result<Vec<Value>> {
        let r = self
            .send(Request::new(
                Method::GET,
                Service::Compute,
                format!("servers/{}/os-instance-actions", encode_segment(id)),
            ))
            .await?;
        Ok(r.json()?["instanceActions"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// One action of a server with its events.
    pub async fn instance_action(&self, id: &str, request_id: &str) -> Result<Value> {
        let r = self
            .send(Request::new(
                Method::GET,
                Service::Compute,
                format!(
                    "servers/{}/os-instance-actions/{}",
                    encode_segment(id),
                    encode_segment(request_id)
                ),
            ))
            .await?;
        Ok(r.json()?["instanceAction"].clone())
    }

    /// Replaces all metadata of a server.
    pub async fn server_metadata_replace(&self, id: &str, metadata: Value) -> Result<Value> {
        let r = self
            .send(
                Request::new(
                    Method::PUT,
                    Service::Compute,
                    format!("servers/{}/metadata", encode_segment(id)),
                )
                .json(json!({ "metadata": metadata })),
            )
            .await?;
        Ok(r.json()?["metadata"].clone())
    }

    /// The quota set of a project.
    pub async fn quota_show(&self, project_id: &str) -> Result<Value> {
        let r = self
            .send(Request::new(
                Method::GET,
                Service::Compute,
                format!("os-quota-sets/{}", encode_segment(project_id)),
            ))
            .await?;
        Ok(r.json()?["quota_set"].clone())
    }

    /// Changes quota limits of a project (admin).
    pub async fn quota_update(&self, project_id: &str, limits: Value) -> Result<Value> {
        let r = self
            .send(
                Request::new(
                    Method::PUT,
                    Service::Compute,
                    format!("os-quota-sets/{}", encode_segment(project_id)),
                )
                .json(json!({ "quota_set": limits })),
            )
            .await?;
        Ok(r.json()?["quota_set"].clone())
    }

    /// Polls server `id` every `interval` until its status is in `targets`
    /// (case-insensitive), it goes to ERROR, it disappears (when waiting
    /// for `DELETED`), or `timeout` passes. `on_change` sees every new
    /// `(status, task_state)` pair, for progress displays.
    pub async fn wait_for_server(
        &self,
        id: &str,
        targets: &[&str],
        interval: Duration,
        timeout: Duration,
        mut on_change: impl FnMut(&str, Option<&str>),
    ) -> Result<WaitOutcome> {
        let deadline = Instant::now() + timeout;
        let wants_gone = targets.iter().any(|t| t.eq_ignore_ascii_case("DELETED"));
        let mut last_seen: Option<(String, Option<String>)> = None;
        loop {
            match self.get(SERVER, id).await {
                Ok(s) => {
                    let status = s.text("status").to_owned();
                    let task = s["OS-EXT-STS:task_state"].as_str().map(str::to_owned);
                    let seen = (status.clone(), task.clone());
                    if last_seen.as_ref() != Some(&seen) {
                        on_change(&status, task.as_deref());
                        last_seen = Some(seen);
                    }
                    if targets.iter().any(|t| t.eq_ignore_ascii_case(&status)) {
                        return Ok(WaitOutcome::Reached(s));
                    }
                    // A server being deleted may show ERROR on its way out.
                    if status.eq_ignore_ascii_case("ERROR") && !wants_gone {
                        return Ok(WaitOutcome::Failed(s));
                    }
                    if Instant::now() >= deadline {
                        return Ok(WaitOutcome::TimedOut(s));
                    }
                }
                Err(e) if e.status() == Some(404) => {
                    if wants_gone {
                        on_change("DELETED", None);
                        return Ok(WaitOutcome::Gone);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// The fault message of a server in ERROR (or a generic one).
pub fn fault_of(server: &Value) -> String {
    match server["fault"]["message"].as_str() {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => "the server went to ERROR without a fault message".to_owned(),
    }
}
