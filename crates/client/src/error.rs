//! The client's one error type.
//!
//! An error from the server keeps everything a user needs to act on it or
//! report it: the server's own message (taken from whichever of the four
//! OpenStack fault formats the service speaks), the HTTP status, and the
//! `x-openstack-request-id` that finds the request in the server's logs.

use serde_json::Value;

/// Everything that can go wrong talking to the cloud.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The request never got an answer (connection refused, timeout, ...).
    #[error("cannot reach {url}: {source}")]
    Transport {
        /// The URL we tried.
        url: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not what the API documents.
    #[error("unexpected response from {url}: {detail}")]
    Protocol {
        /// The URL that answered.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The token's catalog lists no endpoint for a service we need.
    #[error("the service catalog has no public endpoint for '{service}'{region}")]
    NoEndpoint {
        /// Service type (`compute`, `image`, ...).
        service: String,
        /// `" in region X"` when a region was asked for, else empty.
        region: String,
    },
    /// No resource has this name or id.
    #[error("no {kind} named or with id '{name}'")]
    NotFound {
        /// Kind of resource (`server`, `flavor`, ...).
        kind: String,
        /// What the user typed.
        name: String,
    },
    /// Several resources have this name: the user must pick one by id.
    #[error("{} {kind}s are named '{name}'; use an id: {}", .matches.len(), format_matches(.matches))]
    Ambiguous {
        /// Kind of resource.
        kind: String,
        /// The name given.
        name: String,
        /// `(id, name)` of every match.
        matches: Vec<(String, String)>,
    },
    /// The server and this client share no compute microversion.
    #[error(
        "the compute API serves microversions {server_min}..{server_max}; this client needs {client_min}..{client_max}"
    )]
    Microversion {
        /// Oldest version the server serves.
        server_min: String,
        /// Newest version the server serves.
        server_max: String,
        /// Oldest version the client speaks.
        client_min: String,
        /// Newest version the client speaks.
        client_max: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The caller asked for something the client cannot do.
    #[error("{0}")]
    Invalid(String),
}

fn format_matches(m: &[(String, String)]) -> String {
    m.iter()
        .map(|(id, name)| format!("{id} ({name})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error answer from the server.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (HTTP {status}{})", .request_id.as_deref().map(|r| format!(", request {r}")).unwrap_or_default())]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// The server's message for the user.
    pub message: String,
    /// `x-openstack-request-id` of the failed request, when sent.
    pub request_id: Option<String>,
    /// Method of the failed request.
    pub method: String,
    /// URL of the failed request.
    pub url: String,
}

impl Error {
    /// The HTTP status when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// Whether this is the server saying "no such resource".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. }) || self.status() == Some(404)
    }

    /// The request id of the failed request, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            _ => None,
        }
    }
}

/// The user-facing message of an error body in any OpenStack format:
/// Nova `{"itemNotFound": {"message"}}`, Neutron `{"NeutronError":
/// {"message"}}`, Keystone `{"error": {"message"}}`, Glance `{"message"}`;
/// falls back to the raw text.
pub fn fault_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return if text.is_empty() {
            "(no message)".to_owned()
        } else {
            text
        };
    };
    if let Some(m) = v["NeutronError"]["message"].as_str() {
        return m.to_owned();
    }
    if let Some(m) = v["error"]["message"].as_str() {
        return m.to_owned();
    }
    if let Some(m) = v["message"].as_str() {
        return m.to_owned();
    }
    if let Some(obj) = v.as_object() {
        for inner in obj.values() {
            if let Some(m) = inner["message"].as_str() {
                return m.to_owned();
            }
        }
    }
    v.to_string()
}

/// The result type of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_every_format() {
        assert_eq!(
            fault_message(br#"{"itemNotFound": {"code": 404, "message": "gone"}}"#),
            "gone"
        );
        assert_eq!(
            fault_message(br#"{"NeutronError": {"type": "X", "message": "net", "detail": ""}}"#),
            "net"
        );
        assert_eq!(
            fault_message(br#"{"error": {"code": 401, "title": "U", "message": "auth"}}"#),
            "auth"
        );
        assert_eq!(
            fault_message(br#"{"code": "404 Not Found", "title": "N", "message": "img"}"#),
            "img"
        );
        assert_eq!(fault_message(b"plain text"), "plain text");
    }

    #[test]
    fn api_error_shows_status_and_request_id() {
        let e = ApiError {
            status: 409,
            message: "busy".into(),
            request_id: Some("req-1".into()),
            method: "POST".into(),
            url: "http://x".into(),
        };
        assert_eq!(e.to_string(), "busy (HTTP 409, request req-1)");
        let amb = Error::Ambiguous {
            kind: "server".into(),
            name: "vm".into(),
            matches: vec![("a".into(), "vm".into()), ("b".into(), "vm".into())],
        };
        assert_eq!(
            amb.to_string(),
            "2 servers are named 'vm'; use an id: a (vm), b (vm)"
        );
    }
}
