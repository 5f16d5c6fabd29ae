//! Budgets above the wallets: an agent's and the calling owner's, per asset.

use axum::extract::State;
use uuid::Uuid;
use waiaas_domain::{AccessError, AgentId};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{BudgetsDto, ErrorBody};
use crate::error::ApiError;
use crate::extract::{Json, Path};

/// A budget's own input errors are `invalid_budget`, not a query's.
fn budget_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Invalid(why) => ApiError::bad_request("invalid_budget", why),
        other => other.into(),
    }
}

/// An agent's budget per asset, over all its wallets (its owner or the agent itself).
#[utoipa::path(get, path = "/v1/agents/{id}/budget", tag = "budgets",
    params(("id" = Uuid, Path, description = "The agent")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget (`{}` when none is set)", body = BudgetsDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "Missing, deleted or another tenant's agent", body = ErrorBody),
    ))]
pub(crate) async fn get_agent_budget(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<BudgetsDto>, ApiError> {
    let b = state
        .services
        .agent_budget(&caller.principal, AgentId::from_uuid(id))
        .await?;
    Ok(axum::Json(b.into()))
}

/// Replaces an agent's budget (owner): `{"USD": {"max_per_transaction"?, "daily_limit"?,
/// "monthly_limit"?}}`, over every wallet of the agent in that asset. An asset left out
/// loses its limits. Every spend of the agent is decided under it, with the wallet's policy
/// and the owner's budget, in one commit.
#[utoipa::path(put, path = "/v1/agents/{id}/budget", tag = "budgets",
    params(("id" = Uuid, Path, description = "The agent")),
    request_body = BudgetsDto,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget now", body = BudgetsDto),
        (status = 400, description = "Malformed body; `invalid_budget`: a malformed asset code, a negative limit, more than 100 assets", body = ErrorBody),
        (status = 422, description = "`unknown_asset`: an asset the platform does not support", body = ErrorBody),
        (status = 403, description = "Agents cannot set budgets", body = ErrorBody),
        (status = 404, description = "Missing, deleted or another tenant's agent", body = ErrorBody),
    ))]
pub(crate) async fn put_agent_budget(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<BudgetsDto>,
) -> Result<axum::Json<BudgetsDto>, ApiError> {
    let budgets = body.try_into()?;
    let b = state
        .services
        .set_agent_budget(
            &caller.principal,
            AgentId::from_uuid(id),
            budgets,
            &caller.audit,
        )
        .await
        .map_err(budget_error)?;
    Ok(axum::Json(b.into()))
}

/// The calling owner's budget per asset, over all its wallets.
#[utoipa::path(get, path = "/v1/owners/me/budget", tag = "budgets",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget (`{}` when none is set)", body = BudgetsDto),
        (status = 403, description = "Agents cannot read it", body = ErrorBody),
    ))]
pub(crate) async fn get_owner_budget(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<axum::Json<BudgetsDto>, ApiError> {
    let b = state.services.owner_budget(&caller.principal).await?;
    Ok(axum::Json(b.into()))
}

/// Replaces the calling owner's budget: the same shape as an agent's, over every wallet of
/// every agent of the owner.
#[utoipa::path(put, path = "/v1/owners/me/budget", tag = "budgets",
    request_body = BudgetsDto,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget now", body = BudgetsDto),
        (status = 400, description = "Malformed body; `invalid_budget`", body = ErrorBody),
        (status = 422, description = "`unknown_asset`", body = ErrorBody),
        (status = 403, description = "Agents cannot set budgets", body = ErrorBody),
    ))]
pub(crate) async fn put_owner_budget(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<BudgetsDto>,
) -> Result<axum::Json<BudgetsDto>, ApiError> {
    let budgets = body.try_into()?;
    let b = state
        .services
        .set_owner_budget(&caller.principal, budgets, &caller.audit)
        .await
        .map_err(budget_error)?;
    Ok(axum::Json(b.into()))
}
