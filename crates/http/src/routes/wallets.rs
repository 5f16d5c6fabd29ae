//! Wallets, their balances, spend summaries and policies.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use waiaas_domain::{AgentId, PolicyRules, WalletId};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{
    BalanceDto, CreateWallet, ErrorBody, Items, PolicyBody, PolicyDto, SummaryDto, WalletDto,
    WalletFilter,
};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

/// Opens a wallet of a supported asset for one of the owner's agents, with a zero balance.
#[utoipa::path(post, path = "/v1/agents/{id}/wallets", tag = "wallets",
    params(("id" = Uuid, Path, description = "The agent that will hold the wallet")),
    request_body = CreateWallet,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The wallet", body = WalletDto),
        (status = 400, description = "Malformed body, invalid asset code or name", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot open wallets", body = ErrorBody),
        (status = 404, description = "The agent is missing, deleted or another tenant's", body = ErrorBody),
        (status = 422, description = "`unknown_asset`: a well-formed asset code the platform does not support", body = ErrorBody),
    ))]
pub(crate) async fn create_wallet(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateWallet>,
) -> Result<(StatusCode, axum::Json<WalletDto>), ApiError> {
    caller.owner("open wallets")?;
    let wallet = state
        .services
        .create_wallet(
            &caller.principal,
            AgentId::from_uuid(id),
            &body.asset,
            body.name.as_deref(),
            &caller.audit,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(wallet.into())))
}

/// The owner's wallets (optionally one agent's); an agent sees its own.
#[utoipa::path(get, path = "/v1/wallets", tag = "wallets",
    params(WalletFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The wallets", body = Items<WalletDto>),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "An agent asked for another agent's wallets", body = ErrorBody),
    ))]
pub(crate) async fn list_wallets(
    State(state): State<SharedState>,
    caller: Caller,
    Query(filter): Query<WalletFilter>,
) -> Result<axum::Json<Items<WalletDto>>, ApiError> {
    let wallets = state
        .services
        .list_wallets(&caller.principal, filter.agent_id.map(AgentId::from_uuid))
        .await?;
    Ok(axum::Json(Items::of(wallets)))
}

/// One wallet, to its owner or the agent holding it.
#[utoipa::path(get, path = "/v1/wallets/{id}", tag = "wallets",
    params(("id" = Uuid, Path, description = "The wallet")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The wallet", body = WalletDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_wallet(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<WalletDto>, ApiError> {
    let wallet = state
        .services
        .get_wallet(&caller.principal, WalletId::from_uuid(id))
        .await?;
    Ok(axum::Json(wallet.into()))
}

/// A wallet's balance with the version it was read at (for display: spending is always
/// decided on the database row).
#[utoipa::path(get, path = "/v1/wallets/{id}/balance", tag = "wallets",
    params(("id" = Uuid, Path, description = "The wallet")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The balance", body = BalanceDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_balance(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<BalanceDto>, ApiError> {
    let balance = state
        .services
        .balance(&caller.principal, WalletId::from_uuid(id))
        .await?;
    Ok(axum::Json(balance.into()))
}

/// A wallet's outgoing spend today and this month (UTC), and what is left of every budget
/// its spends are decided under: the wallet's, its agent's and its owner's.
#[utoipa::path(get, path = "/v1/wallets/{id}/summary", tag = "wallets",
    params(("id" = Uuid, Path, description = "The wallet")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The summary", body = SummaryDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_summary(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<SummaryDto>, ApiError> {
    let wallet = WalletId::from_uuid(id);
    let summary = state.services.summary(&caller.principal, wallet).await?;
    let budget = state
        .services
        .budget_left(&caller.principal, wallet)
        .await?;
    Ok(axum::Json(SummaryDto::new(summary, budget)))
}

/// A wallet's policy (version 0 and no rules when none was set).
#[utoipa::path(get, path = "/v1/wallets/{id}/policy", tag = "wallets",
    params(("id" = Uuid, Path, description = "The wallet")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = PolicyDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_policy(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PolicyDto>, ApiError> {
    let policy = state
        .services
        .get_policy(&caller.principal, WalletId::from_uuid(id))
        .await?;
    Ok(axum::Json(policy.into()))
}

/// Replaces a wallet's policy; only its owner may.
#[utoipa::path(put, path = "/v1/wallets/{id}/policy", tag = "wallets",
    params(("id" = Uuid, Path, description = "The wallet")),
    request_body = PolicyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new policy with its version", body = PolicyDto),
        (status = 400, description = "Malformed body, negative amount, bad counterparty or list too long", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "The agent holding the wallet cannot set its policy", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn put_policy(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<PolicyBody>,
) -> Result<axum::Json<PolicyDto>, ApiError> {
    let rules = PolicyRules::try_from(body)?;
    let policy = state
        .services
        .set_policy(
            &caller.principal,
            WalletId::from_uuid(id),
            rules,
            &caller.audit,
        )
        .await?;
    Ok(axum::Json(policy.into()))
}
