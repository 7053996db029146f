//! Request extractors with the API's own rejections.
//!
//! axum's stock extractors answer bad input with plain-text errors; ours
//! answer with an [`ApiError`] whose message names the offending field, so
//! the client sees the service's JSON fault format.

use crate::error::{ApiError, FaultKind};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON request body, deserialized with error paths
/// (`server.flavorRef: invalid type: integer -1, expected a string`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct.is_empty() && !ct.contains("json") {
                return Err(ApiError::new(
                    FaultKind::UnsupportedMediaType,
                    format!("Unsupported Content-Type '{ct}': the body must be application/json."),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(FaultKind::PayloadTooLarge, "Request body is too large.")
            } else {
                ApiError::bad_request(format!("Cannot read the request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON document into `T`, with messages that name the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "The request body is empty: a JSON object is required.",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("Malformed request body: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!("Invalid request body: {inner}"))
        } else {
            ApiError::bad_request(format!("Invalid input for field '{path}': {inner}"))
        }
    })
}

/// The base URL clients reach us at: the configured public URL, or
/// `http://<Host>` of the request.
#[derive(Clone, Debug)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.config().public_url {
            return Ok(BaseUrl(url.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| state.config().listen.to_string());
        Ok(BaseUrl(format!("http://{host}")))
    }
}

/// Raw query pairs, for APIs that accept arbitrary filters (Neutron) or
/// repeated keys.
#[derive(Clone, Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(form_pairs(q)))
    }
}

impl QueryPairs {
    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses the value of `key` as an integer, naming the key on error.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid value '{v}' for query parameter '{key}': expected an integer."
                ))
            }),
        }
    }

    /// A `limit` parameter: a non-negative integer.
    pub fn limit(&self) -> Result<Option<i64>, ApiError> {
        match self.int("limit")? {
            Some(l) if l < 0 => Err(ApiError::bad_request(format!(
                "Invalid value '{l}' for query parameter 'limit': it must be >= 0."
            ))),
            other => Ok(other),
        }
    }

    /// A boolean parameter (`true/false/1/0/yes/no`, any case).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid value '{v}' for query parameter '{key}': expected a boolean."
                ))
            }),
        }
    }
}

/// Parses OpenStack's boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Splits and percent-decodes an `application/x-www-form-urlencoded` query.
fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let p = form_pairs("id=in%3Aa%2Cb&name=my+vm&x=%zz&empty");
        assert_eq!(p[0], ("id".into(), "in:a,b".into()));
        assert_eq!(p[1], ("name".into(), "my vm".into()));
        assert_eq!(p[2], ("x".into(), "%zz".into()));
        assert_eq!(p[3], ("empty".into(), "".into()));
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            server: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            #[serde(rename = "flavorRef")]
            flavor_ref: String,
        }
        let e = parse_json::<Outer>(br#"{"server": {"flavorRef": -1}}"#).unwrap_err();
        assert!(e.0.message.contains("server.flavorRef"), "{}", e.0.message);
        let e = parse_json::<Outer>(b"{not json").unwrap_err();
        assert!(e.0.message.starts_with("Malformed"), "{}", e.0.message);
        let e = parse_json::<Outer>(b"").unwrap_err();
        assert!(e.0.message.contains("empty"));
    }
}
