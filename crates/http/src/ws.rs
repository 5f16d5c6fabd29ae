//! `GET /v1/ws`: the events of several wallets over one WebSocket, with the resume semantics
//! of the SSE streams. The upgrade request authenticates like every call (`Authorization:
//! Bearer`); then the client sends JSON text messages:
//!
//! - `{"type": "subscribe", "wallet_id": "<uuid>", "after": <event id>?}`: the wallet's events
//!   after `after` (read from PostgreSQL when needed), then the live ones, each once and in
//!   order; without `after`, those placed from now on. Answered
//!   `{"type": "subscribed", "wallet_id", "after"}` (where it starts).
//! - `{"type": "unsubscribe", "wallet_id": "<uuid>"}`: answered `{"type": "unsubscribed", …}`.
//!
//! Events come as `{"type": "event", "event": {"id", "type", "created_at", "wallet_id",
//! <subject>}}` (the SSE stream's data); a client keeps the last `id` per wallet and
//! subscribes with it as `after` when it reconnects. A refused message is answered
//! `{"type": "error", "code", "message", "wallet_id"?}` (`invalid_message`, `not_found`,
//! `already_subscribed`, `too_many_subscriptions`, `events_expired`, `unavailable`, …) and
//! the socket stays open.
//!
//! The socket is one stream in the instance's bounds and keeps its agent `online`. It closes
//! with code 4401 when its credential is revoked or expires (checked before every event and
//! every few seconds), and 1001 when the instance shuts down.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use waiaas_domain::tenant::{self, Tenant};
use waiaas_domain::{Event, Principal, WalletId};

use crate::SharedState;
use crate::auth::{Caller, bearer};
use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::sse::{Subscription, authenticated, event_data, interval};
use crate::streams::Ticket;

/// Wallets one socket may subscribe to at once.
const MAX_SUBSCRIPTIONS: usize = 100;

/// The largest message a client may send.
const MAX_MESSAGE: usize = 16 * 1024;

/// A client that does not take a message within this is cut off (its events stay stored:
/// it resumes when it reconnects).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Close code: the credential no longer works.
const CLOSE_UNAUTHENTICATED: u16 = 4401;

/// Close code: the instance is going away.
const CLOSE_GOING_AWAY: u16 = 1001;

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Subscribe {
        wallet_id: Uuid,
        #[serde(default)]
        after: Option<i64>,
    },
    Unsubscribe {
        wallet_id: Uuid,
    },
}

/// Opens a WebSocket for the events of the wallets the caller subscribes to (see the module
/// documentation for its messages).
#[utoipa::path(get, path = "/v1/ws", tag = "wallets",
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "No valid credential", body = ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 429, description = "Too many streams open: `too_many_streams` (this principal's) or `instance_streams_full`", body = ErrorBody),
        (status = 503, description = "The instance is shutting down", body = ErrorBody),
    ))]
pub(crate) async fn websocket(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            format!("this endpoint speaks WebSocket only: {}", e.body_text()),
        )
    })?;
    let credential = bearer(&headers)
        .ok_or_else(ApiError::unauthenticated)?
        .to_owned();
    let ticket = state.streams.admit(&caller.principal)?;
    let principal = caller.principal;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        // The socket lives in a task of its own: it acts for the caller's owner too.
        .on_upgrade(move |socket| {
            tenant::scope(Tenant::Owner(principal.owner_id()), async move {
                Socket {
                    state,
                    principal,
                    credential,
                    ticket,
                    socket,
                    subscriptions: SelectAll::new(),
                    cancels: HashMap::new(),
                }
                .run()
                .await;
            })
        }))
}

/// What one subscription yields: its wallet, and an event (`None`: it ended because stored
/// events could not be read).
type Item = (WalletId, Option<Event>);

struct Socket {
    state: SharedState,
    principal: Principal,
    credential: String,
    ticket: Ticket,
    socket: WebSocket,
    subscriptions: SelectAll<BoxStream<'static, Item>>,
    /// Dropping a wallet's sender ends its subscription.
    cancels: HashMap<WalletId, tokio::sync::oneshot::Sender<()>>,
}

/// Why the socket ends.
enum End {
    /// The client closed it or went away.
    Client,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

impl Socket {
    async fn run(mut self) {
        let mut ticks = interval();
        let end = loop {
            let step = tokio::select! {
                message = self.socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => self.command(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => {
                        self.error(None, "invalid_message", "messages are JSON text").await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => Err(End::Client),
                },
                Some((wallet, event)) = self.subscriptions.next(), if !self.subscriptions.is_empty() => {
                    self.deliver(wallet, event).await
                }
                _ = ticks.tick() => {
                    if authenticated(&self.state, &self.credential).await {
                        Ok(())
                    } else {
                        Err(End::Close(CLOSE_UNAUTHENTICATED, "the credential no longer works"))
                    }
                }
                () = self.ticket.closed() => {
                    Err(End::Close(CLOSE_GOING_AWAY, "the instance is shutting down; reconnect"))
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                self.socket.send(Message::Close(Some(frame))),
            )
            .await;
        }
        tracing::debug!("WebSocket closed");
    }

    /// Sends one message; a client that does not take it in time is cut off.
    async fn send(&mut self, value: serde_json::Value) -> Result<(), End> {
        let text = value.to_string();
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Client),
            Err(_) => {
                tracing::debug!("WebSocket cut off: the client does not read");
                Err(End::Client)
            }
        }
    }

    async fn error(
        &mut self,
        wallet: Option<WalletId>,
        code: &str,
        message: &str,
    ) -> Result<(), End> {
        let mut body = json!({"type": "error", "code": code, "message": message});
        if let Some(w) = wallet {
            body["wallet_id"] = json!(w);
        }
        self.send(body).await
    }

    async fn deliver(&mut self, wallet: WalletId, event: Option<Event>) -> Result<(), End> {
        let Some(event) = event else {
            self.cancels.remove(&wallet);
            return self
                .error(
                    Some(wallet),
                    "unavailable",
                    "stored events could not be read; subscribe again with the last event's id as `after`",
                )
                .await;
        };
        // No event reaches a client after its credential's revocation was acknowledged.
        if !authenticated(&self.state, &self.credential).await {
            return Err(End::Close(
                CLOSE_UNAUTHENTICATED,
                "the credential no longer works",
            ));
        }
        self.send(json!({"type": "event", "event": event_data(wallet, &event)}))
            .await
    }

    async fn command(&mut self, text: &str) -> Result<(), End> {
        let command = match serde_json::from_str::<Command>(text) {
            Ok(c) => c,
            Err(e) => {
                let message = format!(
                    "expected {{\"type\": \"subscribe\", \"wallet_id\", \"after\"?}} or {{\"type\": \"unsubscribe\", \"wallet_id\"}}: {e}"
                );
                return self.error(None, "invalid_message", &message).await;
            }
        };
        match command {
            Command::Subscribe { wallet_id, after } => {
                let wallet = WalletId::from_uuid(wallet_id);
                self.subscribe(wallet, after).await
            }
            Command::Unsubscribe { wallet_id } => {
                let wallet = WalletId::from_uuid(wallet_id);
                if self.cancels.remove(&wallet).is_none() {
                    return self
                        .error(
                            Some(wallet),
                            "not_subscribed",
                            "not subscribed to this wallet",
                        )
                        .await;
                }
                self.send(json!({"type": "unsubscribed", "wallet_id": wallet}))
                    .await
            }
        }
    }

    async fn subscribe(&mut self, wallet: WalletId, after: Option<i64>) -> Result<(), End> {
        if after.is_some_and(|a| a < 0) {
            return self
                .error(
                    Some(wallet),
                    "invalid_message",
                    "`after` is the id of an event (a non-negative integer)",
                )
                .await;
        }
        if self.cancels.contains_key(&wallet) {
            return self
                .error(
                    Some(wallet),
                    "already_subscribed",
                    "already subscribed to this wallet; unsubscribe first to start elsewhere",
                )
                .await;
        }
        if self.cancels.len() >= MAX_SUBSCRIPTIONS {
            let message = format!("at most {MAX_SUBSCRIPTIONS} wallets per socket");
            return self
                .error(Some(wallet), "too_many_subscriptions", &message)
                .await;
        }
        let opened = match self
            .state
            .services
            .get_wallet(&self.principal, wallet)
            .await
        {
            Ok(_) => Subscription::open(&self.state, wallet, after).await,
            Err(e) => Err(ApiError::from(e)),
        };
        let subscription = match opened {
            Ok(s) => s,
            Err(e) => {
                let (code, message) = (e.code(), e.message().to_owned());
                return self.error(Some(wallet), code, &message).await;
            }
        };
        let start = subscription.last();
        let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        let events = futures::stream::unfold(Some(subscription), |s| async move {
            let mut s = s?;
            let wallet = s.wallet();
            match s.next().await {
                Some(event) => Some(((wallet, Some(event)), Some(s))),
                None => Some(((wallet, None), None)),
            }
        })
        .take_until(cancelled.map(|_| ()))
        .boxed();
        self.subscriptions.push(events);
        self.cancels.insert(wallet, cancel);
        self.send(json!({"type": "subscribed", "wallet_id": wallet, "after": start}))
            .await
    }
}
