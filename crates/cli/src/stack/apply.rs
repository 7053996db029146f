//! Carrying out a plan, one change at a time, recording each in the state
//! before moving on, so that an apply stopped anywhere (Ctrl-C, a crash,
//! a failure) is finished by running it again.

use crate::app::App;
use crate::exit::{CliError, CliResult, INTERRUPTED, RESOURCE_ERROR};
use crate::stack::ops;
use crate::stack::plan::{Action, Live, Plan};
use crate::stack::spec::{Desired, ResKind};
use crate::stack::state::{Entry, Pending, State};
use chrono::Utc;
use cloud_client::ValueExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A pending create older than this may have outlived its idempotency key
/// on the server (kept 24 h): it is then looked up by name instead.
const KEY_TRUST_SECS: i64 = 23 * 3600;

/// Test hook: `CLOUD_TEST_CRASH_AFTER_CREATE=kind.name` makes the process
/// die right after that create succeeded and before it is recorded, the
/// worst moment for an interruption.
const CRASH_HOOK: &str = "CLOUD_TEST_CRASH_AFTER_CREATE";

/// Set by Ctrl-C: finish the change in flight, then stop.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "Interrupted: finishing the change in flight, then stopping (Ctrl-C again to stop now)."
            );
            f.store(true, Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(INTERRUPTED));
            }
        }
    });
    flag
}

/// Runs the changes of a plan against the cloud.
pub struct Applier<'a> {
    app: &'a App,
    state: State,
    path: &'a Path,
    stop: Arc<AtomicBool>,
    counts: BTreeMap<&'static str, usize>,
}

impl<'a> Applier<'a> {
    /// An applier writing `state` to `path`.
    pub fn new(app: &'a App, state: State, path: &'a Path) -> Self {
        Applier {
            app,
            state,
            path,
            stop: interrupt_flag(),
            counts: BTreeMap::new(),
        }
    }

    fn save(&self) -> CliResult {
        self.state.save(self.path)
    }

    fn check_interrupt(&self) -> CliResult {
        if self.stop.load(Ordering::SeqCst) {
            return Err(CliError::new(
                INTERRUPTED,
                "interrupted; the state is saved: run the same command again to finish",
            ));
        }
        Ok(())
    }

    fn done(&mut self, what: &'static str, addr: &str) {
        println!("  {what} {addr}");
        *self.counts.entry(what).or_default() += 1;
    }

    /// The summary line (`what`: Apply or Destroy).
    pub fn summary(&self, what: &str) -> String {
        let n = |k| self.counts.get(k).copied().unwrap_or(0);
        format!(
            "{what} complete: {} created, {} updated, {} deleted.",
            n("created"),
            n("updated"),
            n("deleted")
        )
    }

    /// The state as it is now.
    pub fn into_state(self) -> State {
        self.state
    }

    /// Deletes what the plan deletes (and the old half of replacements),
    /// waiting for deleted servers to be gone before deleting what they
    /// used.
    pub async fn run_deletes(&mut self, plan: &Plan) -> CliResult {
        for key in &plan.forget {
            self.state.resources.remove(key);
        }
        self.save()?;
        let mut servers: Vec<(String, String)> = Vec::new();
        for c in &plan.deletes {
            self.check_interrupt()?;
            if c.addr.kind != ResKind::Server {
                self.wait_gone(&mut servers).await?;
            }
            let key = c.addr.key();
            let Some(mut entry) = self.state.resources.get(&key).cloned() else {
                continue;
            };
            if entry.pending.is_some() && entry.id.is_empty() {
                // A create that may have happened: learn its id first.
                entry.id = self.finish_pending(&entry).await.unwrap_or_default();
            }
            ops::delete(self.app, &entry).await?;
            if entry.kind == ResKind::Server && !entry.id.is_empty() {
                servers.push((entry.name.clone(), entry.id.clone()));
            }
            self.state.resources.remove(&key);
            self.save()?;
            self.done("deleted", &c.addr.to_string());
        }
        self.wait_gone(&mut servers).await
    }

    async fn wait_gone(&self, servers: &mut Vec<(String, String)>) -> CliResult {
        for (name, id) in servers.drain(..) {
            self.app.wait_server(&id, &name, &["DELETED"]).await?;
        }
        Ok(())
    }

    /// Creates and updates, in order; then waits for new servers to be
    /// ACTIVE. Floating IPs go to servers' ports, so the servers are waited
    /// for before the first of them (one whose server failed is left for
    /// the next apply). Servers that end in ERROR fail the apply (exit 6)
    /// and are replaced by the next one.
    pub async fn run_applies(&mut self, plan: &Plan, live: &BTreeMap<String, Live>) -> CliResult {
        let mut servers: Vec<(String, String)> = self
            .state
            .resources
            .iter()
            .filter(|(k, e)| {
                e.kind == ResKind::Server
                    && matches!(live.get(*k), Some(Live::Present(Some(s))) if s == "BUILD")
            })
            .map(|(_, e)| (e.name.clone(), e.id.clone()))
            .collect();
        let mut failures = Vec::new();
        let mut failed: BTreeSet<String> = BTreeSet::new();
        for c in &plan.applies {
            self.check_interrupt()?;
            let Some(d) = &c.desired else { continue };
            if d.addr.kind == ResKind::FloatingIp {
                self.wait_active(&mut servers, &mut failures, &mut failed)
                    .await;
                if failed.contains(d.inputs.text("server")) {
                    continue;
                }
            }
            match &c.action {
                Action::Update(_) => {
                    let Some(entry) = self.state.get(&d.addr).cloned() else {
                        continue;
                    };
                    ops::update(self.app, &self.state, &entry, d)
                        .await
                        .map_err(|e| CliError::new(e.code, format!("{}: {}", d.addr, e.message)))?;
                    let e = self.state.resources.entry(d.addr.key());
                    e.and_modify(|e| e.inputs = d.inputs.clone());
                    self.save()?;
                    self.done("updated", &d.addr.to_string());
                }
                Action::Create(_) | Action::Replace(_) => {
                    let id = self.create(d).await?;
                    if d.addr.kind == ResKind::Server {
                        servers.push((d.addr.name.clone(), id));
                    }
                    self.done("created", &d.addr.to_string());
                }
                Action::Delete => {}
            }
        }
        self.wait_active(&mut servers, &mut failures, &mut failed)
            .await;
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => Err(CliError::new(
                RESOURCE_ERROR,
                failures
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
        }
    }

    /// Waits for `servers` to be ACTIVE, noting the failures and the names
    /// of the servers that failed.
    async fn wait_active(
        &self,
        servers: &mut Vec<(String, String)>,
        failures: &mut Vec<CliError>,
        failed: &mut BTreeSet<String>,
    ) {
        for (name, id) in servers.drain(..) {
            if let Err(e) = self.app.wait_server(&id, &name, &["ACTIVE"]).await {
                failures.push(e);
                failed.insert(name);
            }
        }
    }

    /// Re-sends a recorded create (same key, same body: the server replays
    /// the first answer); for one older than the server keeps keys, looks
    /// the resource up by name instead. Returns its id, or "" if it was
    /// never made.
    async fn finish_pending(&self, e: &Entry) -> CliResult<String> {
        let Some(p) = &e.pending else {
            return Ok(e.id.clone());
        };
        if (Utc::now() - p.since).num_seconds() > KEY_TRUST_SECS {
            return ops::find_made(self.app, e, p).await;
        }
        let created = ops::send_create(self.app, e.kind, p.body.clone(), &p.key).await?;
        Ok(ops::created_id(e.kind, &created, &e.name))
    }

    /// Creates `d` (resuming a recorded create if there is one) and records
    /// it; returns its id.
    async fn create(&mut self, d: &Desired) -> CliResult<String> {
        let key = d.addr.key();
        let deps: Vec<String> = d.refs.iter().map(|r| r.to.key()).collect();
        // An interrupted create of this resource: finish it first.
        if let Some(e) = self.state.resources.get(&key).cloned()
            && let Some(p) = &e.pending
        {
            let id = self.finish_pending(&e).await?;
            if !id.is_empty() && p.inputs == d.inputs {
                self.record(&key, d, id.clone(), deps);
                self.save()?;
                return Ok(id);
            }
            // Made from other inputs: it goes, and is made again below.
            let mut old = e.clone();
            old.id = id;
            ops::delete(self.app, &old).await?;
            if old.kind == ResKind::Server && !old.id.is_empty() {
                self.app
                    .wait_server(&old.id, &old.name, &["DELETED"])
                    .await?;
            }
        } else if let Some(e) = self.state.resources.get(&key).cloned()
            && !e.id.is_empty()
        {
            // Replacing: delete the old one first (deletes normally ran in
            // the first phase; this covers a replacement it did not see).
            ops::delete(self.app, &e).await?;
            if e.kind == ResKind::Server {
                self.app.wait_server(&e.id, &e.name, &["DELETED"]).await?;
            }
        }
        let body = ops::create_body(self.app, &self.state, d).await?;
        let pending = Pending {
            key: uuid::Uuid::new_v4().to_string(),
            body: body.clone(),
            inputs: d.inputs.clone(),
            since: Utc::now(),
        };
        self.state.resources.insert(
            key.clone(),
            Entry {
                kind: d.addr.kind,
                name: d.addr.name.clone(),
                id: String::new(),
                inputs: d.inputs.clone(),
                deps: deps.clone(),
                pending: Some(pending.clone()),
            },
        );
        self.save()?;
        let created = match ops::send_create(self.app, d.addr.kind, body, &pending.key).await {
            Ok(v) => v,
            Err(err) => {
                if err.status().is_some_and(|s| (400..500).contains(&s)) {
                    // Refused: nothing was made, nothing to resume.
                    self.state.resources.remove(&key);
                    self.save()?;
                }
                let c = CliError::from(err);
                return Err(CliError::new(c.code, format!("{}: {}", d.addr, c.message)));
            }
        };
        if std::env::var(CRASH_HOOK).is_ok_and(|v| v == key) {
            eprintln!("{CRASH_HOOK}: dying after creating {key}");
            std::process::exit(137);
        }
        let id = ops::created_id(d.addr.kind, &created, &d.addr.name);
        if id.is_empty() {
            return Err(CliError::failure(format!(
                "{}: the answer has no id",
                d.addr
            )));
        }
        self.record(&key, d, id.clone(), deps);
        self.save()?;
        Ok(id)
    }

    fn record(&mut self, key: &str, d: &Desired, id: String, deps: Vec<String>) {
        self.state.resources.insert(
            key.to_owned(),
            Entry {
                kind: d.addr.kind,
                name: d.addr.name.clone(),
                id,
                inputs: d.inputs.clone(),
                deps,
                pending: None,
            },
        );
    }
}
