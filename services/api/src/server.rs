//! Building the service and serving it with graceful shutdown.

use crate::error::{ApiError, FaultKind, Service, render_faults};
use crate::request_id::request_id;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use axum::response::IntoResponse;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// The complete application: all services, request ids, body limits.
pub fn app(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let (router, _spec) = crate::openapi::api_router().split_for_parts();
    router
        .fallback(|| async {
            render_faults(
                Service::Compute,
                ApiError::new(
                    FaultKind::NotFound(None),
                    "The resource could not be found: unknown path. Services are under \
                     /identity, /compute, /image and /network.",
                )
                .into_response(),
            )
            .await
        })
        .route(
            "/metrics",
            axum::routing::get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    cloud_service_common::metrics::render(),
                )
            }),
        )
        // The guests' metadata API: signed by the data plane's proxies,
        // not in the OpenAPI document.
        .merge(crate::metadata::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::idempotency,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn(request_id))
        .with_state(state)
}

/// A running API server.
pub struct ServeHandle {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// Completes when the server has stopped.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `state` on `listener` until `shutdown` resolves, then finishes
/// in-flight requests. Paths are accepted with or without a trailing slash.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<ServeHandle> {
    let addr = listener.local_addr()?;
    let app = NormalizePathLayer::trim_trailing_slash().layer(app(state));
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok(ServeHandle { addr, task })
}
