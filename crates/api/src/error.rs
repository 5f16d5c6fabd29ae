//! The body of every error answer, and the stable codes it carries.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong. Some codes add fields: `policy_denied` adds `rule`, `budget`,
/// `transaction_id` and `reason`; `insufficient_funds` adds `transaction_id` and `budget`;
/// `rate_limited` adds `retry_after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `not_found` or `policy_denied`.
    #[cfg_attr(feature = "openapi", schema(example = "not_found"))]
    pub code: String,
    /// A sentence for humans; never shows internal details.
    pub message: String,
    /// The fields some codes add, beside `code` and `message`.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ErrorDetail {
    /// The code as an [`ErrorCode`].
    #[must_use]
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::parse(&self.code)
    }
}

/// Declares the codes once: the variants, their text, and the list of every known one.
macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $text:literal,)+) => {
        /// The stable error codes the service answers with (docs/api.md, "Errors"). A code
        /// this version does not know yet is [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $variant,)+
            /// A code this version does not know.
            Other(String),
        }

        impl ErrorCode {
            /// The text of every known code.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The code's text, as the service sends it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }

            /// The code a text names ([`ErrorCode::Other`] when it names none this version
            /// knows).
            #[must_use]
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

codes! {
    /// 400: the body is not JSON.
    MalformedJson = "malformed_json",
    /// 400: the JSON does not fit the endpoint (a wrong type, a missing or unknown field).
    InvalidRequest = "invalid_request",
    /// 400: an id in the path is not a UUID.
    InvalidPath = "invalid_path",
    /// 400: a malformed or unknown query parameter.
    InvalidQuery = "invalid_query",
    /// 400: a `cursor` that is not one the service returned.
    InvalidCursor = "invalid_cursor",
    /// 400: an amount of zero or below.
    InvalidAmount = "invalid_amount",
    /// 400: a malformed name, memo, destination, counterparty, asset code or key.
    InvalidValue = "invalid_value",
    /// 400: `metadata` is not a JSON object of at most 4 KiB.
    InvalidMetadata = "invalid_metadata",
    /// 400: a transfer names both or neither target, or pays its own wallet.
    InvalidTarget = "invalid_target",
    /// 400: a policy out of bounds.
    InvalidPolicy = "invalid_policy",
    /// 400: a money-moving request without `Idempotency-Key`.
    MissingIdempotencyKey = "missing_idempotency_key",
    /// 400: a hold's `expires_in_s` out of bounds.
    InvalidExpiry = "invalid_expiry",
    /// 400: a malformed budget.
    InvalidBudget = "invalid_budget",
    /// 400: an event stream's `Last-Event-ID` is not 1 to 18 digits.
    InvalidLastEventId = "invalid_last_event_id",
    /// 400: a `WAIaaS-Consistency-Token` the service did not give out.
    InvalidConsistencyToken = "invalid_consistency_token",
    /// 401: no valid credential.
    Unauthenticated = "unauthenticated",
    /// 403: the caller's role does not allow this.
    Forbidden = "forbidden",
    /// 404: missing, deleted, or another tenant's.
    NotFound = "not_found",
    /// 405: a known path with a method it does not take.
    MethodNotAllowed = "method_not_allowed",
    /// 409: the `Idempotency-Key` was used with a different request.
    IdempotencyConflict = "idempotency_conflict",
    /// 409: deciding a transaction that is not pending approval.
    NotPending = "not_pending",
    /// 409: capturing or voiding a hold that is not open (adds `status`).
    HoldNotOpen = "hold_not_open",
    /// 409: deciding a transaction past its approval deadline.
    ApprovalExpired = "approval_expired",
    /// 409: capturing a hold past its expiry.
    HoldExpired = "hold_expired",
    /// 409: revoking the owner's last working API key.
    LastKey = "last_key",
    /// 409: moving money into a wallet whose agent was deleted.
    WalletClosed = "wallet_closed",
    /// 410: an event stream resumed below events that retention deleted.
    EventsExpired = "events_expired",
    /// 426: `GET /v1/ws` without a WebSocket upgrade.
    WebsocketRequired = "websocket_required",
    /// 413: the body is over the configured limit.
    PayloadTooLarge = "payload_too_large",
    /// 415: a body without `Content-Type: application/json`.
    UnsupportedMediaType = "unsupported_media_type",
    /// 422: a policy or budget denied the spend (adds `level`, `rule`, `reason`, `budget`,
    /// `transaction_id`).
    PolicyDenied = "policy_denied",
    /// 422: the named mandate does not cover the amount.
    MandateExceeded = "mandate_exceeded",
    /// 422: the named mandate expired.
    MandateExpired = "mandate_expired",
    /// 422: the named mandate names another payee.
    MandatePayeeMismatch = "mandate_payee_mismatch",
    /// 422: the named mandate was revoked.
    MandateRevoked = "mandate_revoked",
    /// 422: the wallet's balance is too low (adds `budget`, `transaction_id`).
    InsufficientFunds = "insufficient_funds",
    /// 422: the two wallets hold different assets.
    AssetMismatch = "asset_mismatch",
    /// 422: the agent is suspended.
    AgentNotActive = "agent_not_active",
    /// 422: the credit would overflow the receiving balance.
    BalanceOverflow = "balance_overflow",
    /// 422: a sweep of a wallet with nothing available.
    NothingToSweep = "nothing_to_sweep",
    /// 422: a capture above the held amount (adds `held` and `asked`).
    CaptureExceedsHold = "capture_exceeds_hold",
    /// 422: an asset code the platform does not support.
    UnknownAsset = "unknown_asset",
    /// 422: a webhook the service refuses.
    InvalidWebhook = "invalid_webhook",
    /// 422: a mandate out of bounds.
    InvalidMandate = "invalid_mandate",
    /// 429: over the rate (with `Retry-After`).
    RateLimited = "rate_limited",
    /// 429: too many event streams open for this principal.
    TooManyStreams = "too_many_streams",
    /// 429: too many event streams open on the instance.
    InstanceStreamsFull = "instance_streams_full",
    /// 500: a bug in the service.
    Internal = "internal",
    /// 503: PostgreSQL is unavailable; retry (with the same `Idempotency-Key`).
    DatabaseUnavailable = "database_unavailable",
    /// 503: a statement or the request took too long; retry.
    Timeout = "timeout",
    /// 503: a wallet stayed locked by other work; retry with the same key.
    WalletBusy = "wallet_busy",
    /// 503: whether the commit happened is unknown; retry with the same key to learn it.
    OutcomeUnknown = "outcome_unknown",
    /// 503: the instance is shutting down; reconnect.
    ShuttingDown = "shutting_down",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_known_code_reads_back_as_itself_and_an_unknown_one_as_other() {
        for text in ErrorCode::KNOWN {
            let code = ErrorCode::parse(text);
            assert!(!matches!(code, ErrorCode::Other(_)), "{text}");
            assert_eq!(code.as_str(), *text);
        }
        assert_eq!(
            ErrorCode::parse("brand_new"),
            ErrorCode::Other("brand_new".to_owned())
        );
    }
}
