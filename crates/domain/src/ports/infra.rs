//! Infrastructure ports: rate limiting, coordination locks, the event bus and the clock.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// A rate: `burst` requests at once, refilled at `per_second` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests allowed per second on average.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
}

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// When refused, how long to wait before a retry can succeed.
    pub retry_after: Duration,
}

/// A rate-limiter failure; the caller falls back to a local limiter.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct RateLimitError(pub String);

/// Limits requests per principal.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `subject` (e.g. `agent:<uuid>`) and says whether it may go on.
    ///
    /// # Errors
    /// `RateLimitError` when the shared limiter cannot answer.
    async fn check(&self, subject: &str, rate: Rate) -> Result<RateDecision, RateLimitError>;
}

/// A held lock: the resource and the random token that proves ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLease {
    /// The locked resource, e.g. `job:name:sweep-sessions`.
    pub resource: String,
    /// The owner's random token.
    pub token: String,
}

/// A lock-manager failure.
#[derive(Debug, thiserror::Error)]
#[error("lock manager unavailable: {0}")]
pub struct LockError(pub String);

/// Short-lived coordination locks with a TTL, for jobs only: never for money (PostgreSQL
/// row locks protect money).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LockManager: Send + Sync {
    /// Takes the lock if free; `None` when someone else holds it.
    ///
    /// # Errors
    /// `LockError` when the lock store cannot answer.
    async fn acquire(&self, resource: &str, ttl: Duration) -> Result<Option<LockLease>, LockError>;

    /// Extends a held lock; false when it is no longer ours.
    ///
    /// # Errors
    /// `LockError` when the lock store cannot answer.
    async fn extend(&self, lease: &LockLease, ttl: Duration) -> Result<bool, LockError>;

    /// Releases a held lock; false when it was no longer ours.
    ///
    /// # Errors
    /// `LockError` when the lock store cannot answer.
    async fn release(&self, lease: &LockLease) -> Result<bool, LockError>;
}

/// An event-bus failure.
#[derive(Debug, thiserror::Error)]
#[error("event bus unavailable: {0}")]
pub struct EventBusError(pub String);

/// Publish/subscribe between instances: cache invalidations and live wallet events.
/// Delivery is best effort: a subscriber that was disconnected misses messages and must
/// treat a reconnect as "anything may have happened".
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes a message on a channel.
    ///
    /// # Errors
    /// `EventBusError` when the bus cannot take it.
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), EventBusError>;

    /// Receives the messages published on a channel from now on.
    ///
    /// # Errors
    /// `EventBusError` when the bus cannot subscribe.
    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EventBusError>;

    /// Whether messages are flowing right now, and how many times the bus has (re)connected:
    /// a subscriber that sees the generation change may have missed messages.
    fn status(&self) -> BusStatus;
}

/// The connection state of an event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusStatus {
    /// Messages are flowing.
    pub connected: bool,
    /// Bumped on every (re)connection.
    pub generation: u64,
}

/// The time: a port so tests can fix it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Where the stored stream of events stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventBounds {
    /// The last place given so far (0 when none).
    pub head: i64,
    /// Events up to this place may have been deleted by retention (0 when none was).
    pub pruned_through: i64,
}

/// The outbox as stored: events written by the changes' own transactions, placed in the
/// stream by [`EventLog::sequence`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Places up to `limit` committed events that have no place yet after every placed one,
    /// in one transaction serialised with every other call (so a reader that has seen place
    /// `n` never later finds a new event below `n`); returns how many it placed.
    ///
    /// # Errors
    /// `RepoError` when storage fails (nothing is placed then).
    async fn sequence(&self, limit: u32) -> Result<u64, crate::RepoError>;

    /// Placed events after place `after`, oldest first, at most `limit`; of `wallet` only
    /// when given.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn after(
        &self,
        after: i64,
        wallet: Option<crate::WalletId>,
        limit: u32,
    ) -> Result<Vec<crate::Event>, crate::RepoError>;

    /// Where the stored stream stands.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn bounds(&self) -> Result<EventBounds, crate::RepoError>;

    /// Deletes up to `limit` placed events created before `before`, lowest places first, with
    /// their finished webhook deliveries, and records the highest place deleted; returns how
    /// many events.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn delete_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, crate::RepoError>;
}

/// This instance's view of the outbox: the live feed its streams listen to, and the stored
/// events they resume from.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventFeed: Send + Sync {
    /// Changes with events were just committed here: place and fan them out now rather than
    /// at the next poll. Never blocks, never fails.
    fn committed(&self);

    /// The events this instance reads from now on, in place order, each once. Every event
    /// placed after this call comes on it (an event placed before is in storage). The stream
    /// ends when its reader falls too far behind; the reader then resumes from storage.
    fn live(&self) -> BoxStream<'static, crate::Event>;

    /// Where the stored stream stands.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn bounds(&self) -> Result<EventBounds, crate::RepoError>;

    /// Stored events of `wallet` after place `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// `RepoError` when storage fails.
    async fn after(
        &self,
        after: i64,
        wallet: crate::WalletId,
        limit: u32,
    ) -> Result<Vec<crate::Event>, crate::RepoError>;
}

/// What is known of an agent's presence: `online` while it holds an event stream open
/// somewhere, and when it was last seen so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentPresence {
    /// Whether a stream of the agent is open on some instance (give or take the refresh
    /// interval of a stream that was cut off without closing).
    pub online: bool,
    /// When a stream of the agent was last seen open, if ever (within the store's memory).
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Presence of agents, kept beside the streams (in Redis: it is live state, not a record).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Presence: Send + Sync {
    /// Stream `stream` of `agent` is open (again, every refresh), for at most `ttl` unless
    /// refreshed. Best effort: a failure only makes presence unknown.
    ///
    /// # Errors
    /// When the store does not answer.
    async fn open(
        &self,
        agent: crate::AgentId,
        stream: uuid::Uuid,
        ttl: Duration,
    ) -> Result<(), crate::RepoError>;

    /// Stream `stream` of `agent` closed.
    ///
    /// # Errors
    /// When the store does not answer.
    async fn close(
        &self,
        agent: crate::AgentId,
        stream: uuid::Uuid,
    ) -> Result<(), crate::RepoError>;

    /// The presence of each agent, in order.
    ///
    /// # Errors
    /// When the store does not answer: presence is then unknown (shown as `null`, never
    /// guessed).
    async fn presence(
        &self,
        agents: &[crate::AgentId],
    ) -> Result<Vec<AgentPresence>, crate::RepoError>;
}
