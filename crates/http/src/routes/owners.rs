//! Owner registration and sessions.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use waiaas_domain::CredentialKind;

use crate::SharedState;
use crate::auth::{Bootstrap, Caller, bearer};
use crate::dto::{CreateOwner, ErrorBody, OwnerCreated, SessionCreated};
use crate::error::ApiError;
use crate::extract::Json;

/// Registers an owner and returns its first API key (shown once). Authorised by the
/// bootstrap token as the bearer credential.
#[utoipa::path(post, path = "/v1/owners", tag = "owners",
    request_body = CreateOwner,
    security(("bootstrap" = [])),
    responses(
        (status = 201, description = "The owner and its API key", body = OwnerCreated),
        (status = 400, description = "Malformed body or invalid name", body = ErrorBody),
        (status = 403, description = "No or a wrong bootstrap token, or registration disabled", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ))]
pub(crate) async fn create_owner(
    State(state): State<SharedState>,
    bootstrap: Bootstrap,
    Json(body): Json<CreateOwner>,
) -> Result<(StatusCode, axum::Json<OwnerCreated>), ApiError> {
    let (owner, key) = state
        .services
        .create_owner(&body.name, &bootstrap.audit)
        .await?;
    let created = OwnerCreated {
        owner: owner.into(),
        api_key: key.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Opens a session: a short-lived token for the principal of the API key presented.
#[utoipa::path(post, path = "/v1/sessions", tag = "owners",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The session token, shown once", body = SessionCreated),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "A session token cannot open a session", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
pub(crate) async fn create_session(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<(StatusCode, axum::Json<SessionCreated>), ApiError> {
    if caller.kind != CredentialKind::ApiKey {
        return Err(ApiError::forbidden("sessions are opened with an API key"));
    }
    let key = bearer(&headers).ok_or_else(ApiError::unauthenticated)?;
    let (session, token) = state
        .services
        .create_session(&caller.principal, key, &caller.audit)
        .await?;
    let created = SessionCreated {
        token: token.expose().to_owned(),
        expires_at: session.expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Ends the session whose token authenticates this request: it stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "owners",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "The credential is an API key, not a session", body = ErrorBody),
    ))]
pub(crate) async fn delete_session(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if caller.kind != CredentialKind::Session {
        return Err(ApiError::forbidden(
            "only a session token can end its session; API keys are revoked with their agent",
        ));
    }
    let token = bearer(&headers).ok_or_else(ApiError::unauthenticated)?;
    state.services.revoke_session(token, &caller.audit).await?;
    Ok(StatusCode::NO_CONTENT)
}
