//! Getting a token from Keystone, and the small helpers the session shares
//! with it (reading headers, redacting secrets from logs).

use crate::auth::{AuthOptions, Credentials, Token};
use crate::error::{ApiError, Error, Result, fault_message};
use crate::session::TIMEOUT;
use serde_json::Value;
use std::time::Instant;

pub(crate) fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A copy of `v` safe to log: passwords and private keys hidden.
pub(crate) fn redact(v: &Value) -> String {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if matches!(k.as_str(), "password" | "adminPass" | "private_key") {
                        *x = Value::String("***".into());
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = v.clone();
    walk(&mut v);
    v.to_string()
}

/// Asks Keystone for a token. With an existing token and no project to
/// scope to, the token is validated and used as is.
pub(crate) async fn authenticate(http: &reqwest::Client, auth: &AuthOptions) -> Result<Token> {
    let base = auth.v3_url();
    let url = format!("{base}/auth/tokens");
    let started = Instant::now();
    let resp = match (&auth.credentials, &auth.project) {
        (Credentials::Token(t), None) => {
            tracing::debug!(target: "cloud_client", "REQ  GET {url} (validate the given token)");
            http.get(&url)
                .header("X-Auth-Token", t)
                .header("X-Subject-Token", t)
                .timeout(TIMEOUT)
                .send()
                .await
        }
        _ => {
            tracing::debug!(target: "cloud_client", "REQ  POST {url}");
            tracing::debug!(target: "cloud_client", "     {}", redact(&auth.request_body()));
            http.post(&url)
                .json(&auth.request_body())
                .timeout(TIMEOUT)
                .send()
                .await
        }
    }
    .map_err(|source| Error::Transport {
        url: url.clone(),
        source,
    })?;
    let status = resp.status().as_u16();
    let request_id = header(&resp, "x-openstack-request-id");
    tracing::debug!(target: "cloud_client", "RESP {status} ({} ms), request id {}",
        started.elapsed().as_millis(), request_id.as_deref().unwrap_or("-"));
    let secret = header(&resp, "x-subject-token");
    let body = resp.bytes().await.map_err(|source| Error::Transport {
        url: url.clone(),
        source,
    })?;
    if status >= 400 {
        return Err(Error::Api(ApiError {
            status,
            message: fault_message(&body),
            request_id,
            method: "POST".into(),
            url,
        }));
    }
    let secret = match (&auth.credentials, secret) {
        (Credentials::Token(t), None) => t.clone(),
        (_, Some(s)) => s,
        (_, None) => {
            return Err(Error::Protocol {
                url,
                detail: "no X-Subject-Token header in the answer".into(),
            });
        }
    };
    let json: Value = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
        url: url.clone(),
        detail: format!("token body is not JSON: {e}"),
    })?;
    Token::from_body(secret, &json, &url)
}
