//! placeholder
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
