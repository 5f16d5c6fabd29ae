//! Holds (two-phase payments): reserve now, capture at most that much later, or void.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;
use waiaas_domain::services::{CaptureRequest, HoldRequest, TransferRequest};
use waiaas_domain::{MandateId, TransactionId, TransactionStatus, TxCursor, WalletId};

use super::transactions::spend_response;
use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{
    CaptureBody, ErrorBody, HoldBody, HoldDto, HoldPageDto, HoldQuery, STATUSES, TransactionDto,
};
use crate::error::ApiError;
use crate::extract::{Json, Object, Path, Query, idempotency_key};

/// Reserves an amount of a wallet the calling agent holds, for a payment (`destination`) or
/// transfer (`to_wallet_id`) whose final amount is not known yet: a capture later moves at
/// most that much. The wallet's policy decides as for a transfer, and counts the held amount
/// as spent from now on (daily limit, hourly count); the wallet's `available` drops by it.
/// 201 held, 202 waiting for the owner's approval (approved or rejected like a transfer),
/// 422 `policy_denied` or `insufficient_funds` (the refused hold is recorded). An unused
/// hold expires after `expires_in_s` (default 3600, at most 7 days) and is released. The
/// `Idempotency-Key` header is required.
#[utoipa::path(post, path = "/v1/wallets/{id}/holds", tag = "holds",
    params(
        ("id" = Uuid, Path, description = "The wallet reserved from"),
        ("Idempotency-Key" = String, Header, description = "Required retry key"),
    ),
    request_body = HoldBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Held (or, for a repeated key, the hold as it stands)", body = HoldDto),
        (status = 202, description = "Waiting for the owner's approval", body = HoldDto),
        (status = 400, description = "Malformed body, bad amount, target or `expires_in_s` (`invalid_expiry`), missing Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Owners cannot place holds", body = ErrorBody),
        (status = 404, description = "A wallet is missing or not visible to this agent", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`; `wallet_closed`", body = ErrorBody),
        (status = 422, description = "`policy_denied` (with `rule`, `budget`, `transaction_id`), `insufficient_funds`, `asset_mismatch`, `agent_not_active`", body = ErrorBody),
    ))]
pub(crate) async fn create_hold(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<HoldBody>,
) -> Result<Response, ApiError> {
    let req = HoldRequest {
        spend: TransferRequest {
            from_wallet_id: WalletId::from_uuid(id),
            to_wallet_id: body.to_wallet_id.map(WalletId::from_uuid),
            destination: body.destination,
            amount: body.amount,
            memo: body.memo,
            metadata: body.metadata,
            idempotency_key: idempotency_key(&headers)?,
            mandate_id: body.mandate_id.map(MandateId::from_uuid),
        },
        expires_in_s: body.expires_in_s,
    };
    let outcome = state
        .services
        .create_hold(&caller.principal, req, &caller.audit)
        .await?;
    Ok(spend_response::<HoldDto>(
        outcome.transaction,
        outcome.replayed,
    ))
}

/// Captures a hold of a wallet the calling agent holds: `amount` (at most the held amount;
/// all of it when absent) moves to the hold's counterparty as a completed transfer or
/// payment (with `hold_id`), and the rest is released, to the wallet and to the budget of
/// the day it was held. A hold is captured at most once. The `Idempotency-Key` header is
/// required: a repeat returns the first capture.
#[utoipa::path(post, path = "/v1/holds/{id}/capture", tag = "holds",
    params(
        ("id" = Uuid, Path, description = "The hold"),
        ("Idempotency-Key" = String, Header, description = "Required retry key"),
    ),
    request_body(content = Option<CaptureBody>, description = "Optional: the amount to capture"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The completed transaction the capture posted", body = TransactionDto),
        (status = 400, description = "Malformed body or amount, missing Idempotency-Key", body = ErrorBody),
        (status = 403, description = "Owners cannot capture", body = ErrorBody),
        (status = 404, description = "No such hold of a wallet this agent holds", body = ErrorBody),
        (status = 409, description = "`hold_not_open` (captured, voided, denied…, with its `status`), `hold_expired`, `idempotency_conflict`, `wallet_closed`", body = ErrorBody),
        (status = 422, description = "`capture_exceeds_hold` (with `held` and `asked`), `agent_not_active`, `balance_overflow`", body = ErrorBody),
    ))]
pub(crate) async fn capture_hold(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Option<Json<Option<Object<CaptureBody>>>>,
) -> Result<(StatusCode, axum::Json<TransactionDto>), ApiError> {
    let amount = body.and_then(|Json(b)| b).and_then(|Object(b)| b.amount);
    let req = CaptureRequest {
        hold_id: TransactionId::from_uuid(id),
        amount,
        idempotency_key: idempotency_key(&headers)?,
    };
    let outcome = state
        .services
        .capture_hold(&caller.principal, req, &caller.audit)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(outcome.transaction.into())))
}

/// Voids a hold (held, or still waiting for approval): everything it reserved is released.
/// The agent holding the wallet or its owner may void it. Voiding it again, or voiding a
/// hold that expired, answers the hold as it is.
#[utoipa::path(post, path = "/v1/holds/{id}/void", tag = "holds",
    params(("id" = Uuid, Path, description = "The hold")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hold, voided (or expired)", body = HoldDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such hold visible to the caller", body = ErrorBody),
        (status = 409, description = "`hold_not_open`: it was captured, denied, rejected or failed (with its `status`)", body = ErrorBody),
    ))]
pub(crate) async fn void_hold(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<HoldDto>, ApiError> {
    let outcome = state
        .services
        .void_hold(
            &caller.principal,
            TransactionId::from_uuid(id),
            &caller.audit,
        )
        .await?;
    Ok(axum::Json(outcome.transaction.into()))
}

/// One hold of a wallet the caller may see, as it stands now: a hold past its expiry reads
/// `expired` even before it was released.
#[utoipa::path(get, path = "/v1/holds/{id}", tag = "holds",
    params(("id" = Uuid, Path, description = "The hold")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hold", body = HoldDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such hold visible to the caller", body = ErrorBody),
    ))]
pub(crate) async fn get_hold(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<HoldDto>, ApiError> {
    let hold = state
        .services
        .get_hold(&caller.principal, TransactionId::from_uuid(id))
        .await?;
    Ok(axum::Json(hold.into()))
}

/// A page of a wallet's holds, newest first, optionally only those in one `status` (as they
/// stand now).
#[utoipa::path(get, path = "/v1/wallets/{id}/holds", tag = "holds",
    params(("id" = Uuid, Path, description = "The wallet"), HoldQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = HoldPageDto),
        (status = 400, description = "Malformed id, limit, cursor or status", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's wallet", body = ErrorBody),
    ))]
pub(crate) async fn list_holds(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<HoldQuery>,
) -> Result<axum::Json<HoldPageDto>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            TransactionStatus::from_db(s)
                .ok_or_else(|| ApiError::bad_request("invalid_query", STATUSES))
        })
        .transpose()?;
    let cursor = q
        .cursor
        .as_deref()
        .map(TxCursor::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_cursor", e.to_string()))?;
    let page = state
        .services
        .list_holds(
            &caller.principal,
            WalletId::from_uuid(id),
            status,
            q.limit,
            cursor,
        )
        .await?;
    Ok(axum::Json(page.into()))
}
