//! The event bus over Redis pub/sub, and the tasks that follow both connections' state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use fred::clients::{Client, SubscriberClient};
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Key;
use fred::types::config::Server;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use waiaas_domain::ports::{BusStatus, EventBus, EventBusError};

use crate::client::Redis;
use crate::error::RedisError;

/// What subscribers can know about the subscription connection.
#[derive(Debug, Default)]
pub(crate) struct BusState {
    /// Up, and every tracked channel subscribed again since the last (re)connection.
    connected: AtomicBool,
    /// Bumped after every (re)connection has resubscribed, and when a subscription stream
    /// fell behind and lost messages: either way messages may have been missed.
    generation: AtomicU64,
}

impl BusState {
    fn missed_messages(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// One event of a client's connection.
enum Event {
    /// A connection failed (or some were missed): the client is down.
    Down(Option<(FredError, Option<Server>)>),
    /// A connection was (re)established, to this server if known.
    Up(Option<Server>),
}

/// Waits for the next connection event; `None` when the client or this crate is shutting down.
async fn next_event(
    errors: &mut Receiver<(FredError, Option<Server>)>,
    reconnects: &mut Receiver<Server>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Event> {
    tokio::select! {
        biased;
        _ = stop.changed() => None,
        // Errors first: an error and the reconnection after it, seen together, must leave
        // the connection up.
        event = errors.recv() => match event {
            Ok(error) => Some(Event::Down(Some(error))),
            Err(RecvError::Lagged(_)) => Some(Event::Down(None)),
            Err(RecvError::Closed) => None,
        },
        event = reconnects.recv() => match event {
            Ok(server) => Some(Event::Up(Some(server))),
            Err(RecvError::Lagged(_)) => Some(Event::Up(None)),
            Err(RecvError::Closed) => None,
        },
    }
}

/// Logs the command connection's losses and recoveries (a lost connection once, not on every
/// failed attempt to get it back).
pub(crate) fn watch_client(client: &Client, target: String, mut stop: watch::Receiver<bool>) {
    let (mut errors, mut reconnects) = (client.error_rx(), client.reconnect_rx());
    tokio::spawn(async move {
        let mut up = false;
        while let Some(event) = next_event(&mut errors, &mut reconnects, &mut stop).await {
            match event {
                Event::Down(error) => {
                    let (error, server) = match error {
                        Some((e, s)) => (e.to_string(), s.map(|s| s.to_string())),
                        None => ("several errors".to_owned(), None),
                    };
                    let server = server.unwrap_or_default();
                    if up {
                        tracing::warn!(redis = %target, %server, %error, "Redis connection lost");
                    } else {
                        tracing::debug!(
                            redis = %target, %server, %error,
                            "Redis still unreachable"
                        );
                    }
                    up = false;
                }
                Event::Up(server) => {
                    let server = server.map(|s| s.to_string()).unwrap_or_default();
                    tracing::info!(redis = %target, %server, "Redis connected");
                    up = true;
                }
            }
        }
    });
}

/// Follows the subscriber connection: marks the bus down on a connection error; on every
/// (re)connection subscribes to the tracked channels again, then bumps the generation and
/// marks it up. Doing it in that order means a consumer that saw the new generation cannot
/// miss a message published after it looked.
pub(crate) fn watch_subscriber(
    subscriber: &SubscriberClient,
    state: Arc<BusState>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut errors, mut reconnects) = (subscriber.error_rx(), subscriber.reconnect_rx());
    let subscriber = subscriber.clone();
    tokio::spawn(async move {
        while let Some(event) = next_event(&mut errors, &mut reconnects, &mut stop).await {
            match event {
                Event::Down(_) => state.connected.store(false, Ordering::Release),
                Event::Up(_) => match resubscribe(&subscriber).await {
                    Ok(()) => {
                        state.missed_messages();
                        state.connected.store(true, Ordering::Release);
                    }
                    Err(error) => {
                        // The connection is not usable; the next reconnection retries.
                        tracing::warn!(%error, "Redis pub/sub resubscription failed");
                        state.connected.store(false, Ordering::Release);
                    }
                },
            }
        }
    });
}

/// Subscribes again to every channel the subscriber tracks (none is fine).
async fn resubscribe(subscriber: &SubscriberClient) -> Result<(), FredError> {
    let channels: Vec<Key> = subscriber
        .tracked_channels()
        .into_iter()
        .map(Key::from)
        .collect();
    if !channels.is_empty() {
        subscriber.subscribe(channels).await?;
    }
    tracing::debug!(
        channels = subscriber.tracked_channels().len(),
        "Redis pub/sub subscribed"
    );
    Ok(())
}

#[async_trait]
impl EventBus for Redis {
    #[tracing::instrument(level = "debug", skip(self, payload), fields(bytes = payload.len()))]
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), EventBusError> {
        let channel = self.key(channel);
        let _receivers: i64 = self
            .inner
            .cmd
            .publish(channel, payload)
            .await
            .map_err(RedisError::from)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EventBusError> {
        let subscriber = &self.inner.subscriber;
        if !subscriber.is_connected() {
            return Err(RedisError::Unavailable("pub/sub connection is down".to_owned()).into());
        }
        let channel = self.key(channel);
        // Listen before subscribing, so nothing published right after SUBSCRIBE is lost.
        let messages = BroadcastStream::new(subscriber.message_rx());
        // The subscriber client tracks the channel and (through `watch_subscriber`)
        // subscribes to it again after every reconnection. Channels stay subscribed for the
        // life of the connection: subscriptions are few and long-lived.
        subscriber
            .subscribe(channel.clone())
            .await
            .map_err(RedisError::from)?;
        let state = Arc::clone(&self.inner.bus);
        let stream = messages.filter_map(move |message| {
            let payload = match message {
                Ok(m) if *m.channel == *channel => m.value.into_owned_bytes(),
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(lost)) => {
                    tracing::warn!(
                        channel = %channel, lost,
                        "Redis pub/sub consumer fell behind: messages lost"
                    );
                    state.missed_messages();
                    None
                }
            };
            futures::future::ready(payload)
        });
        Ok(stream.boxed())
    }

    fn status(&self) -> BusStatus {
        let state = &self.inner.bus;
        BusStatus {
            connected: state.connected.load(Ordering::Acquire)
                && self.inner.subscriber.is_connected(),
            generation: state.generation.load(Ordering::Acquire),
        }
    }
}
