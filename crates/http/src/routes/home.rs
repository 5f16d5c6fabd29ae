//! The owner's home: one snapshot of every agent, wallet, budget and pending approval.

use axum::extract::State;
use chrono::Utc;

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{ErrorBody, HomeAgentDto, HomeDto, HomeWalletDto, LevelDto, TransactionDto};
use crate::error::ApiError;

/// The calling owner's home: every agent with its wallets (balance, held, available), today's
/// and this month's spend against the budget at each level, and what waits for approval.
/// Cached in Redis under `widgets:home:owner:<id>`, served only while it is current.
#[utoipa::path(get, path = "/v1/home", tag = "owners",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The home snapshot", body = HomeDto),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents have no home", body = ErrorBody),
    ))]
pub(crate) async fn home(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<axum::Json<HomeDto>, ApiError> {
    caller.owner("read the home")?;
    let home = state.services.home(&caller.principal).await?;
    let agents = super::agents::with_presence(
        &state,
        home.agents.iter().map(|a| a.agent.clone()).collect(),
    )
    .await;
    let agents = home
        .agents
        .into_iter()
        .zip(agents)
        .map(|(a, dto)| HomeAgentDto {
            agent: dto,
            budgets: a.budgets.into_iter().map(LevelDto::from).collect(),
            wallets: a.wallets.into_iter().map(HomeWalletDto::from).collect(),
        })
        .collect();
    Ok(axum::Json(HomeDto {
        day: home.day,
        agents,
        budgets: home.budgets.into_iter().map(LevelDto::from).collect(),
        pending: home.pending.into_iter().map(TransactionDto::from).collect(),
        pending_total: home.pending_total,
        generated_at: Utc::now(),
    }))
}
