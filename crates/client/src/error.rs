//! What a call can fail with: the service's answer (a status with a stable code), or the
//! transport.

use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use waiaas_api::{ErrorBody, ErrorCode};

/// A failed call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error (after any retries).
    #[error("{status}: {code}: {message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The stable code.
        code: ErrorCode,
        /// The service's sentence for humans.
        message: String,
        /// The fields some codes add beside `code` and `message` (`rule`, `budget`,
        /// `transaction_id`, `retry_after`…).
        details: Map<String, Value>,
    },
    /// No answer: the connection failed, broke or timed out (after any retries).
    #[error("transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer this client cannot read: not the JSON the API documents.
    #[error("unexpected answer ({status}): {reason}")]
    Unexpected {
        /// The HTTP status.
        status: StatusCode,
        /// What did not fit.
        reason: String,
    },
}

impl Error {
    /// The service's error code, when it answered with one.
    #[must_use]
    pub const fn code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the service answered.
    #[must_use]
    pub const fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => Some(*status),
            Self::Transport(_) => None,
        }
    }

    /// A field the code adds, as text when it is a string (`rule`, `transaction_id`…) or as
    /// its JSON otherwise.
    #[must_use]
    pub fn detail(&self, key: &str) -> Option<String> {
        let Self::Api { details, .. } = self else {
            return None;
        };
        details.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// The error of a non-success answer.
pub(crate) async fn from_response(response: Response) -> Error {
    let status = response.status();
    match response.bytes().await {
        Ok(bytes) => match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Error::Api {
                status,
                code: body.error.error_code(),
                message: body.error.message,
                details: body.error.details,
            },
            Err(e) => Error::Unexpected {
                status,
                reason: format!(
                    "not an error body ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                ),
            },
        },
        Err(e) => Error::Transport(e),
    }
}

/// The JSON answer of a successful call.
pub(crate) async fn json<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(Error::Transport)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected {
        status,
        reason: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
    })
}
