//! Compute API microversions.
//!
//! Nova lets each request pick the API version it speaks with
//! `OpenStack-API-Version: compute X.Y` (or the legacy
//! `X-OpenStack-Nova-API-Version: X.Y`); no header means the minimum and
//! `latest` the maximum. We advertise exactly [`MIN_VERSION`]..[`MAX_VERSION`]:
//! the SDK negotiates the highest version both sides know and changes the
//! response formats it expects accordingly, so raising [`MAX_VERSION`] is a
//! promise that every handler renders that version's shapes.
//!
//! [`negotiate`] runs in front of the compute routes, stores the result in
//! the request's extensions (handlers take a [`Microversion`] argument to
//! read it) and echoes it on the response, as Nova does.

use crate::error::{ApiError, FaultKind};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt;

/// A compute API version `major.minor`. Ordered, so handlers can write
/// `if mv >= Microversion::new(2, 47)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    /// Major version (always 2 for the v2.1 API).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

/// The oldest version we serve (and the one used without a header).
pub const MIN_VERSION: Microversion = Microversion::new(2, 1);

/// The newest version we serve; what `latest` means and what the version
/// document advertises.
pub const MAX_VERSION: Microversion = Microversion::new(2, 1);

/// The new-style header (`compute 2.1`).
pub const HEADER: &str = "openstack-api-version";

/// The legacy header (`2.1`).
pub const LEGACY_HEADER: &str = "x-openstack-nova-api-version";

/// The service type named in [`HEADER`].
const SERVICE_TYPE: &str = "compute";

impl Microversion {
    /// The version `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Microversion { major, minor }
    }

    /// Whether this version is `major.minor` or newer.
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= Microversion::new(major, minor)
    }

    /// Parses `X.Y` as Nova does: no leading zeros, no sign, no spaces.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        let number = |p: &str, allow_zero: bool| -> Option<u16> {
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
                || (!allow_zero && p == "0")
            {
                return None;
            }
            p.parse().ok()
        };
        Some(Microversion::new(
            number(major, false)?,
            number(minor, true)?,
        ))
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Handlers read the negotiated version like any other extractor. Outside
/// the negotiating middleware (which always sets it) it is the minimum.
impl<S: Send + Sync> FromRequestParts<S> for Microversion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Microversion>()
            .copied()
            .unwrap_or(MIN_VERSION))
    }
}

/// The version string the client asked for, if any: the `compute` entry
/// of `OpenStack-API-Version` (a comma-separated list of
/// `<service> <version>`, possibly over several header lines), else the
/// legacy header.
fn requested(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(HEADER) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split_whitespace();
            if let (Some(service), Some(version)) = (parts.next(), parts.next())
                && service.eq_ignore_ascii_case(SERVICE_TYPE)
            {
                return Some(version.to_owned());
            }
        }
    }
    let legacy: Vec<&str> = headers
        .get_all(LEGACY_HEADER)
        .iter()
        .map(|v| v.to_str().unwrap_or("").trim())
        .collect();
    if legacy.is_empty() {
        None
    } else {
        Some(legacy.join(","))
    }
}

/// The version a request gets: 400 for a malformed version string, 406
/// for one outside [`MIN_VERSION`]..[`MAX_VERSION`].
pub fn negotiate_headers(headers: &HeaderMap) -> Result<Microversion, ApiError> {
    let Some(asked) = requested(headers) else {
        return Ok(MIN_VERSION);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX_VERSION);
    }
    let version = Microversion::parse(&asked).ok_or_else(|| {
        ApiError::bad_request(format!(
            "API Version String {asked} is of invalid format. Must be of format \
             MajorNum.MinorNum."
        ))
    })?;
    if version < MIN_VERSION || version > MAX_VERSION {
        return Err(ApiError::new(
            FaultKind::NotAcceptable,
            format!(
                "Version {version} is not supported by the API. Minimum is {MIN_VERSION} and \
                 maximum is {MAX_VERSION}."
            ),
        ));
    }
    Ok(version)
}

/// Whether `path` is under the versioned API (`/v2.1`, `/v2.1/...`); the
/// version documents around it are served whatever the headers say.
fn is_versioned(path: &str) -> bool {
    path.split('/').any(|segment| segment == "v2.1")
}

/// Writes the version headers Nova sends on every response.
fn echo(resp: &mut Response, version: Microversion) {
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{SERVICE_TYPE} {version}")) {
        headers.insert(HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
        headers.insert(LEGACY_HEADER, v);
    }
    headers.insert(
        axum::http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
}

/// Middleware of the compute service: negotiates the version of `/v2.1`
/// requests (refusing unsupported ones before any handler runs), makes it
/// available to handlers and echoes it on the response.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let negotiated = if is_versioned(req.uri().path()) {
        negotiate_headers(req.headers())
    } else {
        Ok(MIN_VERSION)
    };
    match negotiated {
        Ok(version) => {
            req.extensions_mut().insert(version);
            let mut resp = next.run(req).await;
            echo(&mut resp, version);
            resp
        }
        Err(e) => {
            let mut resp = e.into_response();
            echo(&mut resp, MIN_VERSION);
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn parses_like_nova() {
        assert_eq!(Microversion::parse("2.1"), Some(Microversion::new(2, 1)));
        assert_eq!(Microversion::parse("2.10"), Some(Microversion::new(2, 10)));
        assert_eq!(Microversion::parse("3.0"), Some(Microversion::new(3, 0)));
        for bad in [
            "2", "2.", ".1", "02.1", "2.01", "0.1", "2.1.1", "a.b", " 2.1", "-2.1",
        ] {
            assert_eq!(Microversion::parse(bad), None, "{bad}");
        }
        assert!(Microversion::new(2, 10) > Microversion::new(2, 9));
        assert!(Microversion::new(2, 47).at_least(2, 47));
        assert!(!Microversion::new(2, 46).at_least(2, 47));
    }

    #[test]
    fn picks_the_compute_entry_then_the_legacy_header() {
        let v = negotiate_headers(&headers(&[(HEADER, "image 2.5, compute 2.1")])).unwrap();
        assert_eq!(v, MIN_VERSION);
        let v =
            negotiate_headers(&headers(&[(HEADER, "volume 3.0"), (LEGACY_HEADER, "2.1")])).unwrap();
        assert_eq!(v, MIN_VERSION);
        assert_eq!(negotiate_headers(&HeaderMap::new()).unwrap(), MIN_VERSION);
        let v = negotiate_headers(&headers(&[(HEADER, "compute latest")])).unwrap();
        assert_eq!(v, MAX_VERSION);
        let v = negotiate_headers(&headers(&[(LEGACY_HEADER, "latest")])).unwrap();
        assert_eq!(v, MAX_VERSION);
    }

    #[test]
    fn refuses_unsupported_and_malformed_versions() {
        let e = negotiate_headers(&headers(&[(HEADER, "compute 2.2")])).unwrap_err();
        assert_eq!(e.0.kind, FaultKind::NotAcceptable);
        assert!(e.0.message.contains("Minimum is 2.1 and maximum is 2.1"));
        let e = negotiate_headers(&headers(&[(LEGACY_HEADER, "3.0")])).unwrap_err();
        assert_eq!(e.0.kind, FaultKind::NotAcceptable);
        let e = negotiate_headers(&headers(&[(HEADER, "compute 2.x")])).unwrap_err();
        assert_eq!(e.0.kind, FaultKind::BadRequest);
        let e = negotiate_headers(&headers(&[(LEGACY_HEADER, "2.1"), (LEGACY_HEADER, "2.1")]))
            .unwrap_err();
        assert_eq!(e.0.kind, FaultKind::BadRequest);
    }

    #[test]
    fn only_the_versioned_api_negotiates() {
        assert!(is_versioned("/v2.1"));
        assert!(is_versioned("/v2.1/flavors"));
        assert!(is_versioned("/compute/v2.1/flavors"));
        assert!(!is_versioned("/"));
        assert!(!is_versioned("/v2"));
    }
}
