//! Mandates: an owner's pre-approval of what an agent may spend from one wallet.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use waiaas_domain::services::MandateRequest;
use waiaas_domain::{AccessError, MandateId, WalletId};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{ErrorBody, Items, MandateBody, MandateDto, MandateQuery};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

/// A mandate's terms out of bounds are a `422 invalid_mandate`: well-formed JSON the service
/// will not issue (an expiry in the past, no amount, another asset's payee…).
fn mandate_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Invalid(why) => ApiError::unprocessable("invalid_mandate", why),
        other => other.into(),
    }
}

/// Issues a mandate on one of the owner's wallets: the agent holding it may then spend
/// within it (`"mandate_id"` on a transfer, payment or hold) without waiting for approval,
/// even above `approval_above`. Hard limits still apply: funds, block- and allow-lists, the
/// per-transaction maximum, daily and monthly limits at every level.
#[utoipa::path(post, path = "/v1/wallets/{id}/mandates", tag = "mandates",
    params(("id" = Uuid, Path, description = "The wallet")),
    request_body = MandateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The mandate", body = MandateDto),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 422, description = "`invalid_mandate`: amounts, uses, payee or expiry out of bounds", body = ErrorBody),
        (status = 403, description = "Agents cannot issue mandates", body = ErrorBody),
        (status = 404, description = "The wallet (or payee wallet) is missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn create_mandate(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<MandateBody>,
) -> Result<(StatusCode, axum::Json<MandateDto>), ApiError> {
    let req = MandateRequest {
        wallet_id: WalletId::from_uuid(id),
        max_amount: body.max_amount,
        total_amount: body.total_amount,
        max_uses: body.max_uses,
        to_wallet_id: body.to_wallet_id.map(WalletId::from_uuid),
        destination: body.destination,
        expires_at: body.expires_at,
    };
    let now = chrono::Utc::now();
    let m = state
        .services
        .create_mandate(&caller.principal, req, &caller.audit)
        .await
        .map_err(mandate_error)?;
    Ok((StatusCode::CREATED, axum::Json(MandateDto::at(m, now))))
}

/// A wallet's mandates, newest first (the owner or the agent holding the wallet).
#[utoipa::path(get, path = "/v1/wallets/{id}/mandates", tag = "mandates",
    params(("id" = Uuid, Path, description = "The wallet"), MandateQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The mandates (at most `limit`, default 50, up to 200)", body = Items<MandateDto>),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's wallet", body = ErrorBody),
    ))]
pub(crate) async fn list_mandates(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<MandateQuery>,
) -> Result<axum::Json<Items<MandateDto>>, ApiError> {
    let now = chrono::Utc::now();
    let list = state
        .services
        .list_mandates(&caller.principal, WalletId::from_uuid(id), q.limit)
        .await?;
    Ok(axum::Json(Items {
        items: list.into_iter().map(|m| MandateDto::at(m, now)).collect(),
    }))
}

/// One mandate (the owner or the agent holding its wallet), as it stands now.
#[utoipa::path(get, path = "/v1/mandates/{id}", tag = "mandates",
    params(("id" = Uuid, Path, description = "The mandate")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The mandate", body = MandateDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_mandate(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<MandateDto>, ApiError> {
    let now = chrono::Utc::now();
    let m = state
        .services
        .get_mandate(&caller.principal, MandateId::from_uuid(id))
        .await?;
    Ok(axum::Json(MandateDto::at(m, now)))
}

/// Revokes a mandate (the owner): no spend uses it once this answers. Revoking it again
/// answers it as it is.
#[utoipa::path(delete, path = "/v1/mandates/{id}", tag = "mandates",
    params(("id" = Uuid, Path, description = "The mandate")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revoked mandate", body = MandateDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Agents cannot revoke mandates", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn revoke_mandate(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<MandateDto>, ApiError> {
    let now = chrono::Utc::now();
    let m = state
        .services
        .revoke_mandate(&caller.principal, MandateId::from_uuid(id), &caller.audit)
        .await?;
    Ok(axum::Json(MandateDto::at(m, now)))
}
