//! `POST/GET/HEAD/DELETE /v3/auth/tokens`: password authentication and
//! token validation and revocation.
//!
//! A token issued from a token (method `token`) is a child of it: it keeps
//! its parent's expiry, as Keystone does, so a token cannot be renewed
//! forever by re-issuing it, and revoking the parent revokes the child
//! (and its own children). Issuing tokens also purges expired ones now and
//! then, so the token table does not grow without bound.

use crate::auth::{Ctx, token};
use crate::error::{ApiError, ApiResult, FaultKind};
use crate::extract::{BaseUrl, JsonBody, QueryPairs};
use crate::identity::{catalog, views};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_model::identity::{Project, TokenInfo, User};
use cloud_model::{DomainId, Error, ProjectId, Timestamp, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// The body of `POST /v3/auth/tokens`.
#[derive(Debug, Deserialize)]
pub struct AuthRequest {
    auth: Auth,
}

#[derive(Debug, Deserialize)]
struct Auth {
    identity: Identity,
    #[serde(default)]
    scope: Option<ScopeRequest>,
}

#[derive(Debug, Deserialize)]
struct Identity {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordMethod>,
    #[serde(default)]
    token: Option<TokenMethod>,
}

#[derive(Debug, Deserialize)]
struct PasswordMethod {
    user: UserRef,
}

#[derive(Debug, Deserialize)]
struct TokenMethod {
    id: String,
}

#[derive(Debug, Deserialize)]
struct UserRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<DomainRef>,
    password: String,
}

#[derive(Debug, Deserialize)]
struct DomainRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeRequest {
    Structured(ScopeObject),
    /// `"scope": "unscoped"` (any word means no scope).
    Word(#[allow(dead_code)] String),
}

#[derive(Debug, Deserialize)]
struct ScopeObject {
    #[serde(default)]
    project: Option<ProjectRef>,
    #[serde(default)]
    domain: Option<DomainRef>,
    #[serde(default)]
    system: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ProjectRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<DomainRef>,
}

fn auth_failed() -> ApiError {
    ApiError::new(
        FaultKind::Unauthenticated,
        "The request you have made requires authentication: invalid username or password.",
    )
}

async fn resolve_domain(state: &AppState, d: &DomainRef) -> Result<DomainId, ApiError> {
    match (&d.id, &d.name) {
        (Some(id), _) => Ok(DomainId::from_string(id.clone())),
        (None, Some(name)) => match state.store().domain_find(name).await {
            Ok(d) => Ok(d.id),
            Err(Error::NotFound { .. }) => Err(auth_failed()),
            Err(e) => Err(e.into()),
        },
        (None, None) => Err(ApiError::bad_request(
            "Invalid input for field 'domain': give its 'id' or 'name'.",
        )),
    }
}

/// The domain a login names, or `None` if there is no such domain.
async fn find_domain(state: &AppState, d: &DomainRef) -> Result<Option<DomainId>, ApiError> {
    match resolve_domain(state, d).await {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.0.kind == FaultKind::Unauthenticated => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks the password and returns the user.
///
/// Whether the user (or its domain) exists or not, exactly one password
/// hash is computed, so the time a failed login takes does not tell an
/// attacker which names exist. The hash runs on the bounded pool of
/// `auth::password`: when it stays busy, this is a 503 (with
/// `Retry-After`, added by [`token_issue`]).
async fn authenticate_password(state: &AppState, u: &UserRef) -> Result<User, ApiError> {
    let found = match (&u.id, &u.name) {
        (Some(id), _) => {
            state
                .store()
                .user_with_hash(&UserId::from_string(id.clone()))
                .await?
        }
        (None, Some(name)) => {
            let domain = match &u.domain {
                Some(d) => find_domain(state, d).await?,
                None => {
                    return Err(ApiError::bad_request(
                        "Invalid input for field 'auth.identity.password.user': a user given by \
                         name needs its 'domain'.",
                    ));
                }
            };
            match domain {
                Some(domain) => state.store().user_find_with_hash(&domain, name).await?,
                None => None,
            }
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Invalid input for field 'auth.identity.password.user': give its 'id' or 'name'.",
            ));
        }
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = crate::auth::password::verify_password(hash, u.password.clone())
        .await
        .map_err(|_| {
            ApiError::new(
                FaultKind::Unavailable,
                "Too many logins are in progress; retry in a few seconds.",
            )
        })?;
    match user {
        Some(user) if ok && user.enabled => Ok(user),
        _ => Err(auth_failed()),
    }
}

async fn resolve_project(state: &AppState, p: &ProjectRef) -> Result<Project, ApiError> {
    let found = match (&p.id, &p.name) {
        (Some(id), _) => {
            state
                .store()
                .project_get(&ProjectId::from_string(id.clone()))
                .await
        }
        (None, Some(name)) => {
            let domain = match &p.domain {
                Some(d) => resolve_domain(state, d).await?,
                None => {
                    return Err(ApiError::bad_request(
                        "Invalid input for field 'auth.scope.project': a project given by name \
                         needs its 'domain'.",
                    ));
                }
            };
            state.store().project_find(&domain, name).await
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Invalid input for field 'auth.scope.project': give its 'id' or 'name'.",
            ));
        }
    };
    match found {
        Ok(p) => Ok(p),
        Err(Error::NotFound { .. }) => Err(ApiError::new(
            FaultKind::Unauthenticated,
            "The request you have made requires authentication: the project to scope to was not \
             found or you have no role on it.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Authenticates with a password (or an existing token) and issues a
/// token, returned in `X-Subject-Token`.
#[utoipa::path(post, path = "/v3/auth/tokens", tag = "identity",
    responses((status = 201, description = "Token issued; the secret is in X-Subject-Token"),
              (status = 401, description = "Wrong credentials")))]
pub async fn token_issue(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
    JsonBody(req): JsonBody<AuthRequest>,
) -> ApiResult<Response> {
    match issue_token(&state, base, q, req).await {
        // Overload (every password worker busy) or a database that is
        // down: the client should come back, and when.
        Err(e) if e.0.kind == FaultKind::Unavailable => {
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::auth::password::RETRY_AFTER_SECS),
            );
            Ok(resp)
        }
        other => other,
    }
}

async fn issue_token(
    state: &AppState,
    base: String,
    q: QueryPairs,
    req: AuthRequest,
) -> ApiResult<Response> {
    let auth = req.auth;
    let mut parent: Option<&str> = None;
    let user = if auth.identity.methods.iter().any(|m| m == "password") {
        let pw = auth.identity.password.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field 'auth.identity.password': required by method 'password'.",
            )
        })?;
        authenticate_password(state, &pw.user).await?
    } else if auth.identity.methods.iter().any(|m| m == "token") {
        let t = auth.identity.token.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field 'auth.identity.token': required by method 'token'.",
            )
        })?;
        let user = token::validate(state.store(), &t.id).await?.user;
        parent = Some(&t.id);
        user
    } else {
        return Err(ApiError::new(
            FaultKind::Unauthenticated,
            format!(
                "Unsupported authentication methods {:?}: use 'password' or 'token'.",
                auth.identity.methods
            ),
        ));
    };

    let project = match &auth.scope {
        Some(ScopeRequest::Structured(s)) => match (&s.project, &s.domain, &s.system) {
            (Some(p), _, _) => Some(resolve_project(state, p).await?),
            (None, Some(_), _) | (None, None, Some(_)) => {
                return Err(ApiError::new(
                    FaultKind::Unauthenticated,
                    "Only project scope is supported: scope the token to a project.",
                ));
            }
            (None, None, None) => None,
        },
        Some(ScopeRequest::Word(_)) => None,
        None => match &user.default_project_id {
            Some(p) => state.store().project_get(p).await.ok(),
            None => None,
        },
    };
    if let Some(p) = &project {
        let roles = state.store().roles_of(&user.id, &p.id).await?;
        if roles.is_empty() || !p.enabled {
            return Err(ApiError::new(
                FaultKind::Unauthenticated,
                format!(
                    "The request you have made requires authentication: user {} has no role on \
                     project {}.",
                    user.id, p.id
                ),
            ));
        }
    }
    let project_id = project.as_ref().map(|p| &p.id);
    let (secret, info) = match parent {
        None => {
            token::issue(
                state.store(),
                &user.id,
                project_id,
                state.config().token_ttl_seconds,
            )
            .await?
        }
        Some(parent) => issue_child(state, parent, project_id).await?,
    };
    purge_expired_tokens_now_and_then(state);
    let cat = (!q.bool("nocatalog")?.unwrap_or(false))
        .then(|| catalog::catalog(&base, &state.config().region));
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({"token": views::token(&info, cat)})),
    )
        .into_response();
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(&secret).map_err(Error::internal)?,
    );
    Ok(resp)
}

/// Issues a token from the live token `parent`: its user and expiry, and
/// revoked with it (see the module documentation).
async fn issue_child(
    state: &AppState,
    parent: &str,
    project: Option<&ProjectId>,
) -> Result<(String, TokenInfo), ApiError> {
    let (secret, audit_id) = token::new_secret();
    let hash = token::token_hash(&secret);
    let now = Timestamp::now();
    let recorded = state
        .store()
        .token_insert_child(&hash, &token::token_hash(parent), project, &audit_id, now)
        .await?;
    if !recorded {
        // Revoked or expired since it was validated a moment ago.
        return Err(
            Error::unauthenticated("The request you have made requires authentication.").into(),
        );
    }
    let info = state
        .store()
        .token_lookup(&hash, now)
        .await?
        .ok_or_else(|| Error::internal("token vanished right after it was issued"))?;
    Ok((secret, info))
}

/// Starts a purge of expired tokens in the background unless this API
/// started one less than `[api] token_purge_interval_secs` ago. Called on
/// every issued token: the table grows only when tokens are issued, so it
/// is purged whenever it grows, at most once per interval (a few minutes
/// by default: no statement per login; several replicas purging the same
/// rows is harmless).
fn purge_expired_tokens_now_and_then(state: &AppState) {
    let now = Timestamp::now().micros();
    let last = state.last_token_purge();
    let previous = last.load(Ordering::Relaxed);
    let interval =
        i64::try_from(state.config().token_purge_interval_secs).unwrap_or(i64::MAX / 2_000_000);
    if now - previous < interval.saturating_mul(1_000_000)
        || last
            .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let store = state.store().clone();
    tokio::spawn(async move {
        match store.token_purge_expired(Timestamp::now()).await {
            Ok(n) => tracing::debug!(purged = n, "purged expired tokens"),
            Err(e) => tracing::warn!(error = %e, "purging expired tokens failed"),
        }
    });
}

fn subject_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("Missing header X-Subject-Token."))
}

/// Validates a token (`X-Subject-Token`) and shows what it stands for.
/// Any authenticated caller may validate its own token; admins any token.
#[utoipa::path(get, path = "/v3/auth/tokens", tag = "identity",
    responses((status = 200, description = "The token is valid"),
              (status = 404, description = "No such valid token")))]
pub async fn token_validate(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    q: QueryPairs,
) -> ApiResult<Response> {
    let subject = subject_token(&headers)?;
    let info = check_subject(&state, &ctx, subject).await?;
    let cat = (!q.bool("nocatalog")?.unwrap_or(false))
        .then(|| catalog::catalog(&base, &state.config().region));
    let mut resp = Json(json!({"token": views::token(&info, cat)})).into_response();
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_str(subject).map_err(Error::internal)?,
    );
    Ok(resp)
}

async fn check_subject(state: &AppState, ctx: &Ctx, subject: &str) -> Result<TokenInfo, ApiError> {
    let info = token::validate(state.store(), subject)
        .await
        .map_err(|_| ApiError::from(Error::not_found(cloud_model::ResourceKind::Token, "given")))?;
    if info.user.id != *ctx.user_id() && !ctx.is_admin() {
        return Err(ApiError::new(
            FaultKind::Forbidden,
            "You may only validate your own tokens.",
        ));
    }
    Ok(info)
}

/// Checks a token without a body.
#[utoipa::path(head, path = "/v3/auth/tokens", tag = "identity",
    responses((status = 200, description = "The token is valid"),
              (status = 404, description = "No such valid token")))]
pub async fn token_check(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let subject = subject_token(&headers)?;
    check_subject(&state, &ctx, subject).await?;
    Ok(StatusCode::OK)
}

/// Revokes a token.
#[utoipa::path(delete, path = "/v3/auth/tokens", tag = "identity",
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such valid token")))]
pub async fn token_revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let subject = subject_token(&headers)?;
    check_subject(&state, &ctx, subject).await?;
    state
        .store()
        .token_revoke(&token::token_hash(subject))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Projects the caller has a role on (used by clients to pick a scope).
#[utoipa::path(get, path = "/v3/auth/projects", tag = "identity",
    responses((status = 200, description = "Projects available to the caller")))]
pub async fn auth_projects(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Json<Value>> {
    let assignments = state
        .store()
        .role_assignment_list(Some(ctx.user_id()), None)
        .await?;
    let mut ids: Vec<ProjectId> = assignments.into_iter().map(|a| a.project_id).collect();
    ids.dedup();
    let mut projects = Vec::new();
    for id in ids {
        if let Ok(p) = state.store().project_get(&id).await {
            projects.push(views::project(&p, &base));
        }
    }
    Ok(Json(json!({"projects": projects})))
}
