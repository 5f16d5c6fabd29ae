//! Consistency tokens, when the service reads listings from replicas: every acknowledged
//! write answers with `WAIaaS-Consistency-Token` (a position in the primary's history at or
//! after its commit), and a read that sends one back is served from a replica only if that
//! replica has reached it ([`waiaas_domain::freshness`]).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::error::ApiError;

/// The header writes answer with and reads send back.
pub const TOKEN_HEADER: &str = "waiaas-consistency-token";

/// Where tokens come from: the primary database's history position.
#[async_trait]
pub trait Consistency: Send + Sync {
    /// A token at or after every write acknowledged so far; `None` when the primary cannot
    /// say (the write stands; the answer then carries no token).
    async fn after_write(&self) -> Option<String>;

    /// The position a token names; `None` when the text is not a token.
    fn parse(&self, token: &str) -> Option<u64>;
}

/// Reads the caller's token into the request's freshness scope, and gives every successful
/// write its token.
pub(crate) async fn tokens(
    State(consistency): State<Option<Arc<dyn Consistency>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(consistency) = consistency else {
        return next.run(req).await;
    };
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let required = match req.headers().get(TOKEN_HEADER) {
        None => None,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|t| consistency.parse(t.trim()))
        {
            Some(position) => Some(position),
            None => {
                return ApiError::bad_request(
                    "invalid_consistency_token",
                    "WAIaaS-Consistency-Token is not a token this service gave out",
                )
                .into_response();
            }
        },
    };
    let mut res = match required {
        Some(position) => waiaas_domain::freshness::scope(position, next.run(req)).await,
        None => next.run(req).await,
    };
    if write
        && res.status().is_success()
        && let Some(token) = consistency.after_write().await
        && let Ok(value) = HeaderValue::from_str(&token)
    {
        res.headers_mut().insert(TOKEN_HEADER, value);
    }
    res
}
