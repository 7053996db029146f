//! Keystone records: domains, projects, users, roles and tokens.

use crate::{DomainId, ProjectId, RoleId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// The three roles policy knows. Other role names may exist and be
/// assigned; they grant nothing.
pub mod role_names {
    /// Full control across projects.
    pub const ADMIN: &str = "admin";
    /// Create and change resources in the project.
    pub const MEMBER: &str = "member";
    /// Read resources in the project.
    pub const READER: &str = "reader";
}

/// A Keystone domain (namespace for projects and users).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// `default` for the default domain.
    pub id: DomainId,
    /// `Default` for the default domain.
    pub name: String,
    /// Disabled domains cannot authenticate.
    pub enabled: bool,
}

/// A project (tenant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Keystone-style id.
    pub id: ProjectId,
    /// Domain the project lives in.
    pub domain_id: DomainId,
    /// Unique within its domain.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Disabled projects cannot be scoped to.
    pub enabled: bool,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A user account. The password hash never leaves the store layer except
/// to be verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Keystone-style id.
    pub id: UserId,
    /// Domain the user lives in.
    pub domain_id: DomainId,
    /// Unique within its domain.
    pub name: String,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
    /// Project used when a request names none.
    pub default_project_id: Option<ProjectId>,
    /// Optional contact address.
    pub email: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Keystone-style id.
    pub id: RoleId,
    /// Globally unique name.
    pub name: String,
}

/// One grant of a role to a user on a project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignment {
    /// The grantee.
    pub user_id: UserId,
    /// The project the grant applies to.
    pub project_id: ProjectId,
    /// The role granted.
    pub role: Role,
}

/// What a valid token stands for: who, in which project, with which roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The authenticated user.
    pub user: User,
    /// Domain record of the user.
    pub user_domain: Domain,
    /// The scope, if the token is project-scoped.
    pub project: Option<Project>,
    /// Domain record of the project.
    pub project_domain: Option<Domain>,
    /// Roles the user holds on the project (empty if unscoped).
    pub roles: Vec<Role>,
    /// Audit id, shown to clients; never the secret.
    pub audit_id: String,
    /// When the token was issued.
    pub issued_at: Timestamp,
    /// When the token stops working.
    pub expires_at: Timestamp,
}

impl TokenInfo {
    /// Whether the token carries the named role.
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name == name)
    }
}
