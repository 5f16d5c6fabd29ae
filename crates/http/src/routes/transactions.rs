//! Moving money (deposits, transfers, payments), approvals, and reading transactions.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use waiaas_domain::services::{DepositRequest, SweepRequest, TransferRequest};
use waiaas_domain::{MandateId, Transaction, TransactionId, TransactionStatus, WalletId};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{
    BudgetDto, DepositBody, ErrorBody, SweepBody, TransactionDto, TransactionPageDto, TransferBody,
    TxListParams, TxQuery,
};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query, idempotency_key};

/// Credits one of the owner's wallets with money from outside. The `Idempotency-Key` header
/// is required: a repeat with the same body returns the first result (whatever changed
/// since), with another body a 409. A deleted agent's wallet is closed: 409 `wallet_closed`.
#[utoipa::path(post, path = "/v1/wallets/{id}/deposits", tag = "transactions",
    params(
        ("id" = Uuid, Path, description = "The credited wallet"),
        ("Idempotency-Key" = String, Header, description = "Required retry key: a repeat returns the first result"),
    ),
    request_body = DepositBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The completed deposit (or, for a repeated key, the first result)", body = TransactionDto),
        (status = 400, description = "Malformed body, zero/negative amount, bad memo or metadata, missing Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot deposit", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's wallet", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body; `wallet_closed`: the wallet's agent was deleted", body = ErrorBody),
        (status = 422, description = "`balance_overflow`", body = ErrorBody),
    ))]
pub(crate) async fn deposit(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<DepositBody>,
) -> Result<(StatusCode, axum::Json<TransactionDto>), ApiError> {
    let req = DepositRequest {
        wallet_id: WalletId::from_uuid(id),
        amount: body.amount,
        memo: body.memo,
        metadata: body.metadata,
        idempotency_key: idempotency_key(&headers)?,
    };
    let outcome = state
        .services
        .deposit(&caller.principal, req, &caller.audit)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(outcome.transaction.into())))
}

/// Moves money out of a wallet the calling agent holds, to another wallet (`to_wallet_id`)
/// or an external `destination`. The wallet's policy decides: 201 completed, 202 held for
/// the owner's approval, 422 `policy_denied` or `insufficient_funds` (the refused transaction
/// is recorded; its id is in the error). The `Idempotency-Key` header is required: a repeat
/// with the same body returns the same answer, with another body a 409.
#[utoipa::path(post, path = "/v1/wallets/{id}/transfers", tag = "transactions",
    params(
        ("id" = Uuid, Path, description = "The paying wallet"),
        ("Idempotency-Key" = String, Header, description = "Required retry key"),
    ),
    request_body = TransferBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Completed", body = TransactionDto),
        (status = 202, description = "Held for the owner's approval", body = TransactionDto),
        (status = 400, description = "Malformed body, bad amount or target, missing Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Owners cannot move money out of wallets", body = ErrorBody),
        (status = 404, description = "A wallet is missing or not visible to this agent", body = ErrorBody),
        (status = 409, description = "The key was used with another body", body = ErrorBody),
        (status = 422, description = "`policy_denied` (with `rule`, `budget`, `transaction_id`), `insufficient_funds`, `asset_mismatch`, `agent_not_active`, `balance_overflow`", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
pub(crate) async fn transfer(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<TransferBody>,
) -> Result<Response, ApiError> {
    let req = TransferRequest {
        from_wallet_id: WalletId::from_uuid(id),
        to_wallet_id: body.to_wallet_id.map(WalletId::from_uuid),
        destination: body.destination,
        amount: body.amount,
        memo: body.memo,
        metadata: body.metadata,
        idempotency_key: idempotency_key(&headers)?,
        mandate_id: body.mandate_id.map(MandateId::from_uuid),
    };
    let outcome = state
        .services
        .transfer(&caller.principal, req, &caller.audit)
        .await?;
    Ok(spend_response::<TransactionDto>(
        outcome.transaction,
        outcome.replayed,
    ))
}

/// Moves the whole balance of one of the owner's wallets to another of its wallets of the
/// same asset: how the money of a deleted agent's (closed) wallet is taken out. The
/// `Idempotency-Key` header is required. Audited as `wallet.sweep`.
#[utoipa::path(post, path = "/v1/wallets/{id}/sweep", tag = "transactions",
    params(
        ("id" = Uuid, Path, description = "The wallet emptied"),
        ("Idempotency-Key" = String, Header, description = "Required retry key: a repeat returns the first result"),
    ),
    request_body = SweepBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The completed sweep (kind `sweep`)", body = TransactionDto),
        (status = 400, description = "Malformed body, the same wallet twice, missing Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot sweep", body = ErrorBody),
        (status = 404, description = "A wallet is missing or another tenant's", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`; `wallet_closed`: the target wallet is closed", body = ErrorBody),
        (status = 422, description = "`nothing_to_sweep`, `asset_mismatch`, `balance_overflow`", body = ErrorBody),
    ))]
pub(crate) async fn sweep(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<SweepBody>,
) -> Result<(StatusCode, axum::Json<TransactionDto>), ApiError> {
    let req = SweepRequest {
        wallet_id: WalletId::from_uuid(id),
        to_wallet_id: WalletId::from_uuid(body.to_wallet_id),
        idempotency_key: idempotency_key(&headers)?,
    };
    let outcome = state
        .services
        .sweep(&caller.principal, req, &caller.audit)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(outcome.transaction.into())))
}

/// The answer to a transfer, by the status the policy engine and the ledger gave it. A
/// replay answers from the stored transaction, so it gets the same answer, with one
/// exception the stored row cannot undo: a transaction held for approval and decided since
/// (its status changed after it was created) is answered with the first answer's 202 and
/// the transaction as it stands now.
pub(crate) fn spend_response<D>(tx: Transaction, replayed: bool) -> Response
where
    D: From<Transaction> + serde::Serialize,
{
    let decided_since_hold = replayed && tx.decision.is_some();
    let budget = BudgetDto::from(tx.budget);
    match tx.status {
        // Rejected is only reachable from a hold: the first answer was a 202.
        _ if decided_since_hold => accepted::<D>(tx),
        TransactionStatus::PendingApproval | TransactionStatus::Rejected => accepted::<D>(tx),
        // A hold is answered 201 when placed; a replay finds it as it stands now.
        TransactionStatus::Completed
        | TransactionStatus::Held
        | TransactionStatus::Captured
        | TransactionStatus::Voided
        | TransactionStatus::Expired => {
            (StatusCode::CREATED, axum::Json(D::from(tx))).into_response()
        }
        TransactionStatus::Denied => {
            let rule = tx.rule.map(|r| r.as_str());
            let message = tx.reason.clone().unwrap_or_else(|| {
                format!(
                    "the wallet's policy denied the transfer (rule `{}`)",
                    rule.unwrap_or("unknown")
                )
            });
            ApiError::unprocessable("policy_denied", message)
                .with("level", tx.level.map(|l| l.as_str()))
                .with("rule", rule)
                .with("reason", tx.reason)
                .with("budget", budget)
                .with("transaction_id", tx.id)
                .into_response()
        }
        TransactionStatus::Failed => {
            let message = tx
                .reason
                .clone()
                .unwrap_or_else(|| "the wallet's balance is too low".to_owned());
            ApiError::unprocessable("insufficient_funds", message)
                .with("budget", budget)
                .with("transaction_id", tx.id)
                .into_response()
        }
    }
}

fn accepted<D: From<Transaction> + serde::Serialize>(tx: Transaction) -> Response {
    (StatusCode::ACCEPTED, axum::Json(D::from(tx))).into_response()
}

/// Approves a transaction waiting for approval: it is posted if funds and the policy (all
/// rules but the approval threshold) still allow, otherwise it ends denied or failed.
/// Approving it again answers with what the first approval did (safe to retry).
#[utoipa::path(post, path = "/v1/transactions/{id}/approve", tag = "transactions",
    params(("id" = Uuid, Path, description = "The pending transaction")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transaction after the decision", body = TransactionDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot approve", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
        (status = 409, description = "`not_pending`: never pending, or rejected", body = ErrorBody),
    ))]
pub(crate) async fn approve(
    state: State<SharedState>,
    caller: Caller,
    path: Path<Uuid>,
) -> Result<axum::Json<TransactionDto>, ApiError> {
    decide(state, caller, path, true).await
}

/// Rejects a transaction waiting for approval: no money moves. Rejecting it again answers
/// with the rejected transaction (safe to retry).
#[utoipa::path(post, path = "/v1/transactions/{id}/reject", tag = "transactions",
    params(("id" = Uuid, Path, description = "The pending transaction")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rejected transaction", body = TransactionDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot reject", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
        (status = 409, description = "`not_pending`: never pending, or approved", body = ErrorBody),
    ))]
pub(crate) async fn reject(
    state: State<SharedState>,
    caller: Caller,
    path: Path<Uuid>,
) -> Result<axum::Json<TransactionDto>, ApiError> {
    decide(state, caller, path, false).await
}

async fn decide(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    approve: bool,
) -> Result<axum::Json<TransactionDto>, ApiError> {
    let outcome = state
        .services
        .decide(
            &caller.principal,
            TransactionId::from_uuid(id),
            approve,
            &caller.audit,
        )
        .await?;
    Ok(axum::Json(outcome.transaction.into()))
}

/// One transaction touching a wallet the caller may see.
#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "transactions",
    params(("id" = Uuid, Path, description = "The transaction")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transaction", body = TransactionDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or not visible to the caller", body = ErrorBody),
    ))]
pub(crate) async fn get_transaction(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TransactionDto>, ApiError> {
    let tx = state
        .services
        .get_transaction(&caller.principal, TransactionId::from_uuid(id))
        .await?;
    Ok(axum::Json(tx.into()))
}

/// A page of a wallet's transactions (paying or receiving), newest first, narrowed by the
/// filters given: `status`, `kind`, `from` (at or after) and `to` (before), and up to 10
/// `metadata.<key>=<value>`: the transaction's `metadata` holds `key` with exactly the string
/// `value` (`?metadata.order_id=A-1042`).
#[utoipa::path(get, path = "/v1/wallets/{id}/transactions", tag = "transactions",
    params(("id" = Uuid, Path, description = "The wallet"), TxListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = TransactionPageDto),
        (status = 400, description = "Malformed id, limit, cursor or filter", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn list_transactions(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::Json<TransactionPageDto>, ApiError> {
    let q = TxQuery::parse(pairs)?;
    let page = state
        .services
        .list_transactions(
            &caller.principal,
            WalletId::from_uuid(id),
            &q.filter,
            q.limit,
            q.cursor,
        )
        .await?;
    Ok(axum::Json(page.into()))
}

/// A page of the transactions of every wallet of the calling owner, newest first, with the
/// filters of `GET /v1/wallets/{id}/transactions` (`status`, `kind`, `from`, `to`,
/// `metadata.<key>=<value>`).
#[utoipa::path(get, path = "/v1/transactions", tag = "transactions",
    params(TxListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = TransactionPageDto),
        (status = 400, description = "Malformed limit, cursor or filter", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents list their wallets' transactions one wallet at a time", body = ErrorBody),
    ))]
pub(crate) async fn owner_transactions(
    State(state): State<SharedState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::Json<TransactionPageDto>, ApiError> {
    let q = TxQuery::parse(pairs)?;
    let page = state
        .services
        .owner_transactions(&caller.principal, &q.filter, q.limit, q.cursor)
        .await?;
    Ok(axum::Json(page.into()))
}
