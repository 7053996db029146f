//! The metadata API for guests, under `/metadata` (Nova's
//! nova-api-metadata, reached through the host data plane's proxy).
//!
//! A guest asks `http://169.254.169.254/openstack/latest/meta_data.json`;
//! the proxy in its network's namespace knows the instance from the
//! (network, source IP) pair, adds `X-Instance-ID` and its signature
//! (see [`cloud_driver::metadata`]) and forwards the path here. There is no
//! token: the signature is the authentication, and everything served comes
//! from the instance record the signed id names.
//!
//! * No shared secret configured: 404 for everything (see [`disabled`]).
//! * Missing or wrong signature: 403. Unknown or deleted instance: 404.
//! * `/metadata`: the EC2 versions and `latest` (as Nova's `/`);
//!   `/metadata/<ec2 version>/meta-data/...`, `.../user-data`: the EC2
//!   tree ([`ec2`]); `/metadata/openstack[/<version>[/<file>]]`: the
//!   OpenStack tree ([`content`]).
//! * GET and HEAD only (405 otherwise); unknown paths 404.
//!
//! These routes are not in the OpenAPI document: like Nova's metadata
//! API they are a separate service for guests, not part of the public
//! API that clients use.

pub mod content;
pub mod ec2;
pub mod signature;

use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use content::Guest;

/// The path prefix the metadata API is served under.
pub const PREFIX: &str = "/metadata";

/// The routes, merged into the API's router outside the OpenAPI
/// document. `get` also answers HEAD, and any other method gets 405.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PREFIX, get(serve))
        .route(&format!("{PREFIX}/{{*path}}"), get(serve))
}

/// Why a metadata request gets no content.
#[derive(Debug)]
pub enum MetadataError {
    /// No shared secret: the endpoint is off ([`disabled`]).
    Disabled,
    /// No valid signature (403): who is asking is unproven.
    Forbidden(&'static str),
    /// Unknown path, unknown or deleted instance, or a file the instance
    /// does not have (404).
    NotFound,
    /// The store failed (500); the detail goes to the log, not the guest.
    Internal(String),
}

impl IntoResponse for MetadataError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            MetadataError::Disabled => (
                StatusCode::NOT_FOUND,
                "The metadata service is not enabled on this API: it has no shared secret \
                 to verify the metadata proxies' signatures with."
                    .to_owned(),
            ),
            MetadataError::Forbidden(why) => (StatusCode::FORBIDDEN, format!("Forbidden: {why}.")),
            MetadataError::NotFound => (
                StatusCode::NOT_FOUND,
                "The resource could not be found.".to_owned(),
            ),
            MetadataError::Internal(detail) => {
                tracing::error!(%detail, "metadata request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unknown error has occurred.".to_owned(),
                )
            }
        };
        (status, [(header::CONTENT_TYPE, TEXT)], body).into_response()
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

/// A successful answer: a body and its content type.
pub struct Reply {
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    /// A plain-text value.
    pub fn text(s: String) -> Reply {
        Reply {
            content_type: TEXT,
            body: s.into_bytes(),
        }
    }

    /// A directory listing: one entry a line, no trailing newline (Nova's
    /// `ec2_md_print`).
    pub fn list<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Reply {
        let lines: Vec<String> = entries.into_iter().map(|e| e.as_ref().to_owned()).collect();
        Reply::text(lines.join("\n"))
    }

    /// A JSON document, compact as the config drive writes it.
    pub fn json(v: &serde_json::Value) -> Reply {
        Reply {
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// Raw bytes (user data, exactly as given at boot).
    pub fn bytes(body: Vec<u8>) -> Reply {
        Reply {
            content_type: "application/octet-stream",
            body,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response()
    }
}

/// Logs, once per process, that the endpoint is off, and answers 404.
///
/// 404 rather than 503: without a secret nothing can be verified, so on
/// this API the service does not exist, as in a Nova deployment that runs
/// no nova-api-metadata. A 503 would tell proxies and guests to try again
/// later, and nothing changes until an operator sets the secret and
/// restarts. The body and the log say why.
pub fn disabled() -> MetadataError {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "metadata request refused: no [api.metadata] shared_secret or \
             CLOUD_METADATA_SECRET is configured"
        );
    });
    MetadataError::Disabled
}

/// The one handler: verify, load the instance, then walk the path.
async fn serve(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    match answer(&state, uri.path(), &headers).await {
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, path: &str, headers: &HeaderMap) -> Result<Reply, MetadataError> {
    let Some(secret) = state.config().metadata.secret() else {
        return Err(disabled());
    };
    // Even the version listings need a verified instance: nothing is
    // served to a request the proxy did not sign.
    let id = signature::verified_instance_id(headers, secret)?;
    let guest = Guest::load(state.store(), &id).await?;
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => Ok(Reply::list(
            ec2::EC2_VERSIONS.iter().copied().chain(["latest"]),
        )),
        ["openstack", rest @ ..] => content::openstack(&guest, rest),
        [version, rest @ ..] if ec2::known_version(version) => ec2::ec2(&guest, version, rest),
        _ => Err(MetadataError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ApiConfig, MetadataConfig};

    fn parse(text: &str) -> ApiConfig {
        cloud_service_common::config::parse_config(std::path::Path::new("api.toml"), text).unwrap()
    }

    #[test]
    fn the_secret_comes_from_api_metadata_or_the_environment() {
        // The environment overrides the file, so the expectation depends
        // on whether this process has CLOUD_METADATA_SECRET.
        let env = std::env::var("CLOUD_METADATA_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        let c = parse("data_dir = \"/tmp\"\n[metadata]\nshared_secret = \"from-file\"\n");
        assert_eq!(
            c.metadata.secret(),
            Some(env.as_deref().unwrap_or("from-file"))
        );
        let c = parse("data_dir = \"/tmp\"\n");
        assert_eq!(c.metadata.secret(), env.as_deref());
        let c = parse("data_dir = \"/tmp\"\n[metadata]\nshared_secret = \"\"\n");
        if env.is_none() {
            assert_eq!(c.metadata.secret(), None, "an empty secret disables");
        }
        let debug = format!(
            "{:?}",
            MetadataConfig {
                shared_secret: Some("hunter2".into())
            }
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(MetadataConfig::default().secret(), None);
    }
}
