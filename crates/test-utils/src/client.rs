//! A small HTTP client for tests: JSON in, status and JSON out.

use serde_json::Value;

/// A client bound to a base URL and, optionally, a token.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A response: status, headers and body (JSON when it parses, else a string).
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON (`Value::String` with the raw text when not JSON,
    /// `Value::Null` when empty).
    pub body: Value,
    /// Raw body bytes.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The user-visible error message in any of the four fault formats.
    pub fn error_message(&self) -> String {
        let b = &self.body;
        if let Some(m) = b["NeutronError"]["message"].as_str() {
            return m.to_owned();
        }
        if let Some(m) = b["error"]["message"].as_str() {
            return m.to_owned();
        }
        if let Some(m) = b["message"].as_str() {
            return m.to_owned();
        }
        if let Some(obj) = b.as_object() {
            for v in obj.values() {
                if let Some(m) = v["message"].as_str() {
                    return m.to_owned();
                }
            }
        }
        b.to_string()
    }
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:PORT`), without a token.
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// The same client sending `token` as `X-Auth-Token`.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::finish(req).await
    }

    /// Starts a request (for custom headers or bodies).
    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.header("X-Auth-Token", t);
        }
        req
    }

    /// Sends a prepared request and reads the reply.
    pub async fn finish(req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read").to_vec();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
            bytes,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(&body)).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send("PUT", path, Some(&body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }
}
