//! Server-sent events: a wallet's events from the transactional outbox, in order, each with
//! its place in the stream as the SSE `id`. A client that reconnects with `Last-Event-ID`
//! (browsers' `EventSource` does so by itself) receives every event of the wallet after that
//! one — read from PostgreSQL — and then the live ones, with no gap and no duplicate. Without
//! it the stream starts with the events placed after it opened.
//!
//! A stream lives only as long as the credential that opened it: the credential is checked
//! again before every event and every few seconds, and the stream ends as soon as it is
//! revoked, expires, or its agent is deleted. No event reaches a client after the
//! revocation was acknowledged.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use uuid::Uuid;
use waiaas_domain::ports::EventFeed;
use waiaas_domain::{Event, WalletId};

use crate::SharedState;
use crate::auth::{Caller, bearer};
use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::Path;
use crate::streams::Ticket;

/// How often an idle stream sends a comment, so proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often an idle stream checks that its credential still works.
const RECHECK: Duration = Duration::from_secs(2);

/// Stored events read per statement while a stream catches up.
const PAGE: u32 = 200;

/// One event of the stream, as the OpenAPI document describes it (the SSE fields).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "it only documents the stream's events")]
pub(crate) struct StreamEvent {
    /// The event's type, e.g. `transaction.completed`.
    event: String,
    /// The event's id (its place in the stream): send it back as `Last-Event-ID`.
    id: String,
    /// `{"id", "type", "created_at", "wallet_id", <subject>}` as one line of JSON, the subject
    /// being `transaction` (holds included), `policy` or `mandate`.
    data: String,
}

/// The data of one event, as streams send it:
/// `{"id", "type", "created_at", "wallet_id", <subject>}` where the subject is `transaction`
/// (holds included), `policy` or `mandate`.
pub(crate) fn event_data(wallet_id: WalletId, event: &Event) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    data.insert("id".to_owned(), event.id.into());
    data.insert("type".to_owned(), event.kind.clone().into());
    data.insert(
        "created_at".to_owned(),
        serde_json::to_value(event.created_at).unwrap_or_default(),
    );
    data.insert("wallet_id".to_owned(), wallet_id.to_string().into());
    data.insert(event.subject_name().to_owned(), event.record());
    serde_json::Value::Object(data)
}

/// Streams the wallet's events: `event: <type>` (`transaction.completed`,
/// `transaction.pending_approval`, `hold.placed`, `policy.updated`, `mandate.created`, …),
/// `id: <place>`, and as data `{"id", "type", "created_at", "wallet_id", <subject>}` where
/// the subject is `transaction`, `policy` or `mandate`. Send `Last-Event-ID` to resume
/// after an event.
#[utoipa::path(get, path = "/v1/wallets/{id}/events", tag = "wallets",
    params(
        ("id" = Uuid, Path, description = "The wallet"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its `id`, a non-negative integer)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "Malformed id or Last-Event-ID", body = ErrorBody),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 404, description = "Missing or another tenant's", body = ErrorBody),
        (status = 410, description = "Events after Last-Event-ID were deleted by retention", body = ErrorBody),
        (status = 429, description = "Too many streams open: `too_many_streams` (this principal's) or `instance_streams_full`", body = ErrorBody),
        (status = 503, description = "The database is unavailable, or the instance is shutting down", body = ErrorBody),
    ))]
pub(crate) async fn wallet_events(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let credential = bearer(&headers)
        .ok_or_else(ApiError::unauthenticated)?
        .to_owned();
    let resume = last_event_id(&headers)?;
    let wallet_id = WalletId::from_uuid(id);
    state
        .services
        .get_wallet(&caller.principal, wallet_id)
        .await?;
    let ticket = state.streams.admit(&caller.principal)?;
    let subscription = Subscription::open(&state, wallet_id, resume).await?;
    let stream = WalletStream {
        state,
        credential,
        subscription,
        ticks: interval(),
        ticket,
    };
    let events = futures::stream::unfold(stream, WalletStream::next).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The `Last-Event-ID` header: an event's `id` (1 to 18 digits), if sent.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_last_event_id",
            "Last-Event-ID must be the id of an event this stream sent (a non-negative integer)",
        )
    };
    // Exactly what the OpenAPI document says: 1 to 18 ASCII digits.
    let text = value.as_bytes();
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    value
        .to_str()
        .ok()
        .and_then(|t| t.parse().ok())
        .map(Some)
        .ok_or_else(bad)
}

pub(crate) fn interval() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(RECHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// One wallet's events for one client: those stored after its starting place (caught up from
/// PostgreSQL page by page), then the live ones, each once and in order.
pub(crate) struct Subscription {
    feed: Arc<dyn EventFeed>,
    wallet: WalletId,
    /// The id of the last event given (or the place the subscription started after).
    last: i64,
    /// Whether storage holds nothing after `last` that the live feed will not bring.
    caught_up: bool,
    backlog: VecDeque<Event>,
    live: BoxStream<'static, Event>,
}

impl Subscription {
    /// Starts after event `resume` (`None`: after the last event placed now). `410
    /// events_expired` when retention deleted events after `resume`.
    pub(crate) async fn open(
        state: &SharedState,
        wallet: WalletId,
        resume: Option<i64>,
    ) -> Result<Self, ApiError> {
        let feed = state.services.ports().feed.clone();
        // Subscribed first: every event placed from now on comes live; any placed before is
        // in storage, below the head read next (or after the client's last event).
        let live = feed.live();
        let bounds = feed.bounds().await?;
        let (last, caught_up) = match resume {
            Some(last) if last < bounds.pruned_through => {
                return Err(ApiError::new(
                    StatusCode::GONE,
                    "events_expired",
                    format!(
                        "events up to {} were deleted by retention, so some after {last} may be missing; list the wallet's transactions to catch up, then reconnect without Last-Event-ID",
                        bounds.pruned_through
                    ),
                ));
            }
            Some(last) => (last, false),
            None => (bounds.head, true),
        };
        tracing::debug!(wallet_id = %wallet, last, "Event subscription opened");
        Ok(Self {
            feed,
            wallet,
            last,
            caught_up,
            backlog: VecDeque::new(),
            live,
        })
    }

    /// Where the subscription stands: the id of the last event given, or the place it
    /// started after.
    pub(crate) const fn last(&self) -> i64 {
        self.last
    }

    /// The wallet.
    pub(crate) const fn wallet(&self) -> WalletId {
        self.wallet
    }

    /// The next event; `None` when stored events could not be read (the client resumes from
    /// its last event when it reconnects). Cancel-safe: dropped before it returns, it loses
    /// nothing.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.id <= self.last {
                    continue;
                }
                self.last = event.id;
                return Some(event);
            }
            if !self.caught_up {
                match self.feed.after(self.last, self.wallet, PAGE).await {
                    Ok(page) => {
                        self.caught_up = page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
                        self.backlog.extend(page);
                    }
                    Err(e) => {
                        tracing::warn!(wallet_id = %self.wallet, error = %e, "Event subscription ended: stored events could not be read");
                        return None;
                    }
                }
                continue;
            }
            match self.live.next().await {
                Some(event) => {
                    if event.touches(self.wallet) {
                        self.backlog.push_back(event);
                    }
                }
                None => {
                    // Fell behind the live feed: subscribe again, then catch up from storage
                    // (what was missed is there).
                    tracing::debug!(wallet_id = %self.wallet, "Event subscription fell behind; resuming from storage");
                    self.live = self.feed.live();
                    self.caught_up = false;
                }
            }
        }
    }
}

/// One client's SSE stream: its subscription, as long as its credential works and the
/// instance runs.
struct WalletStream {
    state: SharedState,
    credential: String,
    subscription: Subscription,
    ticks: tokio::time::Interval,
    /// Counts the stream while it lives; ends it when the instance shuts down.
    ticket: Ticket,
}

/// Whether `credential` still authenticates (the stream ends when not).
pub(crate) async fn authenticated(state: &SharedState, credential: &str) -> bool {
    match state.services.authenticate(credential).await {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "Event stream ended: its credential no longer works");
            false
        }
    }
}

impl WalletStream {
    /// The next SSE event, or `None` when the stream ends.
    async fn next(mut self) -> Option<(SseEvent, Self)> {
        loop {
            if self.ticket.is_closed() {
                return None;
            }
            tokio::select! {
                event = self.subscription.next() => {
                    let event = event?;
                    // No event reaches a client after its credential's revocation was
                    // acknowledged.
                    if !authenticated(&self.state, &self.credential).await {
                        return None;
                    }
                    let sse = to_sse(self.subscription.wallet(), &event)?;
                    return Some((sse, self));
                }
                _ = self.ticks.tick() => {
                    if !authenticated(&self.state, &self.credential).await {
                        return None;
                    }
                }
                () = self.ticket.closed() => {
                    tracing::debug!(wallet_id = %self.subscription.wallet(), "Event stream ended: the instance is shutting down");
                    return None;
                }
            }
        }
    }
}

/// The SSE event for one outbox event.
fn to_sse(wallet_id: WalletId, event: &Event) -> Option<SseEvent> {
    let data = serde_json::to_string(&event_data(wallet_id, event)).ok()?;
    Some(
        SseEvent::default()
            .event(event.kind.clone())
            .id(event.id.to_string())
            .data(data),
    )
}
