//! JSON views of identity records, in Keystone's shapes.

use cloud_model::identity::{Domain, Project, Role, TokenInfo, User};
use serde_json::{Value, json};

/// A domain.
pub fn domain(d: &Domain, base: &str) -> Value {
    json!({
        "id": d.id.as_str(),
        "name": d.name,
        "enabled": d.enabled,
        "description": "",
        "links": {"self": format!("{base}/identity/v3/domains/{}", d.id)},
    })
}

/// A project.
pub fn project(p: &Project, base: &str) -> Value {
    json!({
        "id": p.id.as_str(),
        "name": p.name,
        "domain_id": p.domain_id.as_str(),
        "description": p.description,
        "enabled": p.enabled,
        "is_domain": false,
        "parent_id": p.domain_id.as_str(),
        "tags": [],
        "links": {"self": format!("{base}/identity/v3/projects/{}", p.id)},
    })
}

/// A user (never with its password).
pub fn user(u: &User, base: &str) -> Value {
    json!({
        "id": u.id.as_str(),
        "name": u.name,
        "domain_id": u.domain_id.as_str(),
        "enabled": u.enabled,
        "default_project_id": u.default_project_id.as_ref().map(|p| p.as_str()),
        "email": u.email,
        "password_expires_at": null,
        "options": {},
        "links": {"self": format!("{base}/identity/v3/users/{}", u.id)},
    })
}

/// A role.
pub fn role(r: &Role, base: &str) -> Value {
    json!({
        "id": r.id.as_str(),
        "name": r.name,
        "domain_id": null,
        "description": null,
        "options": {},
        "links": {"self": format!("{base}/identity/v3/roles/{}", r.id)},
    })
}

/// The `token` object of a token response.
pub fn token(info: &TokenInfo, catalog: Option<Value>) -> Value {
    let mut t = json!({
        "methods": ["password"],
        "user": {
            "id": info.user.id.as_str(),
            "name": info.user.name,
            "domain": {"id": info.user_domain.id.as_str(), "name": info.user_domain.name},
            "password_expires_at": null,
        },
        "audit_ids": [info.audit_id],
        "issued_at": info.issued_at.iso_micros(),
        "expires_at": info.expires_at.iso_micros(),
        "is_domain": false,
    });
    if let (Some(p), Some(d)) = (&info.project, &info.project_domain) {
        t["project"] = json!({
            "id": p.id.as_str(),
            "name": p.name,
            "domain": {"id": d.id.as_str(), "name": d.name},
        });
        t["roles"] = Value::Array(
            info.roles
                .iter()
                .map(|r| json!({"id": r.id.as_str(), "name": r.name}))
                .collect(),
        );
        if let Some(c) = catalog {
            t["catalog"] = c;
        }
    }
    t
}
