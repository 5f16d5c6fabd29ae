//! The events relay of one instance. PostgreSQL holds every event (the changes' own
//! transactions wrote them); the relay places committed events in the stream and reads what
//! was placed, in order, into this instance's live feed. Redis carries only a doorbell: a
//! relay that placed events rings it so every instance reads them at once; with Redis down
//! each instance still reads them from PostgreSQL at the next poll, so a live stream is late,
//! never missing an event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::{Notify, broadcast};
use waiaas_domain::ports::{EventBounds, EventBus, EventFeed, EventLog};
use waiaas_domain::{Event, RepoError, WalletId};

/// The event-bus channel of the doorbell: a relay placed events.
pub const DOORBELL_CHANNEL: &str = "events:placed";

/// How the relay runs.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// The longest time between two reads of PostgreSQL without a doorbell or a local commit.
    pub poll: Duration,
    /// The most events placed or read in one statement.
    pub batch: u32,
    /// Events a live stream may fall behind before it is ended (it resumes from storage).
    pub buffer: usize,
    /// How long the relay lets local commits gather after the first wakes it, before it
    /// places them: events committed meanwhile are placed by the same statement and
    /// transaction (zero: at once). Reads woken by the doorbell or the poll do not wait.
    pub gather: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            batch: 500,
            buffer: 4096,
            gather: Duration::ZERO,
        }
    }
}

/// One instance's relay: the [`EventFeed`] its services and streams use.
pub struct Relay {
    log: Arc<dyn EventLog>,
    bus: Arc<dyn EventBus>,
    config: RelayConfig,
    kick: Notify,
    /// Sending happens under this lock, so a subscriber taken under it misses nothing later.
    live: Mutex<broadcast::Sender<Event>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay over the stored outbox and the event bus; [`Relay::run`] drives it.
    #[must_use]
    pub fn new(log: Arc<dyn EventLog>, bus: Arc<dyn EventBus>, config: RelayConfig) -> Self {
        let (tx, _) = broadcast::channel(config.buffer.max(1));
        Self {
            log,
            bus,
            config,
            kick: Notify::new(),
            live: Mutex::new(tx),
        }
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, broadcast::Sender<Event>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Places what was committed and reads what was placed, until stopped (abort the task).
    pub async fn run(self: Arc<Self>) {
        let mut cursor = loop {
            match self.log.bounds().await {
                Ok(bounds) => break bounds.head,
                Err(e) => {
                    tracing::warn!(error = %e, "Events relay cannot read where the outbox stands; trying again");
                    tokio::time::sleep(self.config.poll).await;
                }
            }
        };
        let mut doorbell: Option<BoxStream<'static, Vec<u8>>> = None;
        loop {
            if doorbell.is_none() {
                doorbell = self.bus.subscribe(DOORBELL_CHANNEL).await.ok();
            }
            let rang = async {
                match doorbell.as_mut() {
                    Some(d) => d.next().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            let kicked = tokio::select! {
                () = self.kick.notified() => true,
                open = rang => {
                    if !open {
                        doorbell = None;
                    }
                    false
                }
                () = tokio::time::sleep(self.config.poll) => false,
            };
            if kicked && !self.config.gather.is_zero() {
                tokio::time::sleep(self.config.gather).await;
            }
            if self.place().await
                && let Err(e) = self.bus.publish(DOORBELL_CHANNEL, Vec::new()).await
            {
                tracing::debug!(error = %e, "Events doorbell not rung; other instances poll");
            }
            cursor = self.read(cursor).await;
        }
    }

    /// Places every committed event that has no place yet; whether it placed any.
    async fn place(&self) -> bool {
        let mut placed = false;
        loop {
            match self.log.sequence(self.config.batch).await {
                Ok(n) => {
                    placed |= n > 0;
                    if n < u64::from(self.config.batch) {
                        return placed;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Placing events failed; the next run tries again");
                    return placed;
                }
            }
        }
    }

    /// Reads what was placed after `cursor` into the live feed; the new cursor.
    async fn read(&self, mut cursor: i64) -> i64 {
        loop {
            let events = match self.log.after(cursor, None, self.config.batch).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "Reading events failed; the next run tries again");
                    return cursor;
                }
            };
            let full = events.len() >= usize::try_from(self.config.batch).unwrap_or(usize::MAX);
            let tx = self.sender();
            for event in events {
                cursor = event.id;
                // No receiver is not an error: nobody listens on this instance.
                let _ = tx.send(event);
            }
            drop(tx);
            if !full {
                return cursor;
            }
        }
    }
}

#[async_trait]
impl EventFeed for Relay {
    fn committed(&self) {
        self.kick.notify_one();
    }

    fn live(&self) -> BoxStream<'static, Event> {
        let rx = self.sender().subscribe();
        tokio_stream::wrappers::BroadcastStream::new(rx)
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok()))
            .boxed()
    }

    async fn bounds(&self) -> Result<EventBounds, RepoError> {
        self.log.bounds().await
    }

    async fn after(
        &self,
        after: i64,
        wallet: WalletId,
        limit: u32,
    ) -> Result<Vec<Event>, RepoError> {
        self.log.after(after, Some(wallet), limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::LocalEventBus;

    /// An outbox that counts the commits waiting to be placed and the statements placing them.
    #[derive(Default)]
    struct Outbox {
        waiting: AtomicU64,
        statements: AtomicU64,
        placed: AtomicU64,
    }

    #[async_trait]
    impl EventLog for Outbox {
        async fn sequence(&self, _limit: u32) -> Result<u64, RepoError> {
            let n = self.waiting.swap(0, Ordering::SeqCst);
            if n > 0 {
                self.statements.fetch_add(1, Ordering::SeqCst);
                self.placed.fetch_add(n, Ordering::SeqCst);
            }
            Ok(n)
        }

        async fn after(
            &self,
            _after: i64,
            _wallet: Option<WalletId>,
            _limit: u32,
        ) -> Result<Vec<Event>, RepoError> {
            Ok(Vec::new())
        }

        async fn bounds(&self) -> Result<EventBounds, RepoError> {
            Ok(EventBounds::default())
        }

        async fn delete_before(
            &self,
            _before: chrono::DateTime<chrono::Utc>,
            _limit: u32,
        ) -> Result<u64, RepoError> {
            Ok(0)
        }
    }

    /// Five commits 30 ms apart, with the relay's `gather`; how many statements placed them.
    async fn statements_for_five_commits(gather: Duration) -> u64 {
        let outbox = Arc::new(Outbox::default());
        let relay = Arc::new(Relay::new(
            outbox.clone(),
            Arc::new(LocalEventBus::default()),
            RelayConfig {
                poll: Duration::from_secs(60),
                gather,
                ..RelayConfig::default()
            },
        ));
        let task = tokio::spawn(relay.clone().run());
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..5 {
            outbox.waiting.fetch_add(1, Ordering::SeqCst);
            relay.committed();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while outbox.placed.load(Ordering::SeqCst) < 5 {
            assert!(tokio::time::Instant::now() < deadline, "events not placed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
        outbox.statements.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn commits_within_the_gather_window_are_placed_by_one_statement() {
        // The five arrive within 120 ms of the first, well inside the window.
        assert_eq!(statements_for_five_commits(Duration::from_secs(1)).await, 1);
    }

    #[tokio::test]
    async fn without_a_gather_window_commits_are_placed_as_they_come() {
        // Five at once would take a stall of 120 ms; two or more statements is the point.
        assert!(statements_for_five_commits(Duration::ZERO).await > 1);
    }
}
