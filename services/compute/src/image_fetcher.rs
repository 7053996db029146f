//! Image bytes for the driver's image cache, downloaded from our image
//! API over HTTP, and snapshots uploaded to it.
//!
//! A compute agent holds no database credentials, so it fetches images the
//! way any client does: it logs in to the identity API with its service
//! account (Keystone v3 password auth, user and project by name and
//! domain), finds the `image` endpoint in the token's catalog, and streams
//! `GET {image}/v2/images/{id}/file` into the cache. The token is kept
//! and reused; when the API answers 401 (expired or revoked) the fetcher
//! logs in again once and retries. Checksums are verified by the driver
//! against the image record, not here.
//!
//! Snapshots go the other way with the same account and token:
//! [`HttpImageFetcher::upload`] sends a captured disk file with
//! `PUT {image}/v2/images/{id}/file`, the image API's normal upload path,
//! which moves the image `queued` -> `saving` -> `active` and records its
//! size and checksums (and enforces the owner's image storage quota).

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use cloud_driver::ImageFetcher;
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Environment variable that overrides `[image_api] password`, so the
/// secret need not be written in the configuration file.
pub const PASSWORD_ENV: &str = "CLOUD_COMPUTE_PASSWORD";

/// The `[image_api]` settings: where to log in and as whom.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageApiConfig {
    /// Identity endpoint, e.g. `http://controller:8080/identity/v3` (with
    /// or without the trailing `/v3`).
    pub auth_url: String,
    /// The agent's service user.
    pub username: String,
    /// Its password ([`PASSWORD_ENV`] overrides it).
    #[serde(default)]
    pub password: Option<String>,
    /// Domain of the user.
    #[serde(default = "default_domain")]
    pub user_domain_name: String,
    /// Project the token is scoped to (the user needs a role there that
    /// may read every image, i.e. admin).
    pub project_name: String,
    /// Domain of the project.
    #[serde(default = "default_domain")]
    pub project_domain_name: String,
}

fn default_domain() -> String {
    "Default".to_owned()
}

/// The password never appears in logs or debug output.
impl fmt::Debug for ImageApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageApiConfig")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("user_domain_name", &self.user_domain_name)
            .field("project_name", &self.project_name)
            .field("project_domain_name", &self.project_domain_name)
            .finish()
    }
}

impl ImageApiConfig {
    /// The password to use: the environment first, then the file.
    pub fn password(&self) -> Option<String> {
        std::env::var(PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| self.password.clone())
    }

    /// `POST` target of a password login.
    fn tokens_url(&self) -> String {
        let base = self.auth_url.trim_end_matches('/');
        if base.ends_with("/v3") {
            format!("{base}/auth/tokens")
        } else {
            format!("{base}/v3/auth/tokens")
        }
    }
}

/// A token and the image endpoint from its catalog.
#[derive(Clone)]
struct Session {
    token: String,
    image_url: String,
}

/// Downloads images from the image API with service credentials.
pub struct HttpImageFetcher {
    config: ImageApiConfig,
    password: String,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl HttpImageFetcher {
    /// A fetcher logging in with `config` (on first use, not now: the API
    /// may start after the agent). Fails only when no password is set.
    pub fn new(config: ImageApiConfig) -> anyhow::Result<Self> {
        let password = config.password().ok_or_else(|| {
            anyhow!("[image_api] has no password; set it in the file or in {PASSWORD_ENV}")
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Between two reads of the body, not for the whole download.
            .read_timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(HttpImageFetcher {
            config,
            password,
            http,
            session: tokio::sync::Mutex::new(None),
        })
    }

    /// The token in use, if logged in (for diagnostics and tests).
    pub async fn current_token(&self) -> Option<String> {
        self.session.lock().await.as_ref().map(|s| s.token.clone())
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> anyhow::Result<Session> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = self.login().await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Drops `token` after a 401, unless another download already replaced it.
    async fn forget(&self, token: &str) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| s.token == token) {
            *slot = None;
        }
    }

    /// Sends the request `build` makes for a session, logging in first if
    /// needed, and once more when the API answers 401 (the token expired or
    /// was revoked). `build` may run twice, so it must make a fresh request
    /// (and body) each time. Any answer but that 401 is returned as is.
    async fn send<F, Fut>(&self, build: F) -> anyhow::Result<reqwest::Response>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = anyhow::Result<reqwest::RequestBuilder>>,
    {
        let mut logged_in_again = false;
        loop {
            let session = self.session().await?;
            let (token, base) = (session.token.clone(), session.image_url.clone());
            let request = build(session).await?.header("X-Auth-Token", &token);
            let resp = request
                .send()
                .await
                .with_context(|| format!("cannot reach the image API at {base}"))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !logged_in_again {
                tracing::info!("image API token refused; logging in again");
                self.forget(&token).await;
                logged_in_again = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Uploads the disk file `file` (in `disk_format`) as the data of the
    /// queued image `image_id` (a snapshot the API created). The image's
    /// `disk_format` is corrected first when the driver captured another
    /// format than the record says (the record starts with its source
    /// image's). An image already `active` was uploaded by an earlier
    /// delivery of the same request: nothing to do.
    pub async fn upload(
        &self,
        image_id: &str,
        file: &Path,
        disk_format: &str,
    ) -> anyhow::Result<()> {
        let record = self.image_record(image_id).await?;
        match record["status"].as_str().unwrap_or_default() {
            "active" => return Ok(()),
            "queued" => {}
            other => bail!("image {image_id} is {other}, not queued: it cannot take the snapshot"),
        }
        if record["disk_format"].as_str() != Some(disk_format) {
            self.set_disk_format(image_id, disk_format).await?;
        }
        let resp = self
            .send(|s| async move {
                let url = format!("{}/v2/images/{image_id}/file", s.image_url);
                let f = tokio::fs::File::open(file)
                    .await
                    .with_context(|| format!("cannot open {}", file.display()))?;
                let len = f
                    .metadata()
                    .await
                    .with_context(|| format!("cannot read {}", file.display()))?
                    .len();
                let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                    f,
                    256 * 1024,
                ));
                Ok(self
                    .http
                    .put(url)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", len)
                    .body(body))
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!(
                "the upload of image {image_id} answered {status}: {}",
                error_message(&text)
            );
        }
        Ok(())
    }

    /// The image record `image_id` as the image API shows it.
    async fn image_record(&self, image_id: &str) -> anyhow::Result<Value> {
        let resp = self
            .send(|s| async move {
                Ok(self
                    .http
                    .get(format!("{}/v2/images/{image_id}", s.image_url)))
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!(
                "image {image_id} cannot be read: {status}: {}",
                error_message(&text)
            );
        }
        resp.json()
            .await
            .with_context(|| format!("the image API sent an unreadable image {image_id}"))
    }

    /// Replaces a queued image's `disk_format` (a JSON patch).
    async fn set_disk_format(&self, image_id: &str, disk_format: &str) -> anyhow::Result<()> {
        let patch = json!([{"op": "replace", "path": "/disk_format", "value": disk_format}]);
        let resp = self
            .send(|s| {
                let patch = patch.clone();
                async move {
                    Ok(self
                        .http
                        .patch(format!("{}/v2/images/{image_id}", s.image_url))
                        .header(
                            "Content-Type",
                            "application/openstack-images-v2.1-json-patch",
                        )
                        .body(patch.to_string()))
                }
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!(
                "cannot set image {image_id}'s disk_format to {disk_format}: {status}: {}",
                error_message(&text)
            );
        }
        Ok(())
    }

    async fn login(&self) -> anyhow::Result<Session> {
        let c = &self.config;
        let url = c.tokens_url();
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username,
                "domain": {"name": c.user_domain_name},
                "password": self.password,
            }}},
            "scope": {"project": {
                "name": c.project_name,
                "domain": {"name": c.project_domain_name},
            }},
        }});
        let who = format!(
            "user {} (domain {}) in project {} (domain {})",
            c.username, c.user_domain_name, c.project_name, c.project_domain_name
        );
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach the identity API at {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!(
                "login as {who} at {url} failed: {status}: {}",
                error_message(&text)
            );
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the identity API at {url} sent no X-Subject-Token"))?;
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("the identity API at {url} sent an unreadable token"))?;
        let image_url = image_endpoint(&body["token"]["catalog"])
            .ok_or_else(|| anyhow!("the token of {who} has no image endpoint in its catalog"))?;
        tracing::info!(%image_url, user = %c.username, "logged in to the image API");
        Ok(Session { token, image_url })
    }
}

/// The image service's URL from a Keystone catalog: the `internal`
/// endpoint if there is one (agents sit inside the cloud), else `public`.
fn image_endpoint(catalog: &Value) -> Option<String> {
    let service = catalog.as_array()?.iter().find(|s| s["type"] == "image")?;
    let endpoints = service["endpoints"].as_array()?;
    let pick = |iface: &str| {
        endpoints
            .iter()
            .find(|e| e["interface"] == iface)
            .and_then(|e| e["url"].as_str())
    };
    let url = pick("internal").or_else(|| pick("public"))?;
    // Glance endpoints are usually unversioned; tolerate a `/v2` suffix.
    let url = url.trim_end_matches('/');
    Some(url.strip_suffix("/v2").unwrap_or(url).to_owned())
}

/// The human message of an API error body (Keystone's `error.message`,
/// Nova/Glance-style `{"kind": {"message"}}`), or the text itself, cut short.
fn error_message(body: &str) -> String {
    fn find(v: &Value) -> Option<&str> {
        match v {
            Value::Object(map) => map
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| map.values().find_map(find)),
            _ => None,
        }
    }
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(find) {
        Some(m) => m.to_owned(),
        None => body.chars().take(300).collect(),
    }
}

#[async_trait]
impl ImageFetcher for HttpImageFetcher {
    async fn fetch(
        &self,
        image_id: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> anyhow::Result<u64> {
        let mut resp = self
            .send(|s| async move {
                Ok(self
                    .http
                    .get(format!("{}/v2/images/{image_id}/file", s.image_url)))
            })
            .await?;
        let url = resp.url().to_string();
        let status = resp.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            bail!("the image has no data (it was never uploaded)");
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!("GET {url} answered {status}: {}", error_message(&text));
        }
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("the download of {url} broke off after {written} bytes"))?
        {
            dest.write_all(&chunk)
                .await
                .context("cannot write the image to the cache")?;
            written += chunk.len() as u64;
        }
        dest.flush()
            .await
            .context("cannot write the image to the cache")?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(auth_url: &str) -> ImageApiConfig {
        ImageApiConfig {
            auth_url: auth_url.to_owned(),
            username: "compute".to_owned(),
            password: Some("secret".to_owned()),
            user_domain_name: "Default".to_owned(),
            project_name: "service".to_owned(),
            project_domain_name: "Default".to_owned(),
        }
    }

    #[test]
    fn login_url_with_or_without_the_version() {
        for (given, want) in [
            ("http://h/identity/v3", "http://h/identity/v3/auth/tokens"),
            ("http://h/identity/v3/", "http://h/identity/v3/auth/tokens"),
            ("http://h:5000", "http://h:5000/v3/auth/tokens"),
            ("http://h/identity/", "http://h/identity/v3/auth/tokens"),
        ] {
            assert_eq!(config(given).tokens_url(), want);
        }
    }

    #[test]
    fn picks_the_image_endpoint_internal_first() {
        let catalog = json!([
            {"type": "compute", "endpoints": [{"interface": "public", "url": "http://c"}]},
            {"type": "image", "endpoints": [
                {"interface": "public", "url": "http://pub/image/"},
                {"interface": "internal", "url": "http://int/image/v2"}]}
        ]);
        assert_eq!(
            image_endpoint(&catalog).as_deref(),
            Some("http://int/image")
        );
        let public_only =
            json!([{"type": "image", "endpoints": [{"interface": "public", "url": "http://p/"}]}]);
        assert_eq!(image_endpoint(&public_only).as_deref(), Some("http://p"));
        assert_eq!(image_endpoint(&json!([])), None);
    }

    #[test]
    fn error_messages_are_dug_out_of_api_bodies() {
        assert_eq!(
            error_message(r#"{"error": {"code": 401, "message": "bad password"}}"#),
            "bad password"
        );
        assert_eq!(
            error_message(r#"{"itemNotFound": {"code": 404, "message": "No image x"}}"#),
            "No image x"
        );
        assert_eq!(error_message("plain"), "plain");
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let shown = format!("{:?}", config("http://h"));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }
}
