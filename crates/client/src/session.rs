//! The authenticated session every call goes through.
//!
//! [`Client::send`] adds the token and (for compute) the negotiated
//! microversion, logs the exchange at debug level (target `cloud_client`,
//! passwords redacted, request ids shown), renews the token once when the
//! server answers 401, and turns error answers into [`ApiError`]s that
//! carry the server's message, status and request id.

use crate::auth::{AuthOptions, Token};
use crate::error::{ApiError, Error, Result, fault_message};
use crate::login::{authenticate, header, redact};
use crate::microversion::{CLIENT_MAX, CLIENT_MIN, Microversion, negotiate};
use bytes::Bytes;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, RwLock};

/// The OpenStack services the client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Keystone v3.
    Identity,
    /// Nova v2.1.
    Compute,
    /// Glance v2.
    Image,
    /// Neutron v2.0.
    Network,
}

impl Service {
    /// The catalog's service type.
    pub fn catalog_type(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Compute => "compute",
            Service::Image => "image",
            Service::Network => "network",
        }
    }

    /// The versioned base of a catalog URL: compute URLs are versioned
    /// already, image and network URLs are not (clients append the version,
    /// as the OpenStack SDK does).
    fn versioned(self, url: &str) -> String {
        let url = url.trim_end_matches('/');
        let suffix = match self {
            Service::Identity => "/v3",
            Service::Compute => "/v2.1",
            Service::Image => "/v2",
            Service::Network => "/v2.0",
        };
        let already = match self {
            Service::Compute => url.ends_with("/v2.1") || url.ends_with("/v2"),
            _ => url.ends_with(suffix),
        };
        if already {
            url.to_owned()
        } else {
            format!("{url}{suffix}")
        }
    }
}

/// Reports bytes transferred so far and the total when known.
pub type Progress = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// A request body.
#[derive(Clone, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A JSON document.
    Json(Value),
    /// JSON with another content type (Glance's JSON-patch media types).
    JsonAs(Value, &'static str),
    /// The contents of a file, streamed (reopened if the request is retried).
    File {
        /// The file.
        path: PathBuf,
        /// Called as bytes go out.
        progress: Option<Progress>,
    },
}

/// One API call.
#[derive(Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// The service whose endpoint `path` is relative to.
    pub service: Service,
    /// Path under the service's versioned base (`servers/detail`), or an
    /// absolute URL (pagination links).
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Body.
    pub body: Body,
    /// Extra headers (`Idempotency-Key`, ...).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A request without body or query.
    pub fn new(method: Method, service: Service, path: impl Into<String>) -> Request {
        Request {
            method,
            service,
            path: path.into(),
            query: Vec::new(),
            body: Body::Empty,
            headers: Vec::new(),
        }
    }

    /// With a JSON body.
    pub fn json(mut self, body: Value) -> Request {
        self.body = Body::Json(body);
        self
    }

    /// With query parameters.
    pub fn query<K: Into<String>, V: Into<String>>(
        mut self,
        q: impl IntoIterator<Item = (K, V)>,
    ) -> Request {
        self.query
            .extend(q.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A successful answer, buffered.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// The URL that answered.
    pub url: String,
}

impl Response {
    /// The body as JSON (`Null` when empty).
    pub fn json(&self) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| Error::Protocol {
            url: self.url.clone(),
            detail: format!("body is not JSON: {e}"),
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client of one cloud, authenticated as one user in one project.
/// Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    auth: AuthOptions,
    token: RwLock<Token>,
    compute_version: OnceCell<Option<Microversion>>,
}

/// How long to wait for any one answer; image transfers are not bounded.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("cloud-client/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl Client {
    /// Authenticates and returns a client holding the new token.
    pub async fn connect(auth: AuthOptions) -> Result<Client> {
        let http = http_client();
        let token = authenticate(&http, &auth).await?;
        Ok(Self::assemble(http, auth, token))
    }

    /// A client reusing `token` (from a cache); it is renewed with `auth`
    /// if the server rejects it.
    pub fn with_token(auth: AuthOptions, token: Token) -> Client {
        Self::assemble(http_client(), auth, token)
    }

    fn assemble(http: reqwest::Client, auth: AuthOptions, token: Token) -> Client {
        Client {
            inner: Arc::new(Inner {
                http,
                auth,
                token: RwLock::new(token),
                compute_version: OnceCell::new(),
            }),
        }
    }

    /// The current token (possibly renewed since the client was made).
    pub async fn token(&self) -> Token {
        self.inner.token.read().await.clone()
    }

    /// The authentication options.
    pub fn auth(&self) -> &AuthOptions {
        &self.inner.auth
    }

    /// The versioned base URL of `service` from the catalog (identity: the
    /// configured auth URL).
    pub async fn endpoint(&self, service: Service) -> Result<String> {
        if service == Service::Identity {
            return Ok(self.inner.auth.v3_url());
        }
        let t = self.inner.token.read().await;
        let url = t.endpoint(
            service.catalog_type(),
            &self.inner.auth.interface,
            self.inner.auth.region.as_deref(),
        )?;
        Ok(service.versioned(&url))
    }

    /// The compute microversion in use, negotiated on first use from the
    /// compute version document.
    pub async fn compute_microversion(&self) -> Result<Option<Microversion>> {
        self.inner
            .compute_version
            .get_or_try_init(|| async {
                let base = self.endpoint(Service::Compute).await?;
                let resp = self
                    .send_plain(&Request::new(Method::GET, Service::Compute, base))
                    .await?;
                let url = resp.url().to_string();
                let doc: Value = resp
                    .json()
                    .await
                    .map_err(|source| Error::Transport { url, source })?;
                let v = &doc["version"];
                let parse = |k: &str| v[k].as_str().and_then(Microversion::parse);
                negotiate(
                    parse("min_version"),
                    parse("version"),
                    CLIENT_MIN,
                    CLIENT_MAX,
                )
            })
            .await
            .copied()
    }

    /// Sends `req` and returns the buffered answer; error statuses become
    /// [`Error::Api`].
    pub async fn send(&self, req: Request) -> Result<Response> {
        self.send_buffered(req).await
    }

    /// Sends `req` and returns the unread answer (to stream its body);
    /// error statuses become [`Error::Api`].
    pub async fn send_streaming(&self, req: Request) -> Result<reqwest::Response> {
        let microversion = if req.service == Service::Compute {
            self.compute_microversion().await?
        } else {
            None
        };
        let mut renewed = false;
        loop {
            let used = self.inner.token.read().await.secret.clone();
            let (url, resp, started) = self.dispatch(&req, &used, microversion).await?;
            let status = resp.status().as_u16();
            let request_id = header(&resp, "x-openstack-request-id");
            tracing::debug!(target: "cloud_client", "RESP {status} {} {} ({} ms)",
                req.method, url, started.elapsed().as_millis());
            if let Some(id) = &request_id {
                tracing::debug!(target: "cloud_client", "     request id {id}");
            }
            if status == 401 && !renewed {
                renewed = true;
                self.renew(&used).await?;
                continue;
            }
            if status >= 400 {
                let body = resp.bytes().await.unwrap_or_default();
                tracing::debug!(target: "cloud_client", "     {}", String::from_utf8_lossy(&body));
                return Err(Error::Api(ApiError {
                    status,
                    message: fault_message(&body),
                    request_id,
                    method: req.method.to_string(),
                    url,
                }));
            }
            return Ok(resp);
        }
    }

    async fn send_buffered(&self, req: Request) -> Result<Response> {
        let resp = self.send_streaming(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let url = resp.url().to_string();
        let body = resp.bytes().await.map_err(|source| Error::Transport {
            url: url.clone(),
            source,
        })?;
        Ok(Response {
            status,
            headers,
            body,
            url,
        })
    }

    /// One attempt without microversion or token renewal (the version
    /// document needs neither).
    async fn send_plain(&self, req: &Request) -> Result<reqwest::Response> {
        let used = self.inner.token.read().await.secret.clone();
        let (url, resp, _) = self.dispatch(req, &used, None).await?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let request_id = header(&resp, "x-openstack-request-id");
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::Api(ApiError {
                status,
                message: fault_message(&body),
                request_id,
                method: req.method.to_string(),
                url,
            }));
        }
        Ok(resp)
    }

    /// Builds and sends one attempt of `req` with token `secret`.
    async fn dispatch(
        &self,
        req: &Request,
        secret: &str,
        microversion: Option<Microversion>,
    ) -> Result<(String, reqwest::Response, Instant)> {
        let url = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            req.path.clone()
        } else {
            let base = self.endpoint(req.service).await?;
            if req.path.is_empty() {
                base
            } else {
                format!("{base}/{}", req.path.trim_start_matches('/'))
            }
        };
        let mut b = self
            .inner
            .http
            .request(req.method.clone(), &url)
            .header("X-Auth-Token", secret)
            .header("Accept", "application/json");
        if !req.query.is_empty() {
            b = b.query(&req.query);
        }
        if let Some(v) = microversion {
            b = b
                .header("OpenStack-API-Version", format!("compute {v}"))
                .header("X-OpenStack-Nova-API-Version", v.to_string());
        }
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let query = if req.query.is_empty() {
            String::new()
        } else {
            let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("?{}", q.join("&"))
        };
        tracing::debug!(target: "cloud_client", "REQ  {} {url}{query}", req.method);
        b = match &req.body {
            Body::Empty => b.timeout(TIMEOUT),
            Body::Json(v) => {
                tracing::debug!(target: "cloud_client", "     {}", redact(v));
                b.timeout(TIMEOUT).json(v)
            }
            Body::JsonAs(v, ct) => {
                tracing::debug!(target: "cloud_client", "     {}", redact(v));
                b.timeout(TIMEOUT)
                    .header("Content-Type", *ct)
                    .body(v.to_string())
            }
            Body::File { path, progress } => {
                let (body, len) = crate::image::file_body(path, progress.clone()).await?;
                tracing::debug!(target: "cloud_client", "     <{len} bytes from {}>", path.display());
                b.header("Content-Type", "application/octet-stream")
                    .header("Content-Length", len)
                    .body(body)
            }
        };
        let started = Instant::now();
        let resp = b.send().await.map_err(|source| Error::Transport {
            url: url.clone(),
            source,
        })?;
        Ok((url, resp, started))
    }

    /// Gets a new token after `used` was rejected, unless another request
    /// already did.
    async fn renew(&self, used: &str) -> Result<()> {
        let mut t = self.inner.token.write().await;
        if t.secret != used {
            return Ok(());
        }
        tracing::debug!(target: "cloud_client", "token rejected: authenticating again");
        *t = authenticate(&self.inner.http, &self.inner.auth).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::redact;
    use serde_json::json;

    #[test]
    fn catalog_urls_are_versioned_like_the_sdk_does() {
        assert_eq!(
            Service::Compute.versioned("http://h/compute/v2.1/"),
            "http://h/compute/v2.1"
        );
        assert_eq!(
            Service::Image.versioned("http://h/image"),
            "http://h/image/v2"
        );
        assert_eq!(
            Service::Network.versioned("http://h:9696"),
            "http://h:9696/v2.0"
        );
        assert_eq!(
            Service::Network.versioned("http://h/network/v2.0"),
            "http://h/network/v2.0"
        );
    }

    #[test]
    fn logs_never_show_secrets() {
        let s = redact(&json!({"auth": {"password": {"user": {"name": "u", "password": "pw"}}}}));
        assert!(!s.contains("pw"), "{s}");
        assert!(s.contains("***"));
    }
}
