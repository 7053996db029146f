//! Identity (Keystone v3 subset), mounted at `/identity`.

pub mod catalog;
pub mod domains;
pub mod projects;
pub mod roles;
pub mod tokens;
pub mod users;
pub mod versions;
pub mod views;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of the identity service, relative to its prefix.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(versions::identity_versions))
        .routes(routes!(versions::identity_v3))
        .routes(routes!(
            tokens::token_issue,
            tokens::token_validate,
            tokens::token_check,
            tokens::token_revoke
        ))
        .routes(routes!(tokens::auth_projects))
        .routes(routes!(domains::domain_list))
        .routes(routes!(domains::domain_show))
        .routes(routes!(projects::project_list, projects::project_create))
        .routes(routes!(
            projects::project_show,
            projects::project_update,
            projects::project_delete
        ))
        .routes(routes!(users::user_list, users::user_create))
        .routes(routes!(
            users::user_show,
            users::user_update,
            users::user_delete
        ))
        .routes(routes!(roles::role_list, roles::role_create))
        .routes(routes!(roles::role_show, roles::role_delete))
        .routes(routes!(roles::project_user_roles))
        .routes(routes!(
            roles::role_grant,
            roles::role_grant_check,
            roles::role_revoke
        ))
        .routes(routes!(roles::role_assignment_list))
}
