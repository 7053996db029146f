//! `Idempotency-Key` on creates: a retried POST returns the first answer
//! instead of making a second resource.
//!
//! One middleware in front of every service. A POST carrying the header is
//! hashed (method, path with query, body) and its key claimed for the
//! caller: the key is the user's own within the token's project, so
//! another user sending the same key (a reader replaying a member's) runs
//! its own request and gets its own answer. The token is validated
//! exactly as [`Ctx`] does, and the context is left in the request for the
//! handler. Then:
//!
//! * first use: the request runs (in its own task, so a client that hangs
//!   up cannot cancel a create half way) while its API renews the claim's
//!   short lease ([`LEASE`]), and its answer is stored, except server
//!   errors, which release the key so a retry runs again. A create whose
//!   result a retry must find (a server) stores its answer in the
//!   transaction that makes it, through the [`HeldKey`] in the request;
//! * same key, same request, finished: the stored status, headers and body
//!   are replayed (with `Idempotent-Replayed: true`) if the caller's roles
//!   still allow what the first request was allowed: a user who lost the
//!   role gets the policy's 403, not the answer;
//! * same key, same request, still running: wait for it, then replay, so
//!   two concurrent retries never both create; if its API died, its lease
//!   lapses within seconds and the waiting retry takes the key over;
//! * same key, different request: 409 saying so.
//!
//! Keys live [`RETENTION_SECS`] (24 h), then are purged. Token requests are
//! never stored (their answers are secrets), and secrets in an answer (a
//! server-generated private key, a server's generated `adminPass`) are
//! shown once and never stored: see [`SECRETS`].

use crate::auth::Ctx;
use crate::auth::policy::{Action, Rule, allows};
use crate::error::{ApiError, FaultKind, Service, render_faults};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloud_model::Timestamp;
use cloud_store::{IdempotencyClaim, IdempotencyHold, IdempotencyKey, IdempotencyRecord, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// How long a key is remembered.
pub const RETENTION_SECS: i64 = 24 * 3600;

/// How long a claim stays another request's without its API renewing it:
/// short, so that a retry after the API died takes the key over within
/// seconds, yet several renewals long, so a live but busy API keeps it.
pub const LEASE: Duration = Duration::from_secs(10);

/// How often the API holding a claim renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// How long a duplicate waits for the first request to finish.
const WAIT: Duration = Duration::from_secs(60);

/// Largest answer stored for replay.
const MAX_STORED: usize = 4 * 1024 * 1024;

/// When keys were last purged (µs), so a busy API purges every ten
/// minutes rather than on every request.
static LAST_PURGE: AtomicI64 = AtomicI64::new(0);

/// Headers of the answer not replayed: recomputed or per request.
const SKIP_HEADERS: &[&str] = &["content-length", "x-openstack-request-id", "date"];

/// Secrets an answer shows once and the replay table never holds, as
/// `(object, field)` of the answer's body: a generated keypair's
/// `private_key`, and a server's `adminPass` (create and rebuild).
///
/// A replay leaves them out rather than showing a placeholder: Nova itself
/// omits `adminPass` when `[api] enable_instance_password` is off, so
/// Nova's clients (novaclient, openstacksdk, gophercloud, Terraform)
/// already take an answer without one (the password is then unknown, and
/// a rebuild or `changePassword` sets one); a placeholder would be shown,
/// or used, as if it were the password.
pub const SECRETS: &[(&str, &str)] = &[("keypair", "private_key"), ("server", "adminPass")];

fn service_of(path: &str) -> Service {
    match path.split('/').nth(1) {
        Some("identity") => Service::Identity,
        Some("image") => Service::Image,
        Some("network") => Service::Network,
        _ => Service::Compute,
    }
}

async fn fault(path: &str, kind: FaultKind, message: String) -> Response {
    render_faults(
        service_of(path),
        ApiError::new(kind, message).into_response(),
    )
    .await
}

/// The claim the running request holds, in its extensions, for a handler
/// that records its answer in the transaction that makes what the answer
/// names (a server create): then an API that dies after that commit
/// leaves the answer, not a claim, and a retry finds it.
#[derive(Clone, Debug)]
pub struct HeldKey {
    hold: IdempotencyHold,
    ctx: Ctx,
}

impl HeldKey {
    /// The record of `answer` for this key, in the form a replay gives
    /// back (secrets removed, bound to the policy decisions made so far);
    /// `None` for an answer not worth storing (a server error, not text).
    pub fn record(&self, answer: &axum::http::Response<Vec<u8>>) -> Option<IdempotencyRecord> {
        self.record_parts(answer.status(), answer.headers(), answer.body())
    }

    fn record_parts(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<IdempotencyRecord> {
        if status.is_server_error() {
            return None;
        }
        Some(IdempotencyRecord {
            hold: self.hold.clone(),
            status: status.as_u16(),
            response: stored_answer(headers, body, &self.ctx.allowed_actions())?,
        })
    }
}

/// The middleware (see the module documentation).
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    if path.starts_with("/identity/v3/auth/") {
        return next.run(req).await;
    }
    let key = match req.headers().get(HEADER).map(|v| v.to_str()) {
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= 255 => k.trim().to_owned(),
        _ => {
            return fault(
                &path,
                FaultKind::BadRequest,
                "Invalid Idempotency-Key header: it must be 1 to 255 visible ASCII characters."
                    .into(),
            )
            .await;
        }
    };
    let (mut parts, body) = req.into_parts();
    // Without a valid token the handler answers 401 in its own format.
    let Ok(ctx) = Ctx::from_request_parts(&mut parts, &state).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let limit = state.config().max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return fault(
            &path,
            FaultKind::PayloadTooLarge,
            "Request body is too large.".into(),
        )
        .await;
    };
    let hash = request_hash(&parts, &path, &bytes);
    let held = HeldKey {
        hold: IdempotencyHold {
            key: IdempotencyKey {
                scope: match ctx.token.project.as_ref() {
                    Some(p) => p.id.to_string(),
                    None => format!("user:{}", ctx.user_id()),
                },
                user: ctx.user_id().to_string(),
                key,
            },
            owner: uuid::Uuid::new_v4().to_string(),
        },
        ctx,
    };
    let store = state.store().clone();
    purge_now_and_then(&store);

    let started = Instant::now();
    loop {
        let now = Timestamp::now();
        let claim = store
            .idempotency_claim(
                &held.hold,
                &hash,
                now,
                after(now, LEASE),
                Timestamp::from_micros(now.micros() - RETENTION_SECS * 1_000_000),
            )
            .await;
        let key = &held.hold.key.key;
        match claim {
            Err(e) => {
                return render_faults(service_of(&path), ApiError::from(e).into_response()).await;
            }
            Ok(IdempotencyClaim::Mismatch) => {
                return fault(
                    &path,
                    FaultKind::Conflict,
                    format!(
                        "Idempotency-Key '{key}' was already used for a different request \
                         (another method, path or body): send a new key for a new request."
                    ),
                )
                .await;
            }
            Ok(IdempotencyClaim::Completed { status, response }) => {
                let roles: Vec<&str> = held
                    .ctx
                    .token
                    .roles
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                return match refusal(&response, &roles) {
                    Some(why) => fault(&path, FaultKind::Forbidden, why).await,
                    None => replay(status, &response),
                };
            }
            Ok(IdempotencyClaim::InFlight) => {
                if started.elapsed() > WAIT {
                    return fault(
                        &path,
                        FaultKind::Conflict,
                        format!(
                            "A request with Idempotency-Key '{key}' is still being processed: \
                             retry later."
                        ),
                    )
                    .await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(IdempotencyClaim::Claimed) => {
                let mut req = Request::from_parts(parts, Body::from(bytes));
                req.extensions_mut().insert(held.clone());
                return run_first(store, held, next, req).await;
            }
        }
    }
}

/// What makes two requests the same request: method, path with query,
/// body.
fn request_hash(parts: &axum::http::request::Parts, path: &str, body: &[u8]) -> String {
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(path);
    let mut hasher = Sha256::new();
    hasher.update(b"POST\n");
    hasher.update(target.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_micros(t.micros() + i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Runs the request holding the claim, renewing the claim's lease while
/// it runs, and records its answer.
async fn run_first(store: Store, held: HeldKey, next: Next, req: Request) -> Response {
    let task = tokio::spawn(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(renew_lease(store.clone(), held.hold.clone(), stopped));
        let resp = next.run(req).await;
        let _ = stop.send(true);
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_STORED).await;
        let record = match &bytes {
            Ok(b) => held.record_parts(parts.status, &parts.headers, b),
            Err(_) => None,
        };
        record_answer(&store, &held.hold, record).await;
        let body = match bytes {
            Ok(b) => Body::from(b),
            Err(_) => Body::empty(),
        };
        Response::from_parts(parts, body)
    });
    match task.await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "idempotent request task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Keeps the claim this API's request holds alive until `stopped` says the
/// request is done (between statements: a renewal is never cut in half)
/// or the claim is no longer the request's.
async fn renew_lease(
    store: Store,
    hold: IdempotencyHold,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY) => {}
            _ = stopped.changed() => return,
        }
        match store
            .idempotency_renew(&hold, after(Timestamp::now(), LEASE))
            .await
        {
            Ok(true) => {}
            // Finished in the handler's transaction, or taken over.
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "cannot renew an idempotency claim"),
        }
    }
}

/// Stores the answer (or releases the key when there is none worth
/// storing), retrying a few times through a database blip: an answer
/// not recorded leaves a claim a retry takes over once its lease lapses,
/// running the request again.
async fn record_answer(store: &Store, hold: &IdempotencyHold, record: Option<IdempotencyRecord>) {
    let mut pause = Duration::from_millis(200);
    for attempt in 1..=3 {
        let saved = match &record {
            Some(r) => store.idempotency_complete(r).await.map(|kept| {
                if !kept {
                    tracing::warn!(
                        key = %hold.key.key,
                        "an idempotent request's claim was taken over while it ran; \
                         its answer is not stored"
                    );
                }
            }),
            None => store.idempotency_release(hold).await,
        };
        match saved {
            Ok(()) => return,
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, "cannot record the answer of an idempotent request; retrying");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the answer of an idempotent request")
            }
        }
    }
}

/// The stored form of an answer: headers worth replaying, the body as
/// text (answers are JSON) minus its [`SECRETS`], and the policy decision
/// it was made under (the strictest rule among the `allowed` actions).
/// `None` when the body is not text.
fn stored_answer(headers: &HeaderMap, body: &[u8], allowed: &[Action]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let body = match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            let mut changed = false;
            for (object, field) in SECRETS {
                if let Some(o) = v.get_mut(*object).and_then(Value::as_object_mut) {
                    changed |= o.remove(*field).is_some();
                }
            }
            if changed {
                v.to_string()
            } else {
                text.to_owned()
            }
        }
        Err(_) => text.to_owned(),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !SKIP_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut actions: Vec<String> = Vec::new();
    let mut rule = None;
    for a in allowed {
        rule = rule.max(Some(a.rule()));
        let name = format!("{a:?}");
        if !actions.contains(&name) {
            actions.push(name);
        }
    }
    let policy = rule.map(|r| json!({"rule": r.role_name(), "actions": actions}));
    Some(json!({ "headers": headers, "body": body, "policy": policy }).to_string())
}

/// Why a caller holding `roles` may not have the stored answer: they no
/// longer satisfy the rule the first request was allowed under. `None`
/// when they do.
fn refusal(stored: &str, roles: &[&str]) -> Option<String> {
    let v: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    let policy = v.get("policy").filter(|p| !p.is_null())?;
    let rule = match policy["rule"].as_str() {
        Some("reader") => Rule::Reader,
        Some("member") => Rule::Member,
        // An unknown rule is the strictest.
        _ => Rule::Admin,
    };
    if allows(rule, roles) {
        return None;
    }
    let actions: Vec<&str> = policy["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Some(format!(
        "Policy does not allow {}: it needs the '{}' role (you have: {}).",
        actions.join(", "),
        rule.role_name(),
        if roles.is_empty() {
            "none".to_owned()
        } else {
            roles.join(", ")
        }
    ))
}

/// Rebuilds a stored answer.
fn replay(status: u16, stored: &str) -> Response {
    let v: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    let mut resp = Response::new(Body::from(v["body"].as_str().unwrap_or("").to_owned()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for pair in v["headers"].as_array().into_iter().flatten() {
        let (Some(k), Some(val)) = (pair[0].as_str(), pair[1].as_str()) else {
            continue;
        };
        if let (Ok(k), Ok(val)) = (HeaderName::try_from(k), HeaderValue::from_str(val)) {
            resp.headers_mut().append(k, val);
        }
    }
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// Deletes expired keys, at most every ten minutes per process, in the
/// background.
fn purge_now_and_then(store: &Store) {
    let now = Timestamp::now().micros();
    let last = LAST_PURGE.load(Ordering::Relaxed);
    if now - last < 600 * 1_000_000
        || LAST_PURGE
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let store = store.clone();
    tokio::spawn(async move {
        let before = Timestamp::from_micros(now - RETENTION_SECS * 1_000_000);
        match store.idempotency_purge(before).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot purge idempotency keys"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_replay_without_secrets() {
        let mut h = HeaderMap::new();
        h.insert("location", HeaderValue::from_static("http://x/servers/1"));
        h.insert("content-length", HeaderValue::from_static("10"));
        let s = stored_answer(
            &h,
            br#"{"keypair": {"name": "k", "private_key": "SECRET"}}"#,
            &[],
        )
        .unwrap();
        assert!(!s.contains("SECRET"));
        let r = replay(200, &s);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["location"], "http://x/servers/1");
        assert!(r.headers().get("content-length").is_none());
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(service_of("/network/v2.0/networks"), Service::Network);
        let s = stored_answer(
            &h,
            br#"{"server": {"id": "1", "adminPass": "SECRET"}}"#,
            &[],
        )
        .unwrap();
        assert!(!s.contains("SECRET") && s.contains("id"), "{s}");
    }

    #[test]
    fn a_replay_needs_the_rule_the_first_request_was_allowed_under() {
        let allowed = [Action::ServerRead, Action::ServerWrite, Action::ServerWrite];
        let s = stored_answer(&HeaderMap::new(), b"{}", &allowed).unwrap();
        assert_eq!(refusal(&s, &["member"]), None);
        assert_eq!(refusal(&s, &["admin"]), None);
        let why = refusal(&s, &["reader"]).unwrap();
        assert!(why.contains("ServerRead, ServerWrite"), "{why}");
        assert!(why.contains("'member'"), "{why}");
        assert!(refusal(&s, &[]).unwrap().contains("you have: none"));
        // An answer made under no policy decision (a refusal) replays.
        let s = stored_answer(&HeaderMap::new(), b"{}", &[]).unwrap();
        assert_eq!(refusal(&s, &[]), None);
    }
}
