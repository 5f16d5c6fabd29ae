//! The outbox as stored. Triggers write an `events` row with every change of a transaction,
//! in that change's PostgreSQL transaction; `sequence` places committed events in the stream,
//! serialised on the `event_sequencer` row so that places become visible in increasing order.

use crate::pool::Begin as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};
use waiaas_domain::ports::{EventBounds, EventLog};
use waiaas_domain::{Event, OwnerId, RepoError, Subject, Transaction, WalletId};

use crate::entity::transactions;
use crate::error::RepoContext as _;
use crate::{Postgres, Work};

/// Serialises placers: one batch at a time, each committed before the next one starts, so a
/// batch's places are above every place committed before it.
const LOCK: &str = "UPDATE event_sequencer SET ran_at = clock_timestamp() WHERE id = 1";

/// Places the oldest unplaced events (in the order they were written: a transaction's own
/// events keep their order) after every place given so far, and makes one delivery per
/// enabled webhook endpoint of the event's owner that wants its type — in the same statement,
/// so each (endpoint, event) gets exactly one. Runs after `LOCK`, in a new statement, so its
/// snapshot sees every event committed before the lock was granted.
const PLACE: &str = "WITH n AS (SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT $1), \
s AS (SELECT id, nextval('event_seq') AS seq FROM (SELECT id FROM n ORDER BY id) o), \
p AS (UPDATE events e SET seq = s.seq FROM s WHERE e.id = s.id \
RETURNING e.seq, e.type, e.owner_id, e.from_wallet_id, e.to_wallet_id, e.transaction_id), \
d AS (INSERT INTO webhook_deliveries (id, webhook_id, event_seq, event_type, wallet_id, \
transaction_id, next_attempt_at, created_at) \
SELECT gen_random_uuid(), w.id, p.seq, p.type, COALESCE(p.from_wallet_id, p.to_wallet_id), \
p.transaction_id, clock_timestamp(), clock_timestamp() FROM p JOIN webhooks w \
ON w.owner_id = p.owner_id AND w.enabled AND (w.events @> ARRAY['*'] OR p.type = ANY (w.events)) \
RETURNING 1) \
SELECT (SELECT count(*) FROM p) AS placed, (SELECT count(*) FROM d) AS deliveries";

/// Placed events after a place: the event's columns, then, for an event about a transaction,
/// the transaction as the change left it (the row the trigger stored, read back as a
/// `transactions` row; all `NULL` for an event about another record, whose payload is read
/// as it is).
const AFTER: &str = "SELECT e.seq AS event_seq, e.type AS event_type, e.created_at AS event_at, e.owner_id AS event_owner, e.subject AS event_subject, e.from_wallet_id AS event_wallet, CASE WHEN e.subject = 'transaction' THEN NULL ELSE e.payload END AS event_record, t.* \
FROM events e, LATERAL jsonb_populate_record(NULL::transactions, CASE WHEN e.subject = 'transaction' THEN e.payload END) t \
WHERE e.seq > $1 ORDER BY e.seq LIMIT $2";

/// The same, of one wallet (as payer or payee).
const AFTER_FOR_WALLET: &str = "SELECT e.seq AS event_seq, e.type AS event_type, e.created_at AS event_at, e.owner_id AS event_owner, e.subject AS event_subject, e.from_wallet_id AS event_wallet, CASE WHEN e.subject = 'transaction' THEN NULL ELSE e.payload END AS event_record, t.* \
FROM events e, LATERAL jsonb_populate_record(NULL::transactions, CASE WHEN e.subject = 'transaction' THEN e.payload END) t \
WHERE e.seq > $1 AND (e.from_wallet_id = $3 OR e.to_wallet_id = $3) ORDER BY e.seq LIMIT $2";

/// Placed events by their places (a webhook worker's claimed deliveries).
pub(crate) const BY_PLACE: &str = "SELECT e.seq AS event_seq, e.type AS event_type, e.created_at AS event_at, e.owner_id AS event_owner, e.subject AS event_subject, e.from_wallet_id AS event_wallet, CASE WHEN e.subject = 'transaction' THEN NULL ELSE e.payload END AS event_record, t.* \
FROM events e, LATERAL jsonb_populate_record(NULL::transactions, CASE WHEN e.subject = 'transaction' THEN e.payload END) t \
WHERE e.seq = ANY($1)";

const BOUNDS: &str = "SELECT (SELECT COALESCE(max(seq), 0) FROM events) AS head, \
pruned_through FROM event_sequencer WHERE id = 1";

/// Deletes old placed events, lowest places first, with their finished webhook deliveries
/// (a pending one stays: its worker reports that the event is gone), and records the highest
/// place deleted (a stream asked to resume below it is told that events may be missing).
/// `events` is append-only: the deletion runs inside `delete_events_before`, the schema
/// owner's function (migration 15), the one path the append-only trigger lets through.
const DELETE_BEFORE: &str = "SELECT delete_events_before($1, $2) AS n";

/// An event as `AFTER` and `BY_PLACE` read it.
pub(crate) fn decode(row: &sea_orm::QueryResult) -> Result<Event, RepoError> {
    let id: i64 = row.try_get("", "event_seq").repo("decoding an event")?;
    let kind: String = row.try_get("", "event_type").repo("decoding an event")?;
    let created_at: DateTime<Utc> = row.try_get("", "event_at").repo("decoding an event")?;
    let owner: uuid::Uuid = row.try_get("", "event_owner").repo("decoding an event")?;
    let name: String = row.try_get("", "event_subject").repo("decoding an event")?;
    let subject = if name == "transaction" {
        let model = transactions::Model::from_query_result(row, "").repo("decoding an event")?;
        Subject::Transaction(Box::new(Transaction::try_from(model).map_err(RepoError)?))
    } else {
        let wallet: Option<uuid::Uuid> =
            row.try_get("", "event_wallet").repo("decoding an event")?;
        Subject::Record {
            name,
            wallet_id: wallet.map(WalletId::from_uuid),
            data: row
                .try_get::<serde_json::Value>("", "event_record")
                .repo("decoding an event")?,
        }
    };
    Ok(Event {
        id,
        kind,
        created_at,
        owner_id: OwnerId::from_uuid(owner),
        subject,
    })
}

#[async_trait]
impl EventLog for Postgres {
    async fn sequence(&self, limit: u32) -> Result<u64, RepoError> {
        self.run(Work::Read, || async {
            let txn = self.db.start().await.repo("beginning to place events")?;
            txn.execute_unprepared(LOCK)
                .await
                .repo("locking the event sequencer")?;
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    PLACE,
                    [i64::from(limit).into()],
                ))
                .await
                .repo("placing events")?;
            let placed: i64 = match row {
                Some(r) => r.try_get("", "placed").repo("decoding placed events")?,
                None => 0,
            };
            let placed = u64::try_from(placed).unwrap_or(0);
            txn.commit().await.repo("committing placed events")?;
            Ok(placed)
        })
        .await
    }

    async fn after(
        &self,
        after: i64,
        wallet: Option<WalletId>,
        limit: u32,
    ) -> Result<Vec<Event>, RepoError> {
        let stmt = match wallet {
            None => Statement::from_sql_and_values(
                DbBackend::Postgres,
                AFTER,
                [after.into(), i64::from(limit).into()],
            ),
            Some(w) => Statement::from_sql_and_values(
                DbBackend::Postgres,
                AFTER_FOR_WALLET,
                [after.into(), i64::from(limit).into(), (*w.as_uuid()).into()],
            ),
        };
        self.run(Work::Read, || async {
            self.db
                .query_all_raw(stmt.clone())
                .await
                .repo("reading events")?
                .iter()
                .map(decode)
                .collect()
        })
        .await
    }

    async fn bounds(&self) -> Result<EventBounds, RepoError> {
        self.run(Work::Read, || async {
            let row = self
                .db
                .query_one_raw(Statement::from_string(DbBackend::Postgres, BOUNDS))
                .await
                .repo("reading where the events stand")?;
            match row {
                Some(r) => Ok(EventBounds {
                    head: r.try_get("", "head").repo("decoding the events' head")?,
                    pruned_through: r
                        .try_get("", "pruned_through")
                        .repo("decoding the events' retention")?,
                }),
                None => Ok(EventBounds::default()),
            }
        })
        .await
    }

    async fn delete_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, RepoError> {
        self.run(Work::Read, || async {
            let row = self
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    DELETE_BEFORE,
                    [
                        before.into(),
                        i32::try_from(limit).unwrap_or(i32::MAX).into(),
                    ],
                ))
                .await
                .repo("deleting old events")?;
            let n: i64 = match row {
                Some(r) => r.try_get("", "n").repo("decoding deleted events")?,
                None => 0,
            };
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}
