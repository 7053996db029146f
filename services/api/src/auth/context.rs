//! The request context: who is calling, in which project, with which roles.

use crate::auth::policy::{Action, allows};
use crate::auth::token;
use crate::error::{ApiError, FaultKind};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cloud_model::identity::TokenInfo;
use cloud_model::{ProjectId, UserId};
use cloud_store::Scope;
use std::sync::{Arc, Mutex};

/// The authenticated caller, built from `X-Auth-Token`.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// What the token stands for.
    pub token: Arc<TokenInfo>,
    /// The actions this request was allowed (shared by the clones of one
    /// request's context), so that an idempotent replay can be bound to
    /// the same policy decision.
    allowed: Arc<Mutex<Vec<Action>>>,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<Ctx>() {
            return Ok(ctx.clone());
        }
        let secret = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    FaultKind::Unauthenticated,
                    "The request you have made requires authentication: send a token in \
                     X-Auth-Token.",
                )
            })?;
        let info = token::validate(state.store(), secret).await?;
        let ctx = Ctx {
            token: Arc::new(info),
            allowed: Arc::default(),
        };
        parts.extensions.insert(ctx.clone());
        Ok(ctx)
    }
}

impl Ctx {
    /// The caller's user id.
    pub fn user_id(&self) -> &UserId {
        &self.token.user.id
    }

    /// The project the token is scoped to; unscoped tokens cannot use
    /// project resources.
    pub fn project_id(&self) -> Result<&ProjectId, ApiError> {
        self.token.project.as_ref().map(|p| &p.id).ok_or_else(|| {
            ApiError::new(
                FaultKind::Unauthenticated,
                "The token is not scoped to a project: authenticate with a project scope.",
            )
        })
    }

    /// Whether the caller holds `admin`.
    pub fn is_admin(&self) -> bool {
        self.token
            .has_role(cloud_model::identity::role_names::ADMIN)
    }

    /// Checks the policy for `action`.
    pub fn authorize(&self, action: Action) -> Result<(), ApiError> {
        let roles: Vec<&str> = self.token.roles.iter().map(|r| r.name.as_str()).collect();
        if allows(action.rule(), &roles) {
            if let Ok(mut allowed) = self.allowed.lock() {
                allowed.push(action);
            }
            Ok(())
        } else {
            Err(ApiError::new(
                FaultKind::Forbidden,
                format!(
                    "Policy does not allow {action:?}: it needs the '{}' role (you have: {}).",
                    action.rule().role_name(),
                    if roles.is_empty() {
                        "none".to_owned()
                    } else {
                        roles.join(", ")
                    }
                ),
            ))
        }
    }

    /// The actions [`Ctx::authorize`] allowed so far in this request.
    pub fn allowed_actions(&self) -> Vec<Action> {
        self.allowed.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The scope of the caller's own project.
    pub fn own_scope(&self) -> Result<Scope, ApiError> {
        Ok(Scope::Project(self.project_id()?.clone()))
    }

    /// The scope for reading one resource: admins see every project's,
    /// others only their own (another project's private resource is then a
    /// 404, never a 403).
    pub fn read_scope(&self) -> Result<Scope, ApiError> {
        if self.is_admin() {
            Ok(Scope::All)
        } else {
            self.own_scope()
        }
    }
}
