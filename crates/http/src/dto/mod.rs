//! The JSON shapes of the API: request bodies (every one refuses unknown fields), query
//! strings and responses, with their OpenAPI schemas. Domain types are converted here so the
//! wire format never changes by accident when the domain does.

mod accounts;
mod activity;
mod transactions;
mod wallets;

pub(crate) use accounts::*;
pub(crate) use activity::*;
pub(crate) use transactions::*;
pub(crate) use wallets::*;

use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong. Some codes add fields: `policy_denied` adds `rule`, `budget`,
/// `transaction_id` and `reason`; `insufficient_funds` adds `transaction_id` and `budget`;
/// `rate_limited` adds `retry_after`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `not_found` or `policy_denied`.
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence for humans; never shows internal details.
    pub message: String,
}

/// A list of items.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Items<T> {
    /// The items.
    pub items: Vec<T>,
}

impl<T> Items<T> {
    /// Converts every item.
    pub(crate) fn of<D>(items: impl IntoIterator<Item = D>) -> Self
    where
        T: From<D>,
    {
        Self {
            items: items.into_iter().map(T::from).collect(),
        }
    }
}
