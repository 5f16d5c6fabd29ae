//! The open event streams of this instance (SSE and WebSocket alike): at most
//! `per_principal` per credential's principal and `per_instance` in all (beyond either, a
//! `429` with its code), all ended at once when the instance shuts down, and the presence of
//! the agents that hold them (refreshed while a stream lives, in Redis when it is there).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::watch;
use waiaas_domain::ports::{AgentPresence, Presence};
use waiaas_domain::{AgentId, Principal};

use crate::error::ApiError;

/// How long an agent counts as online after its stream's last refresh.
const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// How often a live stream refreshes its agent's presence.
const PRESENCE_REFRESH: Duration = Duration::from_secs(10);

/// How long a presence read may take before presence is shown as unknown.
const PRESENCE_READ: Duration = Duration::from_millis(500);

/// The `Retry-After` of a refused stream, in seconds.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How many streams may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Per principal (an owner or an agent, whatever credential it uses).
    pub per_principal: usize,
    /// On this instance, in all.
    pub per_instance: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            per_principal: 16,
            per_instance: 10_000,
        }
    }
}

/// The streams of an instance. Cheap to clone; every clone is the same registry.
#[derive(Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

struct Inner {
    limits: StreamLimits,
    open: Mutex<Open>,
    closing: watch::Sender<bool>,
    presence: Option<Arc<dyn Presence>>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_principal: HashMap<String, usize>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("limits", &self.inner.limits)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

impl Streams {
    /// A registry with these limits; `presence` is where agents' presence is kept (`None`:
    /// nowhere, and reads show it as unknown).
    #[must_use]
    pub fn new(limits: StreamLimits, presence: Option<Arc<dyn Presence>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                open: Mutex::new(Open::default()),
                closing: watch::channel(false).0,
                presence,
            }),
        }
    }

    /// Ends every open stream now, and refuses new ones (shutdown).
    pub fn close_all(&self) {
        self.inner.closing.send_replace(true);
    }

    /// The streams open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new stream of `principal`, or refuses it: `429 too_many_streams` over the
    /// principal's bound, `429 instance_streams_full` over the instance's, `503
    /// shutting_down` once shutdown began.
    pub(crate) fn admit(&self, principal: &Principal) -> Result<Ticket, ApiError> {
        if *self.inner.closing.borrow() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "this instance is shutting down; reconnect (to another instance)",
            )
            .retry_after(Duration::from_secs(1)));
        }
        let key = match principal {
            Principal::Owner { owner_id } => format!("owner:{owner_id}"),
            Principal::Agent { agent_id, .. } => format!("agent:{agent_id}"),
        };
        let limits = self.inner.limits;
        {
            let mut open = self.lock();
            let mine = open.per_principal.get(&key).copied().unwrap_or(0);
            if mine >= limits.per_principal {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_streams",
                    format!(
                        "this principal already holds {mine} event streams open on this instance (at most {}); close one first",
                        limits.per_principal
                    ),
                )
                .with("limit", limits.per_principal)
                .retry_after(RETRY_AFTER));
            }
            if open.total >= limits.per_instance {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "instance_streams_full",
                    format!(
                        "this instance holds its most event streams ({}); retry later",
                        limits.per_instance
                    ),
                )
                .with("limit", limits.per_instance)
                .retry_after(RETRY_AFTER));
            }
            open.total += 1;
            *open.per_principal.entry(key.clone()).or_default() += 1;
        }
        let id = uuid::Uuid::now_v7();
        let presence = match (principal, &self.inner.presence) {
            (Principal::Agent { agent_id, .. }, Some(p)) => {
                Some(tokio::spawn(keep_present(p.clone(), *agent_id, id)))
            }
            _ => None,
        };
        Ok(Ticket {
            streams: self.clone(),
            key,
            closing: self.inner.closing.subscribe(),
            presence,
        })
    }

    /// The presence of `agents`, in order; `None` when it cannot be known (no presence
    /// store, or it did not answer in time): shown as `null`, never guessed.
    pub(crate) async fn presence(&self, agents: &[AgentId]) -> Option<Vec<AgentPresence>> {
        let store = self.inner.presence.as_ref()?;
        match tokio::time::timeout(PRESENCE_READ, store.presence(agents)).await {
            Ok(Ok(found)) => Some(found),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "Presence unknown");
                None
            }
            Err(_) => {
                tracing::debug!("Presence unknown: the store did not answer in time");
                None
            }
        }
    }
}

/// Marks the agent online while the stream lives (until the task is aborted), then offline.
async fn keep_present(store: Arc<dyn Presence>, agent: AgentId, stream: uuid::Uuid) {
    struct Close(Arc<dyn Presence>, AgentId, uuid::Uuid);
    impl Drop for Close {
        fn drop(&mut self) {
            let (store, agent, stream) = (self.0.clone(), self.1, self.2);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = store.close(agent, stream).await {
                        tracing::debug!(agent_id = %agent, error = %e, "Presence not updated");
                    }
                });
            }
        }
    }
    let _close = Close(store.clone(), agent, stream);
    let mut ticks = tokio::time::interval(PRESENCE_REFRESH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = store.open(agent, stream, PRESENCE_TTL).await {
            tracing::debug!(agent_id = %agent, error = %e, "Presence not refreshed");
        }
    }
}

/// An admitted stream: counted until dropped; tells when the instance shuts down.
pub(crate) struct Ticket {
    streams: Streams,
    key: String,
    closing: watch::Receiver<bool>,
    presence: Option<tokio::task::JoinHandle<()>>,
}

impl Ticket {
    /// Resolves when the instance shuts down (at once if it already did).
    pub(crate) async fn closed(&mut self) {
        let _ = self.closing.wait_for(|closing| *closing).await;
    }

    /// Whether the instance is shutting down.
    pub(crate) fn is_closed(&self) -> bool {
        *self.closing.borrow()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(task) = self.presence.take() {
            task.abort();
        }
        let mut open = self.streams.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_principal.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.per_principal.remove(&self.key);
            }
        }
    }
}
