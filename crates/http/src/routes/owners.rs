//! Owner registration, the owner's own API keys, and sessions.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use waiaas_domain::CredentialKind;

use crate::SharedState;
use crate::auth::{Bootstrap, Caller, bearer};
use crate::dto::{CreateOwner, ErrorBody, Items, KeyCreated, KeyDto, OwnerCreated, SessionCreated};
use crate::error::ApiError;
use crate::extract::{Json, Path};

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

/// The owner's own API keys, revoked and expired ones included, oldest first (never their
/// secrets).
#[utoipa::path(get, path = "/v1/owners/me/keys", tag = "owners",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = Items<KeyDto>),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents have no owner keys", body = ErrorBody),
    ))]
pub(crate) async fn list_owner_keys(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<axum::Json<Items<KeyDto>>, ApiError> {
    let owner_id = caller.owner("list the owner's keys")?;
    let keys = state.services.owner_keys(owner_id).await?;
    Ok(axum::Json(KeyDto::list(keys)))
}

/// Issues another API key for the owner (shown once): to rotate a key, issue a new one,
/// switch to it, then revoke the old one.
#[utoipa::path(post, path = "/v1/owners/me/keys", tag = "owners",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The key, shown once", body = KeyCreated),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot issue owner keys", body = ErrorBody),
    ))]
pub(crate) async fn create_owner_key(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<(StatusCode, axum::Json<KeyCreated>), ApiError> {
    let owner_id = caller.owner("issue owner keys")?;
    let (id, secret) = state
        .services
        .create_owner_key(owner_id, &caller.audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(KeyCreated {
            id: id.into(),
            api_key: secret.expose().to_owned(),
            expires_at: None,
        }),
    ))
}

/// Revokes one of the owner's keys and every session opened with it: once answered, no
/// instance accepts either. The owner's last working key cannot be revoked (`409
/// last_key`); revoking a revoked key again is a `204`.
#[utoipa::path(delete, path = "/v1/owners/me/keys/{key_id}", tag = "owners",
    params(("key_id" = uuid::Uuid, Path, description = "The key")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 403, description = "Agents cannot revoke owner keys", body = ErrorBody),
        (status = 404, description = "Not one of the owner's keys", body = ErrorBody),
        (status = 409, description = "The owner's last working key", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn revoke_owner_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path(key_id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    let owner_id = caller.owner("revoke owner keys")?;
    state
        .services
        .revoke_owner_key(
            owner_id,
            waiaas_domain::ApiKeyId::from_uuid(key_id),
            &caller.audit,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
