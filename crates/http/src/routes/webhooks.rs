//! Webhook endpoints (owner only) and their deliveries. Events are posted as
//! `{"id", "type", "created_at", "data"}` with `WAIaaS-Event-Id` and
//! `WAIaaS-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use waiaas_domain::ports::WebhookPatch;
use waiaas_domain::services::WebhookRequest;
use waiaas_domain::{AccessError, DeliveryId, WebhookId};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{
    DeliveryDto, DeliveryQuery, ErrorBody, Items, WebhookBody, WebhookDto, WebhookPatchBody,
    WebhookWithSecretDto,
};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

/// A URL, event list or description the service will not take is a `422 invalid_webhook`.
fn webhook_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Invalid(why) => ApiError::unprocessable("invalid_webhook", why),
        other => other.into(),
    }
}

/// Registers an endpoint for the owner's events; answers its signing secret once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body = WebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The endpoint, with its signing secret (shown once)", body = WebhookWithSecretDto),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 422, description = "`invalid_webhook`: a URL that is not public https, an unknown event type, a long description, or 20 endpoints already", body = ErrorBody),
    ))]
pub(crate) async fn create_webhook(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<WebhookBody>,
) -> Result<(StatusCode, axum::Json<WebhookWithSecretDto>), ApiError> {
    let (webhook, secret) = state
        .services
        .create_webhook(
            &caller.principal,
            WebhookRequest {
                url: body.url,
                events: body.events,
                description: body.description,
            },
            &caller.audit,
        )
        .await
        .map_err(webhook_error)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookWithSecretDto {
            webhook: webhook.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// The owner's endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints (at most 20)", body = Items<WebhookDto>),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
    ))]
pub(crate) async fn list_webhooks(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<axum::Json<Items<WebhookDto>>, ApiError> {
    let list = state.services.list_webhooks(&caller.principal).await?;
    Ok(axum::Json(Items {
        items: list.into_iter().map(Into::into).collect(),
    }))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_webhook(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<WebhookDto>, ApiError> {
    let w = state
        .services
        .get_webhook(&caller.principal, WebhookId::from_uuid(id))
        .await?;
    Ok(axum::Json(w.into()))
}

/// Changes an endpoint's URL, event types, description, or whether it is enabled (a
/// disabled endpoint gets no new deliveries; pending ones still go out).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint")),
    request_body = WebhookPatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookDto),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
        (status = 422, description = "`invalid_webhook`", body = ErrorBody),
    ))]
pub(crate) async fn update_webhook(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<WebhookPatchBody>,
) -> Result<axum::Json<WebhookDto>, ApiError> {
    let patch = WebhookPatch {
        url: body.url,
        events: body.events,
        description: body.description,
        enabled: body.enabled,
    };
    let w = state
        .services
        .update_webhook(
            &caller.principal,
            WebhookId::from_uuid(id),
            patch,
            &caller.audit,
        )
        .await
        .map_err(webhook_error)?;
    Ok(axum::Json(w.into()))
}

/// Deletes an endpoint and its deliveries.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn delete_webhook(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .delete_webhook(&caller.principal, WebhookId::from_uuid(id), &caller.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an endpoint a new signing secret, shown once; the old one stops signing at once.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoint, with its new signing secret (shown once)", body = WebhookWithSecretDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn rotate_secret(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<WebhookWithSecretDto>, ApiError> {
    let (webhook, secret) = state
        .services
        .rotate_webhook_secret(&caller.principal, WebhookId::from_uuid(id), &caller.audit)
        .await?;
    Ok(axum::Json(WebhookWithSecretDto {
        webhook: webhook.into(),
        secret: secret.expose().to_owned(),
    }))
}

/// An endpoint's deliveries, newest event first: status, attempts, the last answer's status
/// code or error, and when a pending one is tried next.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint"), DeliveryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deliveries", body = Items<DeliveryDto>),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn list_deliveries(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveryQuery>,
) -> Result<axum::Json<Items<DeliveryDto>>, ApiError> {
    let list = state
        .services
        .webhook_deliveries(
            &caller.principal,
            WebhookId::from_uuid(id),
            q.limit,
            q.before,
        )
        .await?;
    Ok(axum::Json(Items {
        items: list.into_iter().map(Into::into).collect(),
    }))
}

/// Sends a delivery again now; a failed one starts a new 24 hours of attempts.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "The endpoint"),
        ("delivery_id" = Uuid, Path, description = "The delivery"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The delivery, due now", body = DeliveryDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Agents cannot manage webhooks", body = ErrorBody),
        (status = 404, description = "Missing, another tenant's, or already delivered", body = ErrorBody),
    ))]
pub(crate) async fn retry_delivery(
    State(state): State<SharedState>,
    caller: Caller,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<DeliveryDto>, ApiError> {
    let d = state
        .services
        .retry_delivery(
            &caller.principal,
            WebhookId::from_uuid(id),
            DeliveryId::from_uuid(delivery),
            &caller.audit,
        )
        .await?;
    Ok(axum::Json(d.into()))
}
