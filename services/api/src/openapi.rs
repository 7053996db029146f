//! The OpenAPI document, generated from the handlers' annotations and
//! checked in as `api-spec/openapi.json` (a test fails when they drift).

use crate::error::{ApiError, FaultKind, Service, render_faults};
use crate::state::AppState;
use axum::middleware::{from_fn, map_response};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Top-level document metadata.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cloud API",
        description = "OpenStack-compatible identity (Keystone v3), compute (Nova v2.1), \
                       image (Glance v2) and network (Neutron v2.0) APIs.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "identity", description = "Keystone v3 subset, under /identity"),
        (name = "compute", description = "Nova v2.1 subset, under /compute"),
        (name = "image", description = "Glance v2 subset, under /image"),
        (name = "network", description = "Neutron v2.0 subset, under /network"),
    )
)]
struct ApiDoc;

/// The answer to an unknown path under a service's prefix.
async fn unknown_path() -> Response {
    ApiError::new(
        FaultKind::NotFound(None),
        "The resource could not be found.",
    )
    .into_response()
}

/// Every route with its documentation, each service under its prefix and
/// with its own fault format.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/identity",
            crate::identity::router()
                .fallback(unknown_path)
                .layer(map_response(|r| render_faults(Service::Identity, r))),
        )
        .nest(
            "/compute",
            crate::compute::router()
                .fallback(unknown_path)
                .layer(from_fn(crate::compute::microversion::negotiate))
                .layer(map_response(|r| render_faults(Service::Compute, r))),
        )
        .nest(
            "/image",
            crate::image::router()
                .fallback(unknown_path)
                .layer(map_response(|r| render_faults(Service::Image, r))),
        )
        .nest(
            "/network",
            crate::network::router()
                .fallback(unknown_path)
                .layer(map_response(|r| render_faults(Service::Network, r))),
        )
}

/// The document as pretty JSON (what `api-spec/openapi.json` holds).
pub fn openapi_json() -> String {
    let (_router, spec) = api_router().split_for_parts();
    spec.to_pretty_json()
        .expect("the OpenAPI document serializes")
}
