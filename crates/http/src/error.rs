//! The one HTTP error type: a status, a stable code and a message, rendered as
//! `{"error": {"code", "message", ...}}`. Unexpected failures are logged with their cause chain
//! and shown to the client only as `internal`.

mod mapping;

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use waiaas_domain::Fault;

/// The `Retry-After` of an infrastructure fault, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// An error answer. Build it with the constructors; the domain errors and axum's rejections
/// convert into it (see `mapping`).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Map<String, Value>,
    retry_after: Option<u64>,
    cause: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with a status, a code and a message safe to show to the client.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// Adds a field inside `error`, beside `code` and `message`.
    pub(crate) fn with(mut self, key: &str, value: impl serde::Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.details.insert(key.to_owned(), value);
        self
    }

    /// The stable code.
    pub(crate) const fn code(&self) -> &'static str {
        self.code
    }

    /// The message shown to the client.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Adds `Retry-After` (whole seconds, rounded up, at least one).
    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        let secs = (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1);
        self.retry_after = Some(secs);
        self
    }

    /// 400 with a code naming what was wrong.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no credential, or not a valid one. Answered with `WWW-Authenticate: Bearer`.
    pub(crate) fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid `Authorization: Bearer <api key or session token>` header is required",
        )
    }

    /// 403: the caller may know the resource exists but may not do this.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: missing, or another tenant's.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 with a code naming the conflict.
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed, but the business rules refuse it.
    pub(crate) fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429 with `Retry-After` in whole seconds, rounded up and at least one.
    pub(crate) fn rate_limited(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {secs} s"),
        )
        .with("retry_after", secs);
        e.retry_after = Some(secs);
        e
    }

    /// 503: the request did not finish within the configured time. Work it started that
    /// must follow a commit still runs to completion; a retry with the same key learns
    /// the outcome.
    pub(crate) fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long and was abandoned; retry it (money-moving requests with the same Idempotency-Key)",
        )
        .retry_in(RETRY_AFTER_SECS)
    }

    /// Adds `Retry-After` (and `retry_after` in the body).
    fn retry_in(mut self, secs: u64) -> Self {
        self = self.with("retry_after", secs);
        self.retry_after = Some(secs);
        self
    }

    /// 503 for a fault of the infrastructure, with its code and `Retry-After`.
    pub(crate) fn fault(fault: Fault) -> Self {
        let message = match fault {
            Fault::DatabaseUnavailable => {
                "the database is unavailable; retry later (money-moving requests with the same Idempotency-Key)"
            }
            Fault::Timeout => {
                "the database did not answer in time; retry later (money-moving requests with the same Idempotency-Key)"
            }
            Fault::WalletBusy => {
                "a wallet this request needs is locked by another operation; retry with the same Idempotency-Key"
            }
            Fault::OutcomeUnknown => {
                "the connection to the database was lost while committing, so whether the change was made is unknown; retry with the same Idempotency-Key to learn the real outcome"
            }
        };
        Self::new(StatusCode::SERVICE_UNAVAILABLE, fault.code(), message).retry_in(RETRY_AFTER_SECS)
    }

    /// The answer to an unexpected error: a 503 when an infrastructure fault caused it
    /// (see [`Fault::of`]), else a 500 with the cause logged.
    pub(crate) fn unexpected(cause: anyhow::Error) -> Self {
        match Fault::of(&cause) {
            Some(fault) => {
                tracing::warn!(code = fault.code(), error = %format!("{cause:#}"), "Request failed on an infrastructure fault");
                Self::fault(fault)
            }
            None => Self::internal(cause),
        }
    }

    /// 500: something unexpected. The cause is logged, never shown.
    pub(crate) fn internal(cause: anyhow::Error) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        );
        e.cause = Some(cause);
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            // Runs inside the request's span, so the line carries the request id.
            tracing::error!(error = %format!("{cause:#}"), "Request failed unexpectedly");
        }
        // The documented schema is the type rendered: they cannot drift apart.
        let body = crate::dto::ErrorBody {
            error: crate::dto::ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
