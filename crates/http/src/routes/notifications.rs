//! What owners read about their tenant: the audit trail and notifications.

use axum::extract::State;
use uuid::Uuid;
use waiaas_domain::{AuditId, AuditQuery, NotificationId};

use crate::SharedState;
use crate::auth::Caller;
use crate::dto::{
    AuditEntryDto, AuditFilter, ErrorBody, Items, LedgerHeadDto, NotificationPageDto,
    NotificationRead, PageQuery,
};
use crate::error::ApiError;
use crate::extract::{Path, Query};

/// The owner's audit trail, newest first. Page with `before` = the last row's `id`.
#[utoipa::path(get, path = "/v1/audit-logs", tag = "activity",
    params(AuditFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit rows, newest first", body = Items<AuditEntryDto>),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot read the audit trail", body = ErrorBody),
    ))]
pub(crate) async fn audit_logs(
    State(state): State<SharedState>,
    caller: Caller,
    Query(filter): Query<AuditFilter>,
) -> Result<axum::Json<Items<AuditEntryDto>>, ApiError> {
    let query = AuditQuery {
        // The service scopes the query to the caller's tenant.
        owner_id: caller.principal.owner_id(),
        resource_type: filter.resource_type,
        resource_id: filter.resource_id,
        limit: filter
            .limit
            .unwrap_or(waiaas_domain::services::DEFAULT_PAGE),
        before: filter.before.map(AuditId::from_uuid),
    };
    let rows = state.services.audit_trail(&caller.principal, query).await?;
    Ok(axum::Json(Items::of(rows)))
}

/// The tamper-evident ledger's latest sealed position and hash (one chain for the service;
/// the sealer extends it about every second).
#[utoipa::path(get, path = "/v1/ledger/head", tag = "activity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The latest sealed position", body = LedgerHeadDto),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "The ledger's head is for owners", body = ErrorBody),
    ))]
pub(crate) async fn ledger_head(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<axum::Json<LedgerHeadDto>, ApiError> {
    let head = state.services.ledger_head(&caller.principal).await?;
    Ok(axum::Json(head.into()))
}

/// The owner's notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/v1/notifications", tag = "activity",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = NotificationPageDto),
        (status = 400, description = "Malformed limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Notifications are for owners", body = ErrorBody),
    ))]
pub(crate) async fn list_notifications(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<NotificationPageDto>, ApiError> {
    // The hyphenated id this service returns as `next_cursor`, and no other spelling.
    let cursor = page
        .cursor
        .as_deref()
        .map(|c| {
            if c.len() == 36 {
                NotificationId::parse(c).map_err(|_| ())
            } else {
                Err(())
            }
        })
        .transpose()
        .map_err(|()| {
            ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one this service returned",
            )
        })?;
    let (page, unread) = state
        .services
        .notifications(&caller.principal, page.limit, cursor)
        .await?;
    Ok(axum::Json(NotificationPageDto {
        items: page.items.into_iter().map(Into::into).collect(),
        unread: unread.count,
        next_cursor: page.next_cursor.map(Into::into),
    }))
}

/// Marks a notification read.
#[utoipa::path(post, path = "/v1/notifications/{id}/read", tag = "activity",
    params(("id" = Uuid, Path, description = "The notification")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The notification and the unread count left", body = NotificationRead),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Notifications are for owners", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn mark_read(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<NotificationRead>, ApiError> {
    let read = state
        .services
        .mark_notification_read(
            &caller.principal,
            NotificationId::from_uuid(id),
            &caller.audit,
        )
        .await?;
    Ok(axum::Json(read.into()))
}
