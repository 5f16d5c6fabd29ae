//! Single-flight: concurrent misses on one key share one PostgreSQL read.
//!
//! Sharing a read is only safe for a caller whose own read started before the shared one
//! began, or when the shared result is proven current: its fill landed in (or lost to a newer
//! entry of) Redis while this instance held a live lease for the same epoch. A caller that
//! joined late and gets an unproven result reads again; a flight closes to new callers before
//! its fill is sent, so at most two reads happen per caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

/// A loaded value, serialised, with its version.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) version: i64,
}

/// What a flight produced.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The value (none when the row does not exist) or the load's error.
    pub(crate) value: Result<Option<Loaded>, Arc<anyhow::Error>>,
    /// Whether Redis confirmed the value is current (see the module docs).
    pub(crate) confirmed: bool,
    /// The lease epoch under which the flight ran.
    pub(crate) epoch: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) started: Instant,
    rx: watch::Receiver<Option<Outcome>>,
}

impl Slot {
    /// Waits for the flight; `None` when its leader went away without an answer.
    pub(crate) async fn wait(&self) -> Option<Outcome> {
        let mut rx = self.rx.clone();
        rx.wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| v.clone())
    }
}

/// The flights in progress, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

/// The caller's part in a flight.
#[derive(Debug)]
pub(crate) enum Role {
    /// Load, fill, and publish the outcome.
    Leader(LeaderGuard),
    /// Wait for the leader.
    Follower(Arc<Slot>),
}

impl Flights {
    /// Joins the open flight on `key`, or starts one.
    pub(crate) fn join_or_lead(&self, key: &str) -> Role {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = map.get(key) {
            return Role::Follower(slot.clone());
        }
        let (tx, rx) = watch::channel(None);
        let slot = Arc::new(Slot {
            started: Instant::now(),
            rx,
        });
        map.insert(key.to_owned(), slot.clone());
        Role::Leader(LeaderGuard {
            key: key.to_owned(),
            slot,
            tx,
            map: self.map.clone(),
        })
    }

    /// How many flights are open (for tests).
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// How many callers wait on the open flight of `key` (for tests): every holder of its
    /// slot but the map and the leader.
    #[cfg(test)]
    pub(crate) fn followers(&self, key: &str) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .map_or(0, |slot| Arc::strong_count(slot).saturating_sub(2))
    }
}

/// The leader's handle; dropping it without `finish` releases the followers to retry.
#[derive(Debug)]
pub(crate) struct LeaderGuard {
    key: String,
    slot: Arc<Slot>,
    tx: watch::Sender<Option<Outcome>>,
    map: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

impl LeaderGuard {
    /// No new caller may join from now on.
    pub(crate) fn close(&self) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            map.remove(&self.key);
        }
    }

    /// Publishes the outcome to the followers.
    pub(crate) fn finish(self, outcome: Outcome) {
        self.close();
        let _ = self.tx.send(Some(outcome));
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.close();
    }
}
