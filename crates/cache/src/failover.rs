//! Redis-backed ports with their fallbacks: while Redis fails, the rate limiter runs in
//! process, locks are PostgreSQL advisory locks, and events go over an in-process broadcast.
//! A breaker per port decides; each switch is logged once and counted (by the breaker), not
//! per request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use waiaas_domain::ports::{
    BusStatus, EventBus, EventBusError, LockError, LockLease, LockManager, Rate, RateDecision,
    RateLimitError, RateLimiter,
};

use crate::breaker::Breaker;
use crate::local::{LocalEventBus, LocalRateLimiter};

async fn guarded<T, E: std::fmt::Display>(
    breaker: &Breaker,
    timeout: Duration,
    component: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    if !breaker.allow() {
        return None;
    }
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => {
            breaker.success();
            Some(v)
        }
        Ok(Err(e)) => {
            breaker.failure();
            metrics::counter!("waiaas_fallback_calls_total", "component" => component, "reason" => "error").increment(1);
            tracing::debug!(component, error = %e, "Primary failed, using the fallback");
            None
        }
        Err(_) => {
            breaker.failure();
            metrics::counter!("waiaas_fallback_calls_total", "component" => component, "reason" => "timeout").increment(1);
            None
        }
    }
}

/// The shared (Redis) limiter, or an in-process one while it fails. The local limiter only
/// sees this instance's requests: during an outage the effective limit is per instance.
pub struct FailoverRateLimiter {
    primary: Arc<dyn RateLimiter>,
    fallback: LocalRateLimiter,
    breaker: Breaker,
    timeout: Duration,
}

impl std::fmt::Debug for FailoverRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverRateLimiter")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl FailoverRateLimiter {
    /// Wraps `primary`.
    #[must_use]
    pub fn new(
        primary: Arc<dyn RateLimiter>,
        failures: u32,
        open_for: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            primary,
            fallback: LocalRateLimiter::new(),
            breaker: Breaker::new("ratelimit", failures, open_for),
            timeout,
        }
    }
}

#[async_trait]
impl RateLimiter for FailoverRateLimiter {
    async fn check(&self, subject: &str, rate: Rate) -> Result<RateDecision, RateLimitError> {
        if let Some(d) = guarded(
            &self.breaker,
            self.timeout,
            "ratelimit",
            self.primary.check(subject, rate),
        )
        .await
        {
            return Ok(d);
        }
        self.fallback.check(subject, rate).await
    }
}

/// The token prefix marking a lock held through the fallback.
const FALLBACK_TOKEN: &str = "pg:";

/// Redis locks, or PostgreSQL advisory locks while Redis fails. Locks coordinate jobs only:
/// during a switch two holders may briefly coexist, which is why money never relies on them.
pub struct FailoverLocks {
    primary: Arc<dyn LockManager>,
    fallback: Arc<dyn LockManager>,
    breaker: Breaker,
    timeout: Duration,
}

impl std::fmt::Debug for FailoverLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverLocks")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl FailoverLocks {
    /// Wraps `primary` with `fallback`.
    #[must_use]
    pub fn new(
        primary: Arc<dyn LockManager>,
        fallback: Arc<dyn LockManager>,
        failures: u32,
        open_for: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            primary,
            fallback,
            breaker: Breaker::new("locks", failures, open_for),
            timeout,
        }
    }
}

fn unmark(lease: &LockLease) -> Option<LockLease> {
    lease.token.strip_prefix(FALLBACK_TOKEN).map(|t| LockLease {
        resource: lease.resource.clone(),
        token: t.to_owned(),
    })
}

#[async_trait]
impl LockManager for FailoverLocks {
    async fn acquire(&self, resource: &str, ttl: Duration) -> Result<Option<LockLease>, LockError> {
        if let Some(got) = guarded(
            &self.breaker,
            self.timeout,
            "locks",
            self.primary.acquire(resource, ttl),
        )
        .await
        {
            return Ok(got);
        }
        Ok(self
            .fallback
            .acquire(resource, ttl)
            .await?
            .map(|l| LockLease {
                resource: l.resource,
                token: format!("{FALLBACK_TOKEN}{}", l.token),
            }))
    }

    async fn extend(&self, lease: &LockLease, ttl: Duration) -> Result<bool, LockError> {
        match unmark(lease) {
            Some(l) => self.fallback.extend(&l, ttl).await,
            None => self.primary.extend(lease, ttl).await,
        }
    }

    async fn release(&self, lease: &LockLease) -> Result<bool, LockError> {
        match unmark(lease) {
            Some(l) => self.fallback.release(&l).await,
            None => self.primary.release(lease).await,
        }
    }
}

/// Redis pub/sub across instances, or an in-process broadcast while it fails (events then
/// reach this instance's subscribers only). Subscribers hear both. Publishing only queues the
/// message: a background task sends it, in order, so a request never waits on the bus (events
/// are best effort; a full queue drops and counts). The sender takes whatever has queued up
/// (up to [`BATCH`] messages) and issues it at once, so the commands share round trips on the
/// connection instead of waiting for each other: under load the queue drains as fast as it
/// fills, where one round trip per message fell behind and tripped the breaker.
pub struct FailoverEventBus {
    shared: Arc<BusShared>,
    outbox: tokio::sync::mpsc::Sender<(String, Vec<u8>)>,
}

struct BusShared {
    primary: Arc<dyn EventBus>,
    local: LocalEventBus,
    breaker: Breaker,
    timeout: Duration,
}

impl std::fmt::Debug for FailoverEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverEventBus")
            .field("breaker", &self.shared.breaker)
            .finish_non_exhaustive()
    }
}

/// Messages waiting to be published at most.
const OUTBOX: usize = 10_000;

/// Messages the sender issues together at most.
pub const BATCH: usize = 256;

impl FailoverEventBus {
    /// Wraps `primary`; must be called within a tokio runtime (it starts the sender task).
    #[must_use]
    pub fn new(
        primary: Arc<dyn EventBus>,
        failures: u32,
        open_for: Duration,
        timeout: Duration,
    ) -> Self {
        let shared = Arc::new(BusShared {
            primary,
            local: LocalEventBus::default(),
            breaker: Breaker::new("eventbus", failures, open_for),
            timeout,
        });
        let (outbox, mut queue) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(OUTBOX);
        let sender = shared.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while queue.recv_many(&mut batch, BATCH).await > 0 {
                sender.send_all(&mut batch).await;
            }
        });
        Self { shared, outbox }
    }
}

impl BusShared {
    /// Publishes `batch` (emptying it): all of it is issued to Redis together, in order (the
    /// futures are polled in order, so the commands are queued on the connection in order);
    /// each message Redis did not take goes to this instance's subscribers instead.
    async fn send_all(&self, batch: &mut Vec<(String, Vec<u8>)>) {
        let sent = futures::future::join_all(batch.iter().map(|(channel, payload)| {
            guarded(
                &self.breaker,
                self.timeout,
                "eventbus",
                self.primary.publish(channel, payload.clone()),
            )
        }))
        .await;
        for ((channel, payload), sent) in batch.drain(..).zip(sent) {
            if sent.is_none() {
                let _ = self.local.publish(&channel, payload).await;
            }
        }
    }
}

#[async_trait]
impl EventBus for FailoverEventBus {
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), EventBusError> {
        if self.outbox.try_send((channel.to_owned(), payload)).is_err() {
            metrics::counter!("waiaas_events_dropped_total").increment(1);
            return Err(EventBusError("the event outbox is full".into()));
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Vec<u8>>, EventBusError> {
        let mut local = self.shared.local.subscribe(channel).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(256);
        let local_tx = tx.clone();
        tokio::spawn(async move {
            while let Some(m) = local.next().await {
                if local_tx.send(m).await.is_err() {
                    return;
                }
            }
        });
        // The remote subscription is (re)tried until it works, for as long as anyone listens.
        let (primary, channel, timeout) = (
            self.shared.primary.clone(),
            channel.to_owned(),
            self.shared.timeout,
        );
        tokio::spawn(async move {
            while !tx.is_closed() {
                if let Ok(Ok(mut remote)) =
                    tokio::time::timeout(timeout * 10, primary.subscribe(&channel)).await
                {
                    while let Some(m) = remote.next().await {
                        if tx.send(m).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }

    fn status(&self) -> BusStatus {
        self.shared.primary.status()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A primary bus that takes each message when called (as a Redis client queues the
    /// command), answers after a round trip, or fails every call.
    #[derive(Default)]
    struct Remote {
        taken: Mutex<Vec<(String, Vec<u8>)>>,
        down: bool,
    }

    #[async_trait]
    impl EventBus for Remote {
        async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), EventBusError> {
            if self.down {
                return Err(EventBusError("connection refused".into()));
            }
            self.taken
                .lock()
                .expect("not poisoned")
                .push((channel.to_owned(), payload));
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        }

        async fn subscribe(&self, _: &str) -> Result<BoxStream<'static, Vec<u8>>, EventBusError> {
            Err(EventBusError("not in this test".into()))
        }

        fn status(&self) -> BusStatus {
            BusStatus {
                connected: !self.down,
                generation: 1,
            }
        }
    }

    fn message(i: u32) -> (String, Vec<u8>) {
        (format!("wallet:{}", i % 3), i.to_be_bytes().to_vec())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_reaches_redis_whole_and_in_order() {
        let remote = Arc::new(Remote::default());
        let bus = FailoverEventBus::new(
            remote.clone(),
            3,
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        for i in 0..2_000 {
            let (channel, payload) = message(i);
            bus.publish(&channel, payload).await.expect("queued");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while remote.taken.lock().expect("not poisoned").len() < 2_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the outbox did not drain"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let taken = remote.taken.lock().expect("not poisoned").clone();
        assert_eq!(taken, (0..2_000).map(message).collect::<Vec<_>>());
        assert_eq!(
            bus.shared.breaker.state(),
            crate::breaker::BreakerState::Closed
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_redis_fails_subscribers_here_still_hear_every_event_once() {
        let remote = Arc::new(Remote {
            down: true,
            ..Remote::default()
        });
        let bus = FailoverEventBus::new(remote, 3, Duration::from_secs(60), Duration::from_secs(5));
        let mut events = bus.subscribe("wallet:1").await.expect("subscribed");
        let sent: Vec<Vec<u8>> = (0..300)
            .map(message)
            .filter(|(c, _)| c == "wallet:1")
            .map(|(_, p)| p)
            .collect();
        for i in 0..300 {
            let (channel, payload) = message(i);
            bus.publish(&channel, payload).await.expect("queued");
        }
        let mut heard = Vec::new();
        while heard.len() < sent.len() {
            let next = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream stays open");
            heard.push(next);
        }
        assert_eq!(heard, sent);
        let extra = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
        assert!(extra.is_err(), "no event is delivered twice: {extra:?}");
    }
}
