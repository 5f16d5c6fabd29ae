//! The JSON shapes of the API live in `waiaas-api`, shared with the client so the two cannot
//! drift; they are re-exported here for the handlers. What stays here is only the server's:
//! the parsing of a transaction list's query, which answers with the server's errors.

pub(crate) use waiaas_api::*;

use chrono::{DateTime, Utc};
use waiaas_domain::{TransactionKind, TransactionStatus, TxCursor, TxFilter};

use crate::error::ApiError;

/// A parsed transaction-list query.
#[derive(Debug, Default)]
pub(crate) struct TxQuery {
    /// At most this many items.
    pub(crate) limit: Option<u32>,
    /// Where the page starts.
    pub(crate) cursor: Option<TxCursor>,
    /// What the list is narrowed to.
    pub(crate) filter: TxFilter,
}

/// What a bad `status` filter is told.
pub(crate) const STATUSES: &str = "`status` is one of pending_approval, completed, rejected, denied, failed, held, captured, voided, expired";

/// The prefix of a metadata filter's parameter name.
const METADATA: &str = "metadata.";

impl TxQuery {
    /// Reads the query's pairs: every name at most once, none unknown.
    pub(crate) fn parse(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let bad = |message: String| ApiError::bad_request("invalid_query", message);
        let mut q = Self::default();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in pairs {
            if !seen.insert(name.clone()) {
                return Err(bad(format!("`{name}` is given twice")));
            }
            match name.as_str() {
                "limit" => {
                    q.limit = Some(value.parse().map_err(|_| {
                        bad(format!(
                            "`limit` must be a whole number from 0 to {}",
                            u32::MAX
                        ))
                    })?);
                }
                "cursor" => {
                    q.cursor = Some(
                        TxCursor::parse(&value)
                            .map_err(|e| ApiError::bad_request("invalid_cursor", e.to_string()))?,
                    );
                }
                "status" => {
                    q.filter.status = Some(
                        TransactionStatus::from_db(&value).ok_or_else(|| bad(STATUSES.into()))?,
                    );
                }
                "kind" => {
                    q.filter.kind = Some(TransactionKind::from_db(&value).ok_or_else(|| {
                        bad("`kind` is one of deposit, transfer, payment, sweep, hold".into())
                    })?);
                }
                "from" | "to" => {
                    let at = DateTime::parse_from_rfc3339(&value)
                        .map_err(|_| bad(format!("`{name}` must be an RFC 3339 time")))?
                        .with_timezone(&Utc);
                    if name == "from" {
                        q.filter.from = Some(at);
                    } else {
                        q.filter.to = Some(at);
                    }
                }
                other => match other.strip_prefix(METADATA) {
                    Some(key) => q.filter.metadata.push((key.to_owned(), value)),
                    None => return Err(bad(format!("unknown query parameter `{other}`"))),
                },
            }
        }
        Ok(q)
    }
}
