//! `GET /v3/domains`: domains are read-only here (only `default` exists
//! unless an operator adds more in the store).

use crate::auth::{Action, Ctx};
use crate::error::ApiResult;
use crate::extract::{BaseUrl, QueryPairs};
use crate::identity::views;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use cloud_model::DomainId;
use serde_json::{Value, json};

/// Lists domains (filter: `name`).
#[utoipa::path(get, path = "/v3/domains", tag = "identity",
    responses((status = 200, description = "Domains")))]
pub async fn domain_list(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::DomainRead)?;
    let d = match q.get("name") {
        Some(name) => state.store().domain_find(name).await.ok(),
        None => Some(
            state
                .store()
                .domain_get(&DomainId::default_domain())
                .await?,
        ),
    };
    let domains: Vec<Value> = d.iter().map(|d| views::domain(d, &base)).collect();
    Ok(Json(json!({"domains": domains})))
}

/// Shows a domain.
#[utoipa::path(get, path = "/v3/domains/{domain_id}", tag = "identity",
    params(("domain_id" = String, Path, description = "Domain id")),
    responses((status = 200, description = "The domain"), (status = 404, description = "No such domain")))]
pub async fn domain_show(
    State(state): State<AppState>,
    ctx: Ctx,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(Action::DomainRead)?;
    let d = state.store().domain_get(&DomainId::from_string(id)).await?;
    Ok(Json(json!({"domain": views::domain(&d, &base)})))
}
