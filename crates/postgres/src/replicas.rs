//! Read replicas for the reads that may be served from one (transaction and audit listings),
//! never older than the caller's acknowledged writes: a replica is used only when it has
//! replayed the primary's history up to the caller's consistency token
//! ([`waiaas_domain::freshness`]) and up to the latest write this instance acknowledged;
//! otherwise, or when it does not answer, the read goes to the primary. Balances, policies
//! and everything a decision reads always come from the primary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::Postgres;

/// How long a replica gets to say how far it has replayed before the read goes elsewhere.
const CHECK_TIMEOUT: Duration = Duration::from_millis(300);

/// How far a replica has replayed, as a number (`NULL` when the server is not in recovery:
/// a primary is never behind itself).
const REPLAYED: &str = "SELECT CASE WHEN pg_is_in_recovery() \
THEN (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint END AS lsn";

/// How far behind a replica is, in seconds: 0 when it has replayed everything it received
/// (an idle primary sends nothing, which is not lag), else the age of the last transaction it
/// replayed; 0 on a server that is not in recovery.
const LAG: &str = "SELECT CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag";

/// The primary's WAL position now, as a number: at least the end of every commit
/// acknowledged before it was asked.
const POSITION: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS lsn";

/// The replicas of one primary.
#[derive(Debug, Default)]
pub(crate) struct Replicas {
    pools: Vec<(DatabaseConnection, Arc<str>)>,
    /// The newest position this instance handed out for one of its writes.
    latest: AtomicU64,
    /// Where the next read starts looking, so reads spread over the replicas.
    next: AtomicUsize,
}

/// A consistency token's text: PostgreSQL's own `X/Y` form of a WAL position.
#[must_use]
pub fn format_position(position: u64) -> String {
    format!("{:X}/{:X}", position >> 32, position & 0xFFFF_FFFF)
}

/// A consistency token's position, if `text` is one (`X/Y`, hexadecimal, each part at most
/// 8 digits).
#[must_use]
pub fn parse_position(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let part = |s: &str| {
        (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((part(high)? << 32) | part(low)?)
}

fn served(by: &'static str) {
    metrics::counter!("waiaas_db_replica_reads_total", "served_by" => by).increment(1);
}

impl Postgres {
    /// The same adapter, reading listings from these replicas when they are fresh enough.
    #[must_use]
    pub fn with_replicas(mut self, replicas: Vec<DatabaseConnection>) -> Self {
        let pools = replicas
            .into_iter()
            .map(|db| {
                let name =
                    crate::health::key_of(&db.get_postgres_connection_pool().connect_options());
                (db, Arc::from(name))
            })
            .collect();
        self.replicas = Arc::new(Replicas {
            pools,
            ..Replicas::default()
        });
        self
    }

    /// Whether reads may go to replicas.
    #[must_use]
    pub fn has_replicas(&self) -> bool {
        !self.replicas.pools.is_empty()
    }

    /// Each replica (its name, without credentials) with its replay lag in seconds, or
    /// `None` when it does not answer.
    pub async fn replica_lags(&self) -> Vec<(Arc<str>, Option<f64>)> {
        let mut lags = Vec::with_capacity(self.replicas.pools.len());
        for (db, name) in &self.replicas.pools {
            let asked = db.query_one_raw(Statement::from_string(DbBackend::Postgres, LAG));
            let lag = match tokio::time::timeout(CHECK_TIMEOUT, asked).await {
                Ok(Ok(Some(row))) => row.try_get::<f64>("", "lag").ok(),
                _ => None,
            };
            lags.push((name.clone(), lag));
        }
        lags
    }

    /// The primary's history position now, as a consistency token's number: every commit
    /// acknowledged before this call is at or before it. Remembered as this instance's
    /// latest write, which its replica reads then never go behind.
    ///
    /// # Errors
    /// When the primary does not answer.
    pub async fn write_position(&self) -> anyhow::Result<u64> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, POSITION))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no WAL position"))?;
        let position = u64::try_from(row.try_get::<i64>("", "lsn")?).unwrap_or(0);
        self.replicas.latest.fetch_max(position, Ordering::Relaxed);
        Ok(position)
    }

    /// Runs a replica-safe read: on a replica fresh enough for it, else (or when the replica
    /// fails it) on the primary through [`Postgres::run`]. A replica's failure is never the
    /// caller's, and never counts against the primary's health.
    pub(crate) async fn read_replica_safe<'a, T, E, F, Fut>(&'a self, read: F) -> Result<T, E>
    where
        F: Fn(&'a DatabaseConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>> + 'a,
        E: crate::error::Cause + std::fmt::Display,
    {
        if let Some(replica) = self.fresh_replica().await {
            match read(replica).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    served("primary_after_replica_error");
                    tracing::warn!(error = %e, "A replica failed a read; reading from the primary");
                }
            }
        }
        self.run(crate::Work::Read, || read(&self.db)).await
    }

    /// The first replica (in turn) that has replayed up to what the current read requires.
    async fn fresh_replica(&self) -> Option<&DatabaseConnection> {
        let replicas = &self.replicas;
        let count = replicas.pools.len();
        if count == 0 {
            return None;
        }
        let required = waiaas_domain::freshness::required()
            .unwrap_or(0)
            .max(replicas.latest.load(Ordering::Relaxed));
        let start = replicas.next.fetch_add(1, Ordering::Relaxed);
        let mut behind = false;
        for i in 0..count {
            let (db, name) = &replicas.pools[(start + i) % count];
            let asked = db.query_one_raw(Statement::from_string(DbBackend::Postgres, REPLAYED));
            match tokio::time::timeout(CHECK_TIMEOUT, asked).await {
                Ok(Ok(Some(row))) => match row.try_get::<Option<i64>>("", "lsn") {
                    Ok(None) => {
                        served("replica");
                        return Some(db);
                    }
                    Ok(Some(replayed)) if u64::try_from(replayed).unwrap_or(0) >= required => {
                        served("replica");
                        return Some(db);
                    }
                    Ok(Some(_)) => behind = true,
                    Err(e) => {
                        tracing::debug!(replica = %name, error = %e, "Replica position unreadable")
                    }
                },
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(replica = %name, error = %e, "Replica unavailable; reading from the primary");
                }
                Err(_) => {
                    tracing::debug!(replica = %name, "Replica slow to answer; reading from the primary");
                }
            }
        }
        served(if behind {
            "primary_replicas_behind"
        } else {
            "primary_replicas_unavailable"
        });
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{format_position, parse_position};

    #[test]
    fn a_token_is_postgresqls_own_spelling_of_a_wal_position_and_reads_back() {
        assert_eq!(format_position(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_position("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_position("0/0"), Some(0));
        assert_eq!(parse_position("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        for bad in [
            "",
            "16",
            "/1",
            "1/",
            "x/1",
            "1/2/3",
            "123456789/0",
            "-1/0",
            "1 /2",
        ] {
            assert_eq!(parse_position(bad), None, "{bad:?}");
        }
    }
}
