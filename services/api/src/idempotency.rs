//! `Idempotency-Key` on creates: a retried POST returns the first answer
//! instead of making a second resource.
//!
//! One middleware in front of every service. A POST carrying the header is
//! hashed (method, path with query, body) and its key claimed in the
//! caller's project (the token is validated exactly as [`Ctx`] does, and
//! the context is left in the request for the handler). Then:
//!
//! * first use: the request runs (in its own task, so a client that hangs
//!   up cannot cancel a create half way) and its answer is stored, except
//!   server errors, which release the key so a retry runs again;
//! * same key, same request, finished: the stored status, headers and body
//!   are replayed (with `Idempotent-Replayed: true`);
//! * same key, same request, still running: wait for it, then replay, so
//!   two concurrent retries never both create;
//! * same key, different request: 409 saying so.
//!
//! Keys live [`RETENTION_SECS`] (24 h), then are purged. Token requests are
//! never stored (their answers are secrets), and a server-generated private
//! key is removed from a stored keypair answer: it is shown once only.

use crate::auth::Ctx;
use crate::error::{ApiError, FaultKind, Service, render_faults};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloud_model::Timestamp;
use cloud_store::IdempotencyClaim;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// How long a key is remembered.
pub const RETENTION_SECS: i64 = 24 * 3600;

/// An in-flight claim older than this belongs to a request that died.
const STALE_SECS: i64 = 600;

/// How long a duplicate waits for the first request to finish.
const WAIT: Duration = Duration::from_secs(60);

/// Largest answer stored for replay.
const MAX_STORED: usize = 4 * 1024 * 1024;

/// When keys were last purged (µs), so a busy API purges every ten
/// minutes rather than on every request.
static LAST_PURGE: AtomicI64 = AtomicI64::new(0);

/// Headers of the answer not replayed: recomputed or per request.
const SKIP_HEADERS: &[&str] = &["content-length", "x-openstack-request-id", "date"];

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
    let scope = match ctx.token.project.as_ref() {
        Some(p) => p.id.to_string(),
        None => format!("user:{}", ctx.user_id()),
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
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let mut hasher = Sha256::new();
    hasher.update(b"POST\n");
    hasher.update(target.as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let hash = hex::encode(hasher.finalize());
    let store = state.store().clone();
    purge_now_and_then(&store);

    let started = Instant::now();
    loop {
        let now = Timestamp::now();
        let claim = store
            .idempotency_claim(
                &scope,
                &key,
                &hash,
                now,
                Timestamp::from_micros(now.micros() - STALE_SECS * 1_000_000),
                Timestamp::from_micros(now.micros() - RETENTION_SECS * 1_000_000),
            )
            .await;
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
                return replay(status, &response);
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
                let req = Request::from_parts(parts, Body::from(bytes));
                return run_first(store, scope, key, next, req).await;
            }
        }
    }
}

/// Runs the request holding the claim and records its answer.
async fn run_first(
    store: cloud_store::Store,
    scope: String,
    key: String,
    next: Next,
    req: Request,
) -> Response {
    let task = tokio::spawn(async move {
        let resp = next.run(req).await;
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_STORED).await;
        let stored = match &bytes {
            Ok(b) if !parts.status.is_server_error() => stored_answer(&parts.headers, b),
            _ => None,
        };
        let saved = match stored {
            Some(s) => {
                store
                    .idempotency_complete(&scope, &key, parts.status.as_u16(), &s)
                    .await
            }
            None => store.idempotency_release(&scope, &key).await,
        };
        if let Err(e) = saved {
            tracing::warn!(error = %e, "cannot record the answer of an idempotent request");
        }
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

/// The stored form of an answer: headers worth replaying and the body as
/// text (answers are JSON), minus any private key. `None` when the body is
/// not text.
fn stored_answer(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let body = match serde_json::from_str::<Value>(text) {
        Ok(mut v) if v["keypair"].get("private_key").is_some() => {
            if let Some(kp) = v["keypair"].as_object_mut() {
                kp.remove("private_key");
            }
            v.to_string()
        }
        _ => text.to_owned(),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !SKIP_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    Some(json!({ "headers": headers, "body": body }).to_string())
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
fn purge_now_and_then(store: &cloud_store::Store) {
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
    fn stored_answers_replay_and_drop_private_keys() {
        let mut h = HeaderMap::new();
        h.insert("location", HeaderValue::from_static("http://x/servers/1"));
        h.insert("content-length", HeaderValue::from_static("10"));
        let s = stored_answer(
            &h,
            br#"{"keypair": {"name": "k", "private_key": "SECRET"}}"#,
        )
        .unwrap();
        assert!(!s.contains("SECRET"));
        let r = replay(200, &s);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["location"], "http://x/servers/1");
        assert!(r.headers().get("content-length").is_none());
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(service_of("/network/v2.0/networks"), Service::Network);
    }
}
