//! Errors as the API shows them.
//!
//! Handlers return [`ApiError`], built from `cloud_model::Error` or from a
//! request that could not be parsed. Its response carries the error as a
//! [`Fault`] extension; the layer each service is mounted with
//! ([`render_faults`]) turns that into the service's own status code and
//! JSON shape: Nova's `{"itemNotFound": {"code", "message"}}`, Neutron's
//! `{"NeutronError": {"type", "message", "detail"}}`, Keystone's
//! `{"error": {"code", "title", "message"}}` and Glance's
//! `{"code", "title", "message"}`. The same layer gives axum's own
//! rejections (unknown route, wrong method) the service's format, so no
//! response of ours is ever a bare text error.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_model::{Error, ResourceKind};

/// What went wrong, independent of which service renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 400.
    BadRequest,
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden,
    /// 404, with the kind of resource that was missed.
    NotFound(Option<ResourceKind>),
    /// 405.
    MethodNotAllowed,
    /// 406 (unsupported microversion).
    NotAcceptable,
    /// 409.
    Conflict,
    /// Quota: 403 in Nova, 409 in Neutron, 413 in Glance.
    OverQuota,
    /// 413.
    PayloadTooLarge,
    /// 415.
    UnsupportedMediaType,
    /// 500.
    Internal,
    /// 503.
    Unavailable,
}

/// An error on its way out, attached to the response for [`render_faults`].
#[derive(Clone, Debug)]
pub struct Fault {
    /// The category.
    pub kind: FaultKind,
    /// The message for the user.
    pub message: String,
}

/// The error type of every handler.
#[derive(Debug)]
pub struct ApiError(pub Fault);

impl ApiError {
    /// A 400 with `message` (which should name the field).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(Fault {
            kind: FaultKind::BadRequest,
            message: message.into(),
        })
    }

    /// A fault of any kind.
    pub fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        ApiError(Fault {
            kind,
            message: message.into(),
        })
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::NotFound { kind, .. } => FaultKind::NotFound(Some(*kind)),
            Error::InvalidRequest { .. } => FaultKind::BadRequest,
            Error::Conflict { .. } => FaultKind::Conflict,
            Error::Forbidden { .. } => FaultKind::Forbidden,
            Error::Unauthenticated { .. } => FaultKind::Unauthenticated,
            Error::QuotaExceeded { .. } => FaultKind::OverQuota,
            Error::InsufficientCapacity { .. } => FaultKind::Conflict,
            Error::Unavailable { .. } => FaultKind::Unavailable,
            Error::Internal { .. } => FaultKind::Internal,
        };
        if matches!(kind, FaultKind::Internal | FaultKind::Unavailable) {
            tracing::error!(error = %e, "request failed");
        }
        ApiError(Fault {
            kind,
            message: e.external_message(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = Service::Compute.status(&self.0.kind);
        let mut resp = Response::new(Body::from(self.0.message.clone()));
        *resp.status_mut() = status;
        resp.extensions_mut().insert(self.0);
        resp
    }
}

/// The OpenStack service whose error format a response uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Keystone.
    Identity,
    /// Nova.
    Compute,
    /// Glance.
    Image,
    /// Neutron.
    Network,
}

impl Service {
    /// The status code this service uses for `kind`.
    pub fn status(self, kind: &FaultKind) -> StatusCode {
        match kind {
            FaultKind::BadRequest => StatusCode::BAD_REQUEST,
            FaultKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            FaultKind::Forbidden => StatusCode::FORBIDDEN,
            FaultKind::NotFound(_) => StatusCode::NOT_FOUND,
            FaultKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            FaultKind::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            FaultKind::Conflict => StatusCode::CONFLICT,
            FaultKind::OverQuota => match self {
                Service::Compute | Service::Identity => StatusCode::FORBIDDEN,
                Service::Network => StatusCode::CONFLICT,
                Service::Image => StatusCode::PAYLOAD_TOO_LARGE,
            },
            FaultKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FaultKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FaultKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            FaultKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON body of a fault in this service's format.
    pub fn body(self, status: StatusCode, fault: &Fault) -> serde_json::Value {
        let code = status.as_u16();
        let title = status.canonical_reason().unwrap_or("Error");
        match self {
            Service::Compute => {
                let key = match status.as_u16() {
                    400 => "badRequest",
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "itemNotFound",
                    405 => "badMethod",
                    406 => "notAcceptable",
                    409 => "conflictingRequest",
                    413 => "overLimit",
                    415 => "badMediaType",
                    501 => "notImplemented",
                    503 => "serviceUnavailable",
                    _ => "computeFault",
                };
                serde_json::json!({ key: { "code": code, "message": fault.message } })
            }
            Service::Network => {
                let ty = match &fault.kind {
                    FaultKind::NotFound(Some(k)) => k.neutron_not_found_type(),
                    FaultKind::NotFound(None) => "HTTPNotFound".to_owned(),
                    FaultKind::BadRequest => "HTTPBadRequest".to_owned(),
                    FaultKind::Conflict => "Conflict".to_owned(),
                    FaultKind::OverQuota => "OverQuota".to_owned(),
                    FaultKind::Forbidden => "HTTPForbidden".to_owned(),
                    FaultKind::Unauthenticated => "HTTPUnauthorized".to_owned(),
                    _ => title.replace(' ', ""),
                };
                serde_json::json!({
                    "NeutronError": { "type": ty, "message": fault.message, "detail": "" }
                })
            }
            Service::Identity => serde_json::json!({
                "error": { "code": code, "title": title, "message": fault.message }
            }),
            Service::Image => serde_json::json!({
                "code": format!("{code} {title}"), "title": title, "message": fault.message
            }),
        }
    }

    /// The message used when axum itself rejects a request (no route, ...).
    fn default_fault(status: StatusCode) -> Fault {
        let (kind, message) = match status {
            StatusCode::NOT_FOUND => (
                FaultKind::NotFound(None),
                "The resource could not be found.",
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                FaultKind::MethodNotAllowed,
                "The method is not allowed for the requested URL.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (FaultKind::PayloadTooLarge, "Request is too large."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                FaultKind::UnsupportedMediaType,
                "The request media type is not supported.",
            ),
            s if s.is_server_error() => (
                FaultKind::Internal,
                "The server has either erred or is incapable of performing the requested operation.",
            ),
            _ => (FaultKind::BadRequest, "The request is invalid."),
        };
        Fault {
            kind,
            message: message.to_owned(),
        }
    }
}

/// What a 503 tells a client to wait (`Retry-After`, seconds) unless the
/// handler set its own: about what a database restart or a standby's
/// promotion takes.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// Response mapper installed on each service's routes: renders faults in
/// the service's format and status.
pub async fn render_faults(service: Service, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, _body) = resp.into_parts();
    let fault = parts
        .extensions
        .remove::<Fault>()
        .unwrap_or_else(|| Service::default_fault(status));
    let status = if parts.extensions.get::<KeepStatus>().is_some() {
        status
    } else {
        service.status(&fault.kind)
    };
    let body = service.body(status, &fault).to_string();
    parts.status = status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A 503 is a passing state (the database restarting or failing over,
    // a bounded resource busy): tell clients when to come back.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        parts
            .headers
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Marker extension: keep the handler's status instead of the service's
/// default for the fault kind.
#[derive(Clone, Copy, Debug)]
pub struct KeepStatus;

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_status_differs_per_service() {
        assert_eq!(
            Service::Compute.status(&FaultKind::OverQuota),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Service::Network.status(&FaultKind::OverQuota),
            StatusCode::CONFLICT
        );
    }

    #[tokio::test]
    async fn unavailable_says_when_to_come_back() {
        let resp =
            ApiError::from(Error::unavailable("the database is unavailable")).into_response();
        let resp = render_faults(Service::Compute, resp).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn formats() {
        let f = Fault {
            kind: FaultKind::NotFound(Some(ResourceKind::Network)),
            message: "Network x could not be found.".into(),
        };
        let n = Service::Network.body(StatusCode::NOT_FOUND, &f);
        assert_eq!(n["NeutronError"]["type"], "NetworkNotFound");
        let c = Service::Compute.body(StatusCode::NOT_FOUND, &f);
        assert_eq!(c["itemNotFound"]["code"], 404);
        let i = Service::Identity.body(StatusCode::NOT_FOUND, &f);
        assert_eq!(i["error"]["title"], "Not Found");
    }
}
