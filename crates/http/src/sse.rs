//! Server-sent events: a wallet's transactions as they are committed, relayed from the event
//! bus. Delivery is best effort (the bus may drop messages while reconnecting); a client that
//! needs every transaction reconciles with `GET /v1/wallets/{id}/transactions`.
//!
//! A stream lives only as long as the credential that opened it: the credential is checked
//! again before every event and every few seconds, and the stream ends as soon as it is
//! revoked, expires, or its agent is deleted. No event reaches a client after the
//! revocation was acknowledged.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use uuid::Uuid;
use waiaas_domain::{WalletEvent, WalletId, wallet_events_channel};

use axum::http::HeaderMap;

use crate::SharedState;
use crate::auth::{Caller, bearer};
use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::Path;

/// How often an idle stream sends a comment, so proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often an idle stream checks that its credential still works.
const RECHECK: Duration = Duration::from_secs(2);

/// Streams the wallet's transactions as `event: transaction` with a JSON `WalletEvent`
/// (`{"wallet_id", "transaction"}`) as data and the transaction id as the event id.
#[utoipa::path(get, path = "/v1/wallets/{id}/events", tag = "wallets",
    params(("id" = Uuid, Path, description = "The wallet")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
        (status = 503, description = "The event bus is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn wallet_events(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let credential = bearer(&headers)
        .ok_or_else(ApiError::unauthenticated)?
        .to_owned();
    let wallet_id = WalletId::from_uuid(id);
    state
        .services
        .get_wallet(&caller.principal, wallet_id)
        .await?;
    let messages = state
        .services
        .ports()
        .events
        .subscribe(&wallet_events_channel(wallet_id))
        .await
        .map_err(|e| {
            tracing::warn!(%wallet_id, error = %e, "Event stream could not subscribe");
            ApiError::unavailable("live events are unavailable; poll the transactions instead")
        })?;
    tracing::debug!(%wallet_id, "Event stream opened");
    let events = while_authenticated(state, credential, messages)
        .filter_map(move |payload| async move { to_event(wallet_id, &payload).map(Ok) });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Passes `messages` on while `credential` still authenticates: it is checked before each
/// message and every [`RECHECK`], and the stream ends the first time it fails (revoked,
/// expired, its agent deleted) or cannot be checked.
fn while_authenticated(
    state: SharedState,
    credential: String,
    messages: futures::stream::BoxStream<'static, Vec<u8>>,
) -> impl Stream<Item = Vec<u8>> {
    let mut ticks = tokio::time::interval(RECHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (state, credential, messages, ticks),
        |(state, credential, mut messages, mut ticks)| async move {
            loop {
                let next = tokio::select! {
                    m = messages.next() => Some(m?),
                    _ = ticks.tick() => None,
                };
                if let Err(e) = state.services.authenticate(&credential).await {
                    tracing::debug!(error = %e, "Event stream ended: its credential no longer works");
                    return None;
                }
                if let Some(message) = next {
                    return Some((message, (state, credential, messages, ticks)));
                }
            }
        },
    )
}

/// The SSE event for one bus message; `None` for a message that is not this wallet's event.
fn to_event(wallet_id: WalletId, payload: &[u8]) -> Option<Event> {
    let Ok(event) = serde_json::from_slice::<WalletEvent>(payload) else {
        tracing::debug!(%wallet_id, "Malformed wallet event skipped");
        return None;
    };
    if event.wallet_id != wallet_id {
        return None;
    }
    // Re-encoded so the data is one compact line whatever the publisher sent.
    let data = serde_json::to_string(&event).ok()?;
    Some(
        Event::default()
            .event("transaction")
            .id(event.transaction.id.to_string())
            .data(data),
    )
}
