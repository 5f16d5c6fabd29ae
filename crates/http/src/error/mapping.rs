//! How domain errors and axum's extractor rejections become [`ApiError`]s: the status code
//! contract of the API lives here.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use waiaas_domain::errors::{
    AccessError, AgentError, ApprovalError, AuthError, CreateWalletError, PostingError, RepoError,
    SetPolicyError,
};
use waiaas_domain::model::MandateRefusal;

use super::ApiError;

/// A policy or budget the domain refused while converting the request: a `400` with its code.
impl From<waiaas_api::Invalid> for ApiError {
    fn from(e: waiaas_api::Invalid) -> Self {
        Self::bad_request(e.code, e.message)
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        Self::unexpected(e.0)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => Self::unauthenticated(),
            AuthError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::NotFound => Self::not_found("not found"),
            AccessError::Forbidden(why) => Self::forbidden(why),
            AccessError::Invalid(why) => Self::bad_request("invalid_query", why),
            AccessError::Filter(why) => Self::bad_request("invalid_query", why.to_string()),
            e @ AccessError::UnknownAsset(_) => Self::unprocessable("unknown_asset", e.to_string()),
            AccessError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Invalid(v) => Self::bad_request("invalid_value", v.to_string()),
            e @ (AgentError::NotFound(_) | AgentError::KeyNotFound(_)) => {
                Self::not_found(e.to_string())
            }
            e @ AgentError::LastKey => Self::conflict("last_key", e.to_string()),
            AgentError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<CreateWalletError> for ApiError {
    fn from(e: CreateWalletError) -> Self {
        match e {
            e @ CreateWalletError::UnknownAsset(_) => {
                Self::unprocessable("unknown_asset", e.to_string())
            }
            CreateWalletError::Invalid(v) => Self::bad_request("invalid_value", v.to_string()),
            // A revoked agent is a deleted one: it no longer exists for its owner.
            CreateWalletError::AgentNotFound(id) | CreateWalletError::AgentRevoked(id) => {
                Self::not_found(format!("agent {id} not found"))
            }
            CreateWalletError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<SetPolicyError> for ApiError {
    fn from(e: SetPolicyError) -> Self {
        match e {
            SetPolicyError::Invalid(p) => Self::bad_request("invalid_policy", p.to_string()),
            e @ SetPolicyError::NotFound => Self::not_found(e.to_string()),
            e @ SetPolicyError::Forbidden => Self::forbidden(e.to_string()),
            SetPolicyError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<PostingError> for ApiError {
    fn from(e: PostingError) -> Self {
        let message = e.to_string();
        match e {
            PostingError::InvalidAmount(_) => Self::bad_request("invalid_amount", message),
            PostingError::Invalid(_) => Self::bad_request("invalid_value", message),
            PostingError::InvalidMetadata => Self::bad_request("invalid_metadata", message),
            PostingError::AmbiguousTarget | PostingError::SameWallet => {
                Self::bad_request("invalid_target", message)
            }
            // A wallet held by another agent is one this agent may not see.
            PostingError::WalletNotFound(id) | PostingError::NotHolder(id) => {
                Self::not_found(format!("wallet {id} not found"))
            }
            PostingError::AssetMismatch { .. } => Self::unprocessable("asset_mismatch", message),
            PostingError::AgentNotActive => Self::unprocessable("agent_not_active", message),
            PostingError::WalletClosed(_) => Self::conflict("wallet_closed", message),
            PostingError::NothingToSweep(_) => Self::unprocessable("nothing_to_sweep", message),
            PostingError::MissingIdempotencyKey => {
                Self::bad_request("missing_idempotency_key", message)
            }
            PostingError::Forbidden(why) => Self::forbidden(why),
            PostingError::BalanceOverflow => Self::unprocessable("balance_overflow", message),
            PostingError::IdempotencyConflict => Self::conflict("idempotency_conflict", message),
            PostingError::HoldNotFound(_) => Self::not_found(message),
            PostingError::HoldNotOpen { status, .. } => {
                Self::conflict("hold_not_open", message).with("status", status.as_str())
            }
            PostingError::HoldExpired => Self::conflict("hold_expired", message),
            PostingError::CaptureExceedsHold { held, asked } => {
                Self::unprocessable("capture_exceeds_hold", message)
                    .with("held", held.minor_units())
                    .with("asked", asked.minor_units())
            }
            PostingError::Mandate(MandateRefusal::NotFound) => Self::not_found(message),
            PostingError::Mandate(r) => Self::unprocessable(r.code(), message),
            PostingError::HoldLifetime => Self::bad_request("invalid_expiry", message),
            PostingError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        let message = e.to_string();
        match e {
            ApprovalError::NotFound(_) => Self::not_found(message),
            ApprovalError::Forbidden => Self::forbidden(message),
            ApprovalError::NotPending(_) => Self::conflict("not_pending", message),
            ApprovalError::Expired => Self::conflict("approval_expired", message),
            ApprovalError::BalanceOverflow => Self::unprocessable("balance_overflow", message),
            ApprovalError::Unknown(e) => Self::unexpected(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let message = r.body_text();
        match r {
            JsonRejection::JsonDataError(_) => Self::bad_request("invalid_request", message),
            JsonRejection::JsonSyntaxError(_) => Self::bad_request("malformed_json", message),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with `Content-Type: application/json`",
            ),
            other => from_status(other.status(), message),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        let message = r.body_text();
        match r.status() {
            s if s.is_client_error() => Self::bad_request("invalid_path", message),
            s => from_status(s, message),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

/// The answer to a body rejection, by the status axum gave it.
fn from_status(status: StatusCode, message: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            "the request body is larger than the service accepts",
        ),
        s if s.is_client_error() => ApiError::bad_request("invalid_request", message),
        _ => ApiError::internal(anyhow::anyhow!("extractor rejection: {message}")),
    }
}
