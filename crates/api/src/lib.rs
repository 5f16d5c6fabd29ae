//! The JSON shapes of the WAIaaS HTTP API: request bodies, query strings, responses, the
//! error body and the events of a wallet's stream. The server (`waiaas-http`) renders and
//! parses exactly these types, and the client (`waiaas-client`) sends and reads them, so the
//! two cannot drift apart.
//!
//! Request bodies refuse unknown fields and read whole numbers exactly (see [`whole`]).
//! Features:
//! - `openapi`: the `utoipa` schemas of the types, for the server's OpenAPI document;
//! - `domain`: conversions from the domain's types (`waiaas-domain`), for the server.
//!
//! ```
//! use waiaas_api::{ErrorBody, ErrorCode, TransferBody};
//!
//! // What an agent sends to pay another wallet 25.00 (in minor units).
//! let body = TransferBody {
//!     amount: 2_500,
//!     to_wallet_id: Some(uuid::Uuid::nil()),
//!     destination: None,
//!     memo: Some("invoice 7".into()),
//!     metadata: None,
//!     mandate_id: None,
//! };
//! let json = serde_json::to_value(&body).unwrap();
//! assert_eq!(json["amount"], 2_500);
//!
//! // What every error answer carries.
//! let error: ErrorBody = serde_json::from_str(
//!     r#"{"error": {"code": "policy_denied", "message": "over the limit", "rule": "daily_limit"}}"#,
//! )
//! .unwrap();
//! assert_eq!(error.error.error_code(), ErrorCode::PolicyDenied);
//! assert_eq!(error.error.details["rule"], "daily_limit");
//! ```

mod accounts;
mod activity;
mod budgets;
mod error;
mod events;
mod home;
mod mandates;
mod transactions;
mod wallets;
mod webhooks;
pub mod whole;

pub use accounts::*;
pub use activity::*;
pub use budgets::*;
pub use error::*;
pub use events::*;
pub use home::*;
pub use mandates::*;
pub use transactions::*;
pub use wallets::*;
pub use webhooks::*;

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A list of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Items<T> {
    /// The items.
    pub items: Vec<T>,
}

impl<T> Items<T> {
    /// Converts every item.
    pub fn of<D>(items: impl IntoIterator<Item = D>) -> Self
    where
        T: From<D>,
    {
        Self {
            items: items.into_iter().map(T::from).collect(),
        }
    }
}

/// A request whose values the domain refuses while converting it (a policy or a budget):
/// the code and message of the `400` the server answers with.
#[cfg(feature = "domain")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The error code, e.g. `invalid_policy`.
    pub code: &'static str,
    /// What was wrong, for the client.
    pub message: String,
}

#[cfg(feature = "domain")]
impl Invalid {
    /// A refusal with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(feature = "domain")]
impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(feature = "domain")]
impl std::error::Error for Invalid {}
