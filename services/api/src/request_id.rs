//! Request ids: one per request, on the response and on every log line;
//! the request's span is the root of its trace.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The id of the request being handled (`req-<uuid>`), as OpenStack
/// services name theirs.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Middleware: assigns the id, runs the request inside a span that carries
/// it, logs the outcome, and returns the id in `x-openstack-request-id`.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    req.extensions_mut().insert(RequestId(id.clone()));
    // A caller's W3C `traceparent` makes this request part of its trace
    // when spans are exported (cloud_service_common::otlp).
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Spans are named after the route (`/servers/{server_id}`), not the
    // path with its ids, so a backend groups them.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        traceparent = traceparent.as_deref(),
    );
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let elapsed = start.elapsed().as_secs_f64();
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    cloud_service_common::metrics::count(
        "cloud_api_requests_total",
        "API requests answered, by status class.",
        &[("status", class)],
        1,
    );
    cloud_service_common::metrics::observe(
        "cloud_api_request_duration_seconds",
        "Time to answer an API request.",
        &[],
        elapsed,
    );
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
            "handled"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}
