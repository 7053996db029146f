//! Keystone records: domains, projects, users, roles, assignments, tokens.

use crate::db::{Store, db_error, flag, is_foreign_key_violation, is_unique_violation};
use crate::row::RowExt;
use cloud_model::identity::{Domain, Project, Role, RoleAssignment, TokenInfo, User};
use cloud_model::{DomainId, Error, ProjectId, ResourceKind, RoleId, Timestamp, UserId};
use sqlx::any::AnyRow;

/// The fields of a new user. The password arrives already hashed: the
/// store never sees a clear-text secret.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Domain of the user.
    pub domain_id: DomainId,
    /// Unique within the domain.
    pub name: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Whether the user may authenticate.
    pub enabled: bool,
    /// Optional default project.
    pub default_project_id: Option<ProjectId>,
    /// Optional e-mail.
    pub email: Option<String>,
}

const USER_COLS: &str =
    "id, domain_id, name, enabled, default_project_id, email, created_at, password_hash";
const PROJECT_COLS: &str = "id, domain_id, name, description, enabled, created_at";

fn domain_from(r: &AnyRow) -> Result<Domain, Error> {
    Ok(Domain {
        id: DomainId::from_string(r.text("id")?),
        name: r.text("name")?,
        enabled: r.flag("enabled")?,
    })
}

fn project_from(r: &AnyRow) -> Result<Project, Error> {
    Ok(Project {
        id: ProjectId::from_string(r.text("id")?),
        domain_id: DomainId::from_string(r.text("domain_id")?),
        name: r.text("name")?,
        description: r.text("description")?,
        enabled: r.flag("enabled")?,
        created_at: r.ts("created_at")?,
    })
}

fn user_from(r: &AnyRow) -> Result<User, Error> {
    Ok(User {
        id: UserId::from_string(r.text("id")?),
        domain_id: DomainId::from_string(r.text("domain_id")?),
        name: r.text("name")?,
        enabled: r.flag("enabled")?,
        default_project_id: r
            .opt_text("default_project_id")?
            .map(ProjectId::from_string),
        email: r.opt_text("email")?,
        created_at: r.ts("created_at")?,
    })
}

fn role_from(r: &AnyRow) -> Result<Role, Error> {
    Ok(Role {
        id: RoleId::from_string(r.text("id")?),
        name: r.text("name")?,
    })
}

/// Replaces a user's password hash and revokes its tokens (a new
/// password ends every session opened with the old one), inside `tx`.
async fn set_password(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &UserId,
    password_hash: &str,
) -> Result<(), Error> {
    let r = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(password_hash)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 0 {
        return Err(Error::not_found(ResourceKind::User, id));
    }
    sqlx::query("UPDATE tokens SET revoked = 1 WHERE user_id = $1")
        .bind(id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

impl Store {
    /// Creates the default domain (`default` / `Default`) if missing.
    pub async fn domain_ensure_default(&self) -> Result<Domain, Error> {
        sqlx::query(
            "INSERT INTO domains (id, name, enabled, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(DomainId::default_domain().as_str())
        .bind("Default")
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.domain_get(&DomainId::default_domain()).await
    }

    /// A domain by id.
    pub async fn domain_get(&self, id: &DomainId) -> Result<Domain, Error> {
        sqlx::query("SELECT id, name, enabled FROM domains WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| domain_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Domain, id))
    }

    /// A domain by name (`Default`).
    pub async fn domain_find(&self, name: &str) -> Result<Domain, Error> {
        sqlx::query("SELECT id, name, enabled FROM domains WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| domain_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Domain, name))
    }

    /// Creates a project; a duplicate name in the domain is a conflict.
    pub async fn project_create(
        &self,
        domain_id: &DomainId,
        name: &str,
        description: &str,
        enabled: bool,
    ) -> Result<Project, Error> {
        let project = Project {
            id: ProjectId::new(),
            domain_id: domain_id.clone(),
            name: name.to_owned(),
            description: description.to_owned(),
            enabled,
            created_at: Timestamp::now(),
        };
        sqlx::query(
            "INSERT INTO projects (id, domain_id, name, description, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(project.id.as_str())
        .bind(domain_id.as_str())
        .bind(name)
        .bind(description)
        .bind(flag(enabled))
        .bind(project.created_at.micros())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!(
                    "Project '{name}' already exists in domain {domain_id}."
                ))
            } else if is_foreign_key_violation(&e) {
                Error::invalid(format!("Domain {domain_id} does not exist."))
            } else {
                db_error(e)
            }
        })?;
        Ok(project)
    }

    /// A project by id.
    pub async fn project_get(&self, id: &ProjectId) -> Result<Project, Error> {
        sqlx::query(&format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| project_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::Project, id))
    }

    /// A project by name within a domain.
    pub async fn project_find(&self, domain_id: &DomainId, name: &str) -> Result<Project, Error> {
        sqlx::query(&format!(
            "SELECT {PROJECT_COLS} FROM projects WHERE domain_id = $1 AND name = $2"
        ))
        .bind(domain_id.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|r| project_from(&r))
        .transpose()?
        .ok_or_else(|| Error::not_found(ResourceKind::Project, name))
    }

    /// All projects, by name.
    pub async fn project_list(&self) -> Result<Vec<Project>, Error> {
        sqlx::query(&format!(
            "SELECT {PROJECT_COLS} FROM projects ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(project_from)
        .collect()
    }

    /// Writes a project's name, description and enabled flag.
    pub async fn project_update(&self, p: &Project) -> Result<Project, Error> {
        let r = sqlx::query(
            "UPDATE projects SET name = $2, description = $3, enabled = $4 WHERE id = $1",
        )
        .bind(p.id.as_str())
        .bind(&p.name)
        .bind(&p.description)
        .bind(flag(p.enabled))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!(
                    "Project '{}' already exists in its domain.",
                    p.name
                ))
            } else {
                db_error(e)
            }
        })?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Project, &p.id));
        }
        self.project_get(&p.id).await
    }

    /// Creates a user; a duplicate name in the domain is a conflict.
    pub async fn user_create(&self, new: &NewUser) -> Result<User, Error> {
        let user = User {
            id: UserId::new(),
            domain_id: new.domain_id.clone(),
            name: new.name.clone(),
            enabled: new.enabled,
            default_project_id: new.default_project_id.clone(),
            email: new.email.clone(),
            created_at: Timestamp::now(),
        };
        sqlx::query(
            "INSERT INTO users (id, domain_id, name, password_hash, enabled, default_project_id, \
             email, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.id.as_str())
        .bind(user.domain_id.as_str())
        .bind(&user.name)
        .bind(&new.password_hash)
        .bind(flag(user.enabled))
        .bind(
            user.default_project_id
                .as_ref()
                .map(|p| p.as_str().to_owned()),
        )
        .bind(user.email.clone())
        .bind(user.created_at.micros())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!(
                    "User '{}' already exists in domain {}.",
                    new.name, new.domain_id
                ))
            } else if is_foreign_key_violation(&e) {
                Error::invalid("The domain or default project does not exist.")
            } else {
                db_error(e)
            }
        })?;
        Ok(user)
    }

    async fn user_query(&self, sql: &str, binds: &[&str]) -> Result<Option<(User, String)>, Error> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        match q.fetch_optional(&self.pool).await.map_err(db_error)? {
            Some(r) => Ok(Some((user_from(&r)?, r.text("password_hash")?))),
            None => Ok(None),
        }
    }

    /// A user by id.
    pub async fn user_get(&self, id: &UserId) -> Result<User, Error> {
        self.user_with_hash(id)
            .await?
            .map(|(u, _)| u)
            .ok_or_else(|| Error::not_found(ResourceKind::User, id))
    }

    /// A user and its password hash, by id, for password verification.
    pub async fn user_with_hash(&self, id: &UserId) -> Result<Option<(User, String)>, Error> {
        self.user_query(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            &[id.as_str()],
        )
        .await
    }

    /// A user and its password hash, by name within a domain.
    pub async fn user_find_with_hash(
        &self,
        domain_id: &DomainId,
        name: &str,
    ) -> Result<Option<(User, String)>, Error> {
        self.user_query(
            &format!("SELECT {USER_COLS} FROM users WHERE domain_id = $1 AND name = $2"),
            &[domain_id.as_str(), name],
        )
        .await
    }

    /// All users, by name.
    pub async fn user_list(&self) -> Result<Vec<User>, Error> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(user_from)
            .collect()
    }

    /// Writes a user's name, e-mail, enabled flag and default project and,
    /// with `password_hash`, its password (revoking its tokens), in one
    /// transaction: a refused update (a taken name, a missing default
    /// project) changes none of them.
    pub async fn user_update(&self, u: &User, password_hash: Option<&str>) -> Result<User, Error> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE users SET name = $2, email = $3, enabled = $4, default_project_id = $5 \
             WHERE id = $1",
        )
        .bind(u.id.as_str())
        .bind(&u.name)
        .bind(u.email.clone())
        .bind(flag(u.enabled))
        .bind(u.default_project_id.as_ref().map(|p| p.as_str().to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(format!("User '{}' already exists in its domain.", u.name))
            } else if is_foreign_key_violation(&e) {
                Error::invalid("The default project does not exist.")
            } else {
                db_error(e)
            }
        })?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::User, &u.id));
        }
        if let Some(hash) = password_hash {
            set_password(&mut tx, &u.id, hash).await?;
        }
        tx.commit().await.map_err(db_error)?;
        self.user_get(&u.id).await
    }

    /// Replaces a user's password hash and revokes its tokens.
    pub async fn user_set_password(&self, id: &UserId, password_hash: &str) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        set_password(&mut tx, id, password_hash).await?;
        tx.commit().await.map_err(db_error)
    }

    /// Deletes a user, its assignments, tokens and keypairs.
    pub async fn user_delete(&self, id: &UserId) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::User, id));
        }
        Ok(())
    }

    /// Creates the role if missing and returns it (idempotent; used by the
    /// bootstrap).
    pub async fn role_ensure(&self, name: &str) -> Result<Role, Error> {
        sqlx::query(
            "INSERT INTO roles (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(RoleId::new().as_str())
        .bind(name)
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.role_find(name).await
    }

    /// Creates a role; a duplicate name is a conflict.
    pub async fn role_create(&self, name: &str) -> Result<Role, Error> {
        let role = Role {
            id: RoleId::new(),
            name: name.to_owned(),
        };
        sqlx::query("INSERT INTO roles (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(role.id.as_str())
            .bind(name)
            .bind(Timestamp::now().micros())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict(format!("Role '{name}' already exists."))
                } else {
                    db_error(e)
                }
            })?;
        Ok(role)
    }

    /// A role by id.
    pub async fn role_get(&self, id: &RoleId) -> Result<Role, Error> {
        sqlx::query("SELECT id, name FROM roles WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| role_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Role, id))
    }

    /// A role by name.
    pub async fn role_find(&self, name: &str) -> Result<Role, Error> {
        sqlx::query("SELECT id, name FROM roles WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|r| role_from(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found(ResourceKind::Role, name))
    }

    /// All roles, by name.
    pub async fn role_list(&self) -> Result<Vec<Role>, Error> {
        sqlx::query("SELECT id, name FROM roles ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(role_from)
            .collect()
    }

    /// Deletes a role and every assignment of it.
    pub async fn role_delete(&self, id: &RoleId) -> Result<(), Error> {
        let r = sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Role, id));
        }
        Ok(())
    }

    /// Grants `role` to `user` on `project` (idempotent).
    pub async fn role_assign(
        &self,
        project: &ProjectId,
        user: &UserId,
        role: &RoleId,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO role_assignments (project_id, user_id, role_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(project.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                Error::not_found(ResourceKind::Resource, "project, user or role")
            } else {
                db_error(e)
            }
        })?;
        Ok(())
    }

    /// Revokes a grant; a missing grant is not found.
    pub async fn role_unassign(
        &self,
        project: &ProjectId,
        user: &UserId,
        role: &RoleId,
    ) -> Result<(), Error> {
        let r = sqlx::query(
            "DELETE FROM role_assignments WHERE project_id = $1 AND user_id = $2 AND role_id = $3",
        )
        .bind(project.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(ResourceKind::Role, role));
        }
        Ok(())
    }

    /// Roles `user` holds on `project`.
    pub async fn roles_of(&self, user: &UserId, project: &ProjectId) -> Result<Vec<Role>, Error> {
        sqlx::query(
            "SELECT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id \
             WHERE a.user_id = $1 AND a.project_id = $2 ORDER BY r.name",
        )
        .bind(user.as_str())
        .bind(project.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(role_from)
        .collect()
    }

    /// Role assignments, optionally filtered by user and/or project.
    pub async fn role_assignment_list(
        &self,
        user: Option<&UserId>,
        project: Option<&ProjectId>,
    ) -> Result<Vec<RoleAssignment>, Error> {
        sqlx::query(
            "SELECT a.user_id, a.project_id, r.id, r.name FROM role_assignments a \
             JOIN roles r ON r.id = a.role_id \
             WHERE ($1 IS NULL OR a.user_id = $1) AND ($2 IS NULL OR a.project_id = $2) \
             ORDER BY a.project_id, a.user_id, r.name",
        )
        .bind(user.map(|u| u.as_str().to_owned()))
        .bind(project.map(|p| p.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok(RoleAssignment {
                user_id: UserId::from_string(r.text("user_id")?),
                project_id: ProjectId::from_string(r.text("project_id")?),
                role: role_from(r)?,
            })
        })
        .collect()
    }

    /// Records a token by the hash of its secret.
    pub async fn token_insert(
        &self,
        hash: &str,
        user: &UserId,
        project: Option<&ProjectId>,
        audit_id: &str,
        issued_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO tokens (hash, user_id, project_id, audit_id, issued_at, expires_at, \
             revoked) VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(hash)
        .bind(user.as_str())
        .bind(project.map(|p| p.as_str().to_owned()))
        .bind(audit_id)
        .bind(issued_at.micros())
        .bind(expires_at.micros())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// What a token stands for, if it exists, is not revoked or expired at
    /// `now`, and its user, project and domains are still enabled.
    pub async fn token_lookup(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<TokenInfo>, Error> {
        let row = sqlx::query(
            "SELECT t.audit_id, t.issued_at, t.expires_at, t.project_id AS t_project, \
                    u.id, u.domain_id, u.name, u.enabled, u.default_project_id, u.email, \
                    u.created_at, ud.name AS ud_name, ud.enabled AS ud_enabled, \
                    p.domain_id AS p_domain_id, p.name AS p_name, p.description AS p_description, \
                    p.enabled AS p_enabled, p.created_at AS p_created_at, \
                    pd.name AS pd_name, pd.enabled AS pd_enabled \
             FROM tokens t \
             JOIN users u ON u.id = t.user_id \
             JOIN domains ud ON ud.id = u.domain_id \
             LEFT JOIN projects p ON p.id = t.project_id \
             LEFT JOIN domains pd ON pd.id = p.domain_id \
             WHERE t.hash = $1 AND t.revoked = 0 AND t.expires_at > $2",
        )
        .bind(hash)
        .bind(now.micros())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(r) = row else { return Ok(None) };
        let user = user_from(&r)?;
        let user_domain = Domain {
            id: user.domain_id.clone(),
            name: r.text("ud_name")?,
            enabled: r.flag("ud_enabled")?,
        };
        if !user.enabled || !user_domain.enabled {
            return Ok(None);
        }
        let (project, project_domain) = match r.opt_text("t_project")? {
            Some(pid) => {
                let p = Project {
                    id: ProjectId::from_string(pid),
                    domain_id: DomainId::from_string(r.text("p_domain_id")?),
                    name: r.text("p_name")?,
                    description: r.text("p_description")?,
                    enabled: r.flag("p_enabled")?,
                    created_at: r.ts("p_created_at")?,
                };
                let d = Domain {
                    id: p.domain_id.clone(),
                    name: r.text("pd_name")?,
                    enabled: r.flag("pd_enabled")?,
                };
                if !p.enabled || !d.enabled {
                    return Ok(None);
                }
                (Some(p), Some(d))
            }
            None => (None, None),
        };
        let roles = match &project {
            Some(p) => self.roles_of(&user.id, &p.id).await?,
            None => Vec::new(),
        };
        Ok(Some(TokenInfo {
            user,
            user_domain,
            project,
            project_domain,
            roles,
            audit_id: r.text("audit_id")?,
            issued_at: r.ts("issued_at")?,
            expires_at: r.ts("expires_at")?,
        }))
    }

    /// Records a token issued from the live token `parent_hash` (Keystone's
    /// `token` method): the parent's user and expiry, so re-issuing a token
    /// never extends its life, and a link to the parent, so revoking the
    /// parent revokes it ([`Store::token_revoke`]). Returns false, and
    /// records nothing, if the parent is not live at `issued_at`.
    ///
    /// On PostgreSQL the parent row is share-locked: a concurrent
    /// revocation either comes first (and this finds the parent revoked)
    /// or waits for this insert and then revokes the child it can now see.
    /// SQLite runs one writer at a time, which gives the same.
    pub async fn token_insert_child(
        &self,
        hash: &str,
        parent_hash: &str,
        project: Option<&ProjectId>,
        audit_id: &str,
        issued_at: Timestamp,
    ) -> Result<bool, Error> {
        let lock = match self.backend() {
            crate::db::Backend::Postgres => " FOR SHARE",
            crate::db::Backend::Sqlite => "",
        };
        let r = sqlx::query(&format!(
            "INSERT INTO tokens (hash, user_id, project_id, audit_id, issued_at, expires_at, \
             revoked, parent_hash) \
             SELECT $1, p.user_id, $2, $3, $4, p.expires_at, 0, p.hash FROM tokens p \
             WHERE p.hash = $5 AND p.revoked = 0 AND p.expires_at > $4{lock}"
        ))
        .bind(hash)
        .bind(project.map(|p| p.as_str().to_owned()))
        .bind(audit_id)
        .bind(issued_at.micros())
        .bind(parent_hash)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes a token and every token issued from it, directly or through
    /// others (Keystone revokes the chain). Returns false if the token
    /// itself was not live.
    ///
    /// Two statements in one transaction, in this order, so that a child
    /// being issued at the same moment is either refused or revoked (see
    /// [`Store::token_insert_child`]): the second statement reads after
    /// the first has waited for any insert holding the parent's lock.
    pub async fn token_revoke(&self, hash: &str) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE tokens SET revoked = 1 WHERE hash = $1 AND revoked = 0")
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "WITH RECURSIVE chain(hash) AS ( \
                 SELECT hash FROM tokens WHERE parent_hash = $1 \
                 UNION SELECT t.hash FROM tokens t JOIN chain c ON t.parent_hash = c.hash) \
             UPDATE tokens SET revoked = 1 \
             WHERE revoked = 0 AND hash IN (SELECT hash FROM chain)",
        )
        .bind(hash)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(r.rows_affected() == 1)
    }

    /// How many expired tokens wait for [`Store::token_purge_expired`].
    pub async fn token_count_expired(&self, now: Timestamp) -> Result<u64, Error> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM tokens WHERE expires_at < $1")
            .bind(now.micros())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(u64::try_from(r.int("n")?).unwrap_or(0))
    }

    /// Deletes tokens that expired before `now`, in one statement (the API
    /// runs it every few minutes; the `expires_at` index keeps it cheap).
    pub async fn token_purge_expired(&self, now: Timestamp) -> Result<u64, Error> {
        let r = sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
            .bind(now.micros())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(r.rows_affected())
    }
}
