//! Keystone v3 authentication: what to authenticate with, and the token
//! (with its catalog) that comes back.
//!
//! A [`Token`] is plain data so that callers can cache it between runs
//! (the CLI does); the client renews it by itself when the server rejects
//! it, as long as it holds a password to renew it with.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A user, project or domain named either by id or by name (names of
/// users and projects are unique only within a domain).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Named {
    /// By id.
    Id(String),
    /// By name within a domain.
    Name {
        /// The name.
        name: String,
        /// Its domain.
        domain: Domain,
    },
}

/// A domain by id or by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Domain {
    /// By id (`default`).
    Id(String),
    /// By name (`Default`).
    Name(String),
}

impl Domain {
    fn to_json(&self) -> Value {
        match self {
            Domain::Id(id) => json!({ "id": id }),
            Domain::Name(name) => json!({ "name": name }),
        }
    }
}

impl Named {
    fn to_json(&self) -> Value {
        match self {
            Named::Id(id) => json!({ "id": id }),
            Named::Name { name, domain } => json!({ "name": name, "domain": domain.to_json() }),
        }
    }

    /// A stable text form, used to key token caches.
    pub fn key(&self) -> String {
        match self {
            Named::Id(id) => format!("id:{id}"),
            Named::Name { name, domain } => match domain {
                Domain::Id(d) => format!("name:{name}@id:{d}"),
                Domain::Name(d) => format!("name:{name}@name:{d}"),
            },
        }
    }
}

/// What proves who we are.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A user and password (Keystone `password` method).
    Password {
        /// The user.
        user: Named,
        /// The password.
        password: String,
    },
    /// An existing token (`OS_TOKEN`), used as is or rescoped.
    Token(String),
}

/// Where and how to authenticate.
#[derive(Clone, Debug)]
pub struct AuthOptions {
    /// Keystone's URL, versioned (`.../identity/v3`) or not.
    pub auth_url: String,
    /// The credentials.
    pub credentials: Credentials,
    /// The project to scope the token to.
    pub project: Option<Named>,
    /// Region to pick endpoints in (any when `None`).
    pub region: Option<String>,
    /// Endpoint interface (`public` unless told otherwise).
    pub interface: String,
}

impl AuthOptions {
    /// Password authentication scoped to a project, public endpoints.
    pub fn password(auth_url: &str, user: Named, password: &str, project: Option<Named>) -> Self {
        AuthOptions {
            auth_url: auth_url.to_owned(),
            credentials: Credentials::Password {
                user,
                password: password.to_owned(),
            },
            project,
            region: None,
            interface: "public".to_owned(),
        }
    }

    /// The v3 base URL (`.../v3`), whether or not the configured URL was
    /// versioned.
    pub fn v3_url(&self) -> String {
        let base = self.auth_url.trim_end_matches('/');
        if base.ends_with("/v3") {
            base.to_owned()
        } else {
            format!("{base}/v3")
        }
    }

    /// Identifies the principal (URL, user, project) without secrets: the
    /// key under which a token may be cached and found again.
    pub fn cache_key(&self) -> String {
        let who = match &self.credentials {
            Credentials::Password { user, .. } => user.key(),
            Credentials::Token(_) => "token".to_owned(),
        };
        let project = self.project.as_ref().map(Named::key).unwrap_or_default();
        format!("{}|{who}|{project}", self.v3_url())
    }

    /// The body of `POST /v3/auth/tokens`.
    pub(crate) fn request_body(&self) -> Value {
        let identity = match &self.credentials {
            Credentials::Password { user, password } => {
                let mut u = user.to_json();
                u["password"] = json!(password);
                json!({"methods": ["password"], "password": {"user": u}})
            }
            Credentials::Token(t) => json!({"methods": ["token"], "token": {"id": t}}),
        };
        let mut auth = json!({ "identity": identity });
        if let Some(p) = &self.project {
            auth["scope"] = json!({ "project": p.to_json() });
        }
        json!({ "auth": auth })
    }
}

/// One endpoint of the service catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Service type (`compute`, `image`, `network`, `identity`).
    pub service_type: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// Region id.
    pub region: String,
    /// Base URL.
    pub url: String,
}

/// An issued token and what it stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The secret sent as `X-Auth-Token`.
    pub secret: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The scoped project's id.
    pub project_id: Option<String>,
    /// The scoped project's name.
    pub project_name: Option<String>,
    /// Role names on the project.
    pub roles: Vec<String>,
    /// The service catalog.
    pub catalog: Vec<Endpoint>,
}

impl Token {
    /// Whether the token is still good for at least `margin_secs`.
    pub fn valid_for(&self, margin_secs: i64) -> bool {
        self.expires_at > Utc::now() + chrono::Duration::seconds(margin_secs)
    }

    /// Whether the user holds `role` on the project.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Builds a token from Keystone's `{"token": {...}}` body and the
    /// `X-Subject-Token` secret.
    pub(crate) fn from_body(secret: String, body: &Value, url: &str) -> Result<Token> {
        let t = &body["token"];
        let bad = |what: &str| Error::Protocol {
            url: url.to_owned(),
            detail: format!("token body has no {what}"),
        };
        let expires = t["expires_at"].as_str().ok_or_else(|| bad("expires_at"))?;
        let expires_at = DateTime::parse_from_rfc3339(expires)
            .map_err(|e| Error::Protocol {
                url: url.to_owned(),
                detail: format!("expires_at '{expires}' is not RFC 3339: {e}"),
            })?
            .with_timezone(&Utc);
        let mut catalog = Vec::new();
        for svc in t["catalog"].as_array().into_iter().flatten() {
            let ty = svc["type"].as_str().unwrap_or_default();
            for ep in svc["endpoints"].as_array().into_iter().flatten() {
                catalog.push(Endpoint {
                    service_type: ty.to_owned(),
                    interface: ep["interface"].as_str().unwrap_or("public").to_owned(),
                    region: ep["region_id"]
                        .as_str()
                        .or_else(|| ep["region"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    url: ep["url"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(Token {
            secret,
            expires_at,
            user_id: t["user"]["id"]
                .as_str()
                .ok_or_else(|| bad("user.id"))?
                .to_owned(),
            user_name: t["user"]["name"].as_str().unwrap_or_default().to_owned(),
            project_id: t["project"]["id"].as_str().map(str::to_owned),
            project_name: t["project"]["name"].as_str().map(str::to_owned),
            roles: t["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect(),
            catalog,
        })
    }

    /// The URL of `service_type` on `interface`, in `region` if given.
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: &str,
        region: Option<&str>,
    ) -> Result<String> {
        self.catalog
            .iter()
            .find(|e| {
                e.service_type == service_type
                    && e.interface == interface
                    && region.is_none_or(|r| e.region == r)
            })
            .map(|e| e.url.trim_end_matches('/').to_owned())
            .ok_or_else(|| Error::NoEndpoint {
                service: service_type.to_owned(),
                region: region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_name_users_and_projects_either_way() {
        let o = AuthOptions::password(
            "http://h/identity",
            Named::Name {
                name: "demo".into(),
                domain: Domain::Name("Default".into()),
            },
            "pw",
            Some(Named::Id("p1".into())),
        );
        assert_eq!(o.v3_url(), "http://h/identity/v3");
        let b = o.request_body();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"],
            json!({"name": "demo", "domain": {"name": "Default"}, "password": "pw"})
        );
        assert_eq!(b["auth"]["scope"]["project"], json!({"id": "p1"}));
        assert_eq!(
            o.cache_key(),
            "http://h/identity/v3|name:demo@name:Default|id:p1"
        );
    }

    #[test]
    fn token_parses_keystone_body() {
        let body = json!({"token": {
            "expires_at": "2030-01-01T00:00:00.000000Z",
            "user": {"id": "u", "name": "demo"},
            "project": {"id": "p", "name": "demo"},
            "roles": [{"id": "r", "name": "member"}],
            "catalog": [{"type": "compute", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://h/compute/v2.1/"}]}]
        }});
        let t = Token::from_body("s".into(), &body, "u").unwrap();
        assert!(t.valid_for(60));
        assert!(t.has_role("member"));
        assert_eq!(
            t.endpoint("compute", "public", None).unwrap(),
            "http://h/compute/v2.1"
        );
        assert!(t.endpoint("compute", "public", Some("Other")).is_err());
        assert!(t.endpoint("image", "public", None).is_err());
    }
}
