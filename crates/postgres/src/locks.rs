//! Coordination locks on PostgreSQL advisory locks: the fallback of the Redis lock manager.
//!
//! Each held lock is a transaction-level advisory lock in a transaction of its own, kept
//! open on a dedicated connection from the pool until the lock is released or its TTL
//! passes (a watchdog task releases it then, as Redis would expire the key). A
//! transaction, not a session, holds it so that it works the same behind a transaction
//! pooler, which gives a client its server connection only for a transaction's length
//! (`database.pooler`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use tokio::sync::Mutex;
use waiaas_domain::ports::{LockError, LockLease, LockManager};

/// Advisory locks keyed by a 64-bit hash of the resource name.
#[derive(Debug, Clone)]
pub struct AdvisoryLocks {
    db: DatabaseConnection,
    held: Arc<Mutex<HashMap<String, Held>>>,
}

#[derive(Debug)]
struct Held {
    token: String,
    release: tokio::sync::oneshot::Sender<()>,
    deadline: Arc<std::sync::Mutex<tokio::time::Instant>>,
}

fn key(resource: &str) -> i64 {
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in resource.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

impl AdvisoryLocks {
    /// Locks over this pool.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            held: Arc::default(),
        }
    }
}

#[async_trait]
impl LockManager for AdvisoryLocks {
    async fn acquire(&self, resource: &str, ttl: Duration) -> Result<Option<LockLease>, LockError> {
        if ttl.is_zero() {
            return Err(LockError("a lock needs a TTL".into()));
        }
        let mut txn = self
            .db
            .get_postgres_connection_pool()
            .begin()
            .await
            .map_err(|e| LockError(e.to_string()))?;
        let got = advisory(&mut txn, key(resource))
            .await
            .map_err(|e| LockError(e.to_string()))?;
        if !got {
            // Dropping the transaction rolls it back before its connection is reused.
            return Ok(None);
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let deadline = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now() + ttl));
        let watched = deadline.clone();
        let held = self.held.clone();
        let (name, k) = (resource.to_owned(), key(resource));
        // The pool closing (the instance shutting down) ends the lock at once: the pool would
        // otherwise wait for this connection until the lease ran out.
        let closing = self.db.get_postgres_connection_pool().close_event();
        tokio::spawn(async move {
            let mut rx = rx;
            tokio::pin!(closing);
            loop {
                let until = *watched
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tokio::select! {
                    _ = &mut rx => break,
                    () = &mut closing => {
                        held.lock().await.remove(&name);
                        break;
                    }
                    () = tokio::time::sleep_until(until) => {
                        let now = tokio::time::Instant::now();
                        if *watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner) <= now {
                            held.lock().await.remove(&name);
                            break;
                        }
                    }
                }
            }
            // Ending the transaction releases the lock; when that fails the connection is
            // broken, and its session's end released it.
            if let Err(e) = txn.rollback().await {
                tracing::debug!(key = k, error = %e, "Rolling back an advisory lock's transaction failed");
            }
        });
        self.held.lock().await.insert(
            resource.to_owned(),
            Held {
                token: token.clone(),
                release: tx,
                deadline,
            },
        );
        Ok(Some(LockLease {
            resource: resource.to_owned(),
            token,
        }))
    }

    async fn extend(&self, lease: &LockLease, ttl: Duration) -> Result<bool, LockError> {
        let held = self.held.lock().await;
        match held.get(&lease.resource) {
            Some(h) if h.token == lease.token => {
                *h.deadline
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    tokio::time::Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: &LockLease) -> Result<bool, LockError> {
        let mut held = self.held.lock().await;
        match held.get(&lease.resource) {
            Some(h) if h.token == lease.token => {
                if let Some(h) = held.remove(&lease.resource) {
                    let _ = h.release.send(());
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

async fn advisory(
    txn: &mut sea_orm::sqlx::Transaction<'static, sea_orm::sqlx::Postgres>,
    key: i64,
) -> Result<bool, sea_orm::sqlx::Error> {
    let row: (bool,) = sea_orm::sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(&mut **txn)
        .await?;
    Ok(row.0)
}
