//! The tamper-evident ledger (migration 16): every transaction (the fields of it that never
//! change), every ledger entry and every audit row is sealed into one hash chain,
//! `hash = SHA-256(previous hash ‖ kind ‖ 0x00 ‖ canonical encoding)`, in the order
//! `(xid, kind, id)` of the PostgreSQL transaction that wrote it.
//!
//! [`seal`] runs off the request path (the service's sealer, one batch at a time, serialised
//! on the chain head's row lock, so two instances never seal the same row); it only seals
//! rows whose writing transaction is older than every transaction still running, a set no
//! row can join later, so the chain never skips a row that commits late. [`verify`]
//! recomputes the chain from the start or from a trusted checkpoint and names the first row
//! that does not match, is missing, or was never sealed.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, TransactionTrait,
};
use sha2::{Digest as _, Sha256};

/// What is sealed, in the order of `kind` within one writing transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A transaction's fields that never change (amount, asset, wallets, kind, initiator,
    /// idempotency key, creation time; not its status).
    Transaction,
    /// A ledger entry.
    LedgerEntry,
    /// An audit row.
    AuditLog,
}

impl Kind {
    const ALL: [Self; 3] = [Self::Transaction, Self::LedgerEntry, Self::AuditLog];

    /// The name stored in `ledger_chain.kind` and hashed.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Transaction => "transaction",
            Self::LedgerEntry => "ledger_entry",
            Self::AuditLog => "audit_log",
        }
    }

    const fn rank(self) -> i16 {
        match self {
            Self::Transaction => 1,
            Self::LedgerEntry => 2,
            Self::AuditLog => 3,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn from_rank(rank: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.rank() == rank)
    }

    const fn table(self) -> &'static str {
        match self {
            Self::Transaction => "transactions",
            Self::LedgerEntry => "ledger_entries",
            Self::AuditLog => "audit_logs",
        }
    }

    const fn id_type(self) -> &'static str {
        match self {
            Self::LedgerEntry => "bigint",
            Self::Transaction | Self::AuditLog => "uuid",
        }
    }

    /// The canonical encoding of a row `x` of this kind: fixed fields, in a fixed order,
    /// times in UTC with microseconds (so neither the session's time zone nor a column added
    /// later changes it).
    const fn body(self) -> &'static str {
        match self {
            Self::Transaction => {
                "jsonb_build_object('id', x.id, 'kind', x.kind, 'asset', x.asset, 'amount', x.amount, \
'from_wallet_id', x.from_wallet_id, 'to_wallet_id', x.to_wallet_id, 'destination', x.destination, \
'memo', x.memo, 'metadata', x.metadata, 'owner_id', x.owner_id, 'initiator_type', x.initiator_type, \
'initiator_id', x.initiator_id, 'idempotency_key', x.idempotency_key, 'request_hash', x.request_hash, \
'hold_id', x.hold_id, 'mandate_id', x.mandate_id, 'created_at', event_time(x.created_at))::text"
            }
            Self::LedgerEntry => {
                "jsonb_build_object('id', x.id, 'transaction_id', x.transaction_id, 'wallet_id', x.wallet_id, \
'account', x.account, 'asset', x.asset, 'amount', x.amount, 'created_at', event_time(x.created_at))::text"
            }
            Self::AuditLog => {
                "jsonb_build_object('id', x.id, 'owner_id', x.owner_id, 'actor_type', x.actor_type, \
'actor_id', x.actor_id, 'action', x.action, 'resource_type', x.resource_type, \
'resource_id', x.resource_id, 'old_value', x.old_value, 'new_value', x.new_value, \
'request_id', x.request_id, 'ip', x.ip::text, 'created_at', event_time(x.created_at))::text"
            }
        }
    }
}

/// A row's place in the chain's order: its writing transaction, its kind, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    xid: u64,
    kind: Kind,
    id: String,
}

impl Key {
    /// The condition on a row `x` of `kind` that puts it after this key (`$1` the key's
    /// xid, `$2` its id).
    fn after(&self, kind: Kind, started: bool) -> String {
        if !started {
            return "TRUE".to_owned();
        }
        match kind.rank().cmp(&self.kind.rank()) {
            Ordering::Greater => "x.xid >= $1::text::bigint".to_owned(),
            Ordering::Less => "x.xid > $1::text::bigint".to_owned(),
            Ordering::Equal => format!(
                "(x.xid, x.id) > ($1::text::bigint, $2::text::{})",
                kind.id_type()
            ),
        }
    }

    /// The condition on a row `x` of `kind` that puts it at or before this key.
    fn through(&self, kind: Kind, started: bool) -> String {
        if !started {
            return "FALSE".to_owned();
        }
        match kind.rank().cmp(&self.kind.rank()) {
            Ordering::Greater => "x.xid < $1::text::bigint".to_owned(),
            Ordering::Less => "x.xid <= $1::text::bigint".to_owned(),
            Ordering::Equal => format!(
                "(x.xid, x.id) <= ($1::text::bigint, $2::text::{})",
                kind.id_type()
            ),
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.xid
            .cmp(&other.xid)
            .then(self.kind.cmp(&other.kind))
            .then_with(|| match self.kind {
                // Ledger entries' ids are numbers; uuids in their canonical text sort as
                // their bytes do.
                Kind::LedgerEntry => self
                    .id
                    .parse::<i64>()
                    .unwrap_or(i64::MIN)
                    .cmp(&other.id.parse::<i64>().unwrap_or(i64::MIN)),
                Kind::Transaction | Kind::AuditLog => self.id.cmp(&other.id),
            })
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The chain's latest sealed position and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Rows sealed so far (the last position).
    pub position: i64,
    /// The hash at that position (32 zero bytes before the first).
    pub hash: [u8; 32],
    /// When the last batch was sealed.
    pub sealed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Head {
    /// The hash in lowercase hex.
    #[must_use]
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// The hash that follows `prev` for a row of `kind` encoded as `body`.
#[must_use]
pub fn link(prev: &[u8; 32], kind: Kind, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(kind.name().as_bytes());
    h.update([0u8]);
    h.update(body.as_bytes());
    h.finalize().into()
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn err(what: &str) -> impl Fn(DbErr) -> anyhow::Error + '_ {
    move |e| anyhow::Error::new(e).context(what.to_owned())
}

fn hash32(bytes: &[u8], what: &str) -> anyhow::Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| anyhow::anyhow!("{what}: a hash of {} bytes", bytes.len()))
}

struct Stored {
    head: Head,
    cursor: Key,
}

const HEAD: &str = "SELECT position, hash, sealed_at, cursor_xid::text AS cursor_xid, cursor_kind, cursor_id \
FROM ledger_chain_head WHERE id = 1";

fn stored(row: &QueryResult) -> anyhow::Result<Stored> {
    let hash: Vec<u8> = row
        .try_get("", "hash")
        .map_err(err("reading the chain head"))?;
    let rank: i16 = row
        .try_get("", "cursor_kind")
        .map_err(err("reading the chain head"))?;
    let xid: String = row
        .try_get("", "cursor_xid")
        .map_err(err("reading the chain head"))?;
    Ok(Stored {
        head: Head {
            position: row
                .try_get("", "position")
                .map_err(err("reading the chain head"))?,
            hash: hash32(&hash, "the chain head")?,
            sealed_at: row
                .try_get("", "sealed_at")
                .map_err(err("reading the chain head"))?,
        },
        cursor: Key {
            xid: xid.parse()?,
            kind: Kind::from_rank(rank).unwrap_or(Kind::Transaction),
            id: row
                .try_get("", "cursor_id")
                .map_err(err("reading the chain head"))?,
        },
    })
}

/// The chain's head as last sealed.
///
/// # Errors
/// When PostgreSQL cannot be read.
pub async fn head(db: &impl ConnectionTrait) -> anyhow::Result<Head> {
    let row = db
        .query_one_raw(stmt(HEAD, vec![]))
        .await
        .map_err(err("reading the chain head"))?
        .ok_or_else(|| anyhow::anyhow!("the chain head is missing (migration 16 not applied?)"))?;
    Ok(stored(&row)?.head)
}

/// Seals up to `most` rows whose writing transactions have all ended, in chain order, in one
/// transaction; returns how many (0 when nothing was waiting).
///
/// # Errors
/// When PostgreSQL fails; nothing is sealed then.
pub async fn seal(db: &DatabaseConnection, most: u32) -> anyhow::Result<u64> {
    let txn = db.begin().await.map_err(err("beginning a seal"))?;
    // Another instance sealing holds the head: this one skips its turn.
    let Some(row) = txn
        .query_one_raw(stmt(&format!("{HEAD} FOR UPDATE SKIP LOCKED"), vec![]))
        .await
        .map_err(err("locking the chain head"))?
    else {
        txn.rollback().await.map_err(err("ending a skipped seal"))?;
        return Ok(0);
    };
    let Stored { head, cursor } = stored(&row)?;
    let started = head.position > 0;
    let limit = i64::from(most.max(1));
    let branches: Vec<String> = Kind::ALL
        .iter()
        .map(|&k| {
            format!(
                "(SELECT {rank}::int2 AS rank, x.id::text AS id, x.xid::text AS xid, {body} AS body \
FROM {table} x WHERE x.xid < (SELECT x FROM h) AND {after} ORDER BY x.xid, x.id LIMIT $3)",
                rank = k.rank(),
                body = k.body(),
                table = k.table(),
                after = cursor.after(k, started),
            )
        })
        .collect();
    let sql = format!(
        "WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x) {}",
        branches.join(" UNION ALL ")
    );
    let rows = txn
        .query_all_raw(stmt(
            &sql,
            vec![
                cursor.xid.to_string().into(),
                cursor.id.clone().into(),
                limit.into(),
            ],
        ))
        .await
        .map_err(err("reading rows to seal"))?;
    let mut found = Vec::with_capacity(rows.len());
    for r in &rows {
        let rank: i16 = r.try_get("", "rank").map_err(err("reading rows to seal"))?;
        let xid: String = r.try_get("", "xid").map_err(err("reading rows to seal"))?;
        let key = Key {
            xid: xid.parse()?,
            kind: Kind::from_rank(rank).ok_or_else(|| anyhow::anyhow!("kind {rank}"))?,
            id: r.try_get("", "id").map_err(err("reading rows to seal"))?,
        };
        let body: String = r.try_get("", "body").map_err(err("reading rows to seal"))?;
        found.push((key, body));
    }
    // Each table gave its first `most` rows after the cursor; the first `most` of all of them
    // together are the chain's next rows.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let Some((last, _)) = found.last().cloned() else {
        txn.rollback().await.map_err(err("ending an empty seal"))?;
        return Ok(0);
    };
    let mut prev = head.hash;
    let mut position = head.position;
    let mut links = Vec::with_capacity(found.len());
    for (key, body) in &found {
        prev = link(&prev, key.kind, body);
        position += 1;
        links.push(serde_json::json!({
            "position": position,
            "kind": key.kind.name(),
            "row_id": key.id,
            "hash": hex::encode(prev),
        }));
    }
    txn.execute_raw(stmt(
        "INSERT INTO ledger_chain (position, kind, row_id, hash) \
SELECT position, kind, row_id, decode(hash, 'hex') \
FROM jsonb_to_recordset($1::jsonb) AS r(position BIGINT, kind TEXT, row_id TEXT, hash TEXT)",
        vec![serde_json::Value::Array(links).into()],
    ))
    .await
    .map_err(err("writing the chain"))?;
    txn.execute_raw(stmt(
        "UPDATE ledger_chain_head SET position = $1, hash = $2, cursor_xid = $3::text::bigint, \
cursor_kind = $4, cursor_id = $5, sealed_at = now() WHERE id = 1",
        vec![
            position.into(),
            prev.to_vec().into(),
            last.xid.to_string().into(),
            last.kind.rank().into(),
            last.id.clone().into(),
        ],
    ))
    .await
    .map_err(err("moving the chain head"))?;
    txn.commit().await.map_err(err("committing a seal"))?;
    Ok(u64::try_from(found.len()).unwrap_or(0))
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Positions recomputed.
    pub checked: u64,
    /// The head as stored.
    pub head: Head,
    /// The first thing that does not match, if any.
    pub problem: Option<String>,
}

impl VerifyReport {
    /// No problem found.
    #[must_use]
    pub const fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "chain intact: {} position(s) recomputed; head at position {} hash {}",
                self.checked,
                self.head.position,
                self.head.hash_hex()
            ),
            Some(p) => write!(
                f,
                "chain BROKEN after {} position(s) recomputed: {p}",
                self.checked
            ),
        }
    }
}

/// Rows of the chain read per round trip.
const PAGE: i64 = 2_000;

/// Recomputes the chain from the start, or from a trusted `checkpoint` (a position and the
/// hash published for it), and checks that every row below the sealed cursor is in it.
///
/// # Errors
/// When PostgreSQL cannot be read (a broken chain is a report, not an error).
pub async fn verify(
    db: &DatabaseConnection,
    checkpoint: Option<(i64, [u8; 32])>,
) -> anyhow::Result<VerifyReport> {
    // One snapshot for the whole walk: the sealer may go on meanwhile.
    let txn = db
        .begin_with_config(
            Some(sea_orm::IsolationLevel::RepeatableRead),
            Some(sea_orm::AccessMode::ReadOnly),
        )
        .await
        .map_err(err("beginning the verification"))?;
    let row = txn
        .query_one_raw(stmt(HEAD, vec![]))
        .await
        .map_err(err("reading the chain head"))?
        .ok_or_else(|| anyhow::anyhow!("the chain head is missing (migration 16 not applied?)"))?;
    let Stored { head, cursor } = stored(&row)?;
    let mut report = VerifyReport {
        checked: 0,
        head: head.clone(),
        problem: None,
    };
    let (mut position, mut prev) = match checkpoint {
        None => (0, [0u8; 32]),
        Some((at, hash)) => {
            let stored: Option<Vec<u8>> = txn
                .query_one_raw(stmt(
                    "SELECT hash FROM ledger_chain WHERE position = $1",
                    vec![at.into()],
                ))
                .await
                .map_err(err("reading the checkpoint"))?
                .map(|r| r.try_get("", "hash"))
                .transpose()
                .map_err(err("reading the checkpoint"))?;
            if stored.as_deref() != Some(&hash[..]) {
                report.problem = Some(format!(
                    "position {at}: the chain does not hold the checkpoint's hash {} (it holds {})",
                    hex::encode(hash),
                    stored.map_or_else(|| "nothing".to_owned(), hex::encode)
                ));
                return Ok(report);
            }
            (at, hash)
        }
    };
    loop {
        let links = txn
            .query_all_raw(stmt(
                "SELECT position, kind, row_id, hash FROM ledger_chain WHERE position > $1 ORDER BY position LIMIT $2",
                vec![position.into(), PAGE.into()],
            ))
            .await
            .map_err(err("reading the chain"))?;
        if links.is_empty() {
            break;
        }
        let mut page = Vec::with_capacity(links.len());
        let mut ids: HashMap<Kind, Vec<String>> = HashMap::new();
        for l in &links {
            let at: i64 = l
                .try_get("", "position")
                .map_err(err("reading the chain"))?;
            let name: String = l.try_get("", "kind").map_err(err("reading the chain"))?;
            let id: String = l.try_get("", "row_id").map_err(err("reading the chain"))?;
            let hash: Vec<u8> = l.try_get("", "hash").map_err(err("reading the chain"))?;
            let kind = Kind::from_name(&name)
                .ok_or_else(|| anyhow::anyhow!("position {at}: unknown kind {name}"))?;
            ids.entry(kind).or_default().push(id.clone());
            page.push((at, kind, id, hash));
        }
        let mut bodies: HashMap<(Kind, String), String> = HashMap::new();
        for (kind, list) in ids {
            let sql = format!(
                "SELECT x.id::text AS id, {} AS body FROM {} x WHERE x.id = ANY($1::text[]::{}[])",
                kind.body(),
                kind.table(),
                kind.id_type()
            );
            let items: Vec<Value> = list.into_iter().map(Into::into).collect();
            let rows = txn
                .query_all_raw(stmt(
                    &sql,
                    vec![Value::Array(ArrayType::String, Some(Box::new(items)))],
                ))
                .await
                .map_err(err("reading sealed rows"))?;
            for r in rows {
                let id: String = r.try_get("", "id").map_err(err("reading sealed rows"))?;
                let body: String = r.try_get("", "body").map_err(err("reading sealed rows"))?;
                bodies.insert((kind, id), body);
            }
        }
        for (at, kind, id, hash) in page {
            if at != position + 1 {
                report.problem = Some(format!(
                    "position {}: missing from the chain (the next one stored is {at})",
                    position + 1
                ));
                return Ok(report);
            }
            let Some(body) = bodies.get(&(kind, id.clone())) else {
                report.problem = Some(format!(
                    "position {at}: {} {id} is missing (deleted?)",
                    kind.name()
                ));
                return Ok(report);
            };
            let next = link(&prev, kind, body);
            if next[..] != hash[..] {
                report.problem = Some(format!(
                    "position {at}: {} {id} does not match its seal (changed, or out of its order)",
                    kind.name()
                ));
                return Ok(report);
            }
            prev = next;
            position = at;
            report.checked += 1;
        }
    }
    if position != head.position || prev != head.hash {
        report.problem = Some(format!(
            "the head (position {}, hash {}) is not where the chain ends (position {position}, hash {})",
            head.position,
            head.hash_hex(),
            hex::encode(prev)
        ));
        return Ok(report);
    }
    // Every row at or before the cursor must be in the chain: one that is not was written
    // behind the sealer's back.
    let started = head.position > 0;
    for kind in Kind::ALL {
        let sql = format!(
            "SELECT (SELECT count(*) FROM {table} x WHERE {through}) AS rows, \
(SELECT count(*) FROM ledger_chain WHERE kind = $3) AS sealed",
            table = kind.table(),
            through = cursor.through(kind, started),
        );
        let row = txn
            .query_one_raw(stmt(
                &sql,
                vec![
                    cursor.xid.to_string().into(),
                    cursor.id.clone().into(),
                    kind.name().into(),
                ],
            ))
            .await
            .map_err(err("counting sealed rows"))?
            .ok_or_else(|| anyhow::anyhow!("counting sealed rows: no answer"))?;
        let rows: i64 = row
            .try_get("", "rows")
            .map_err(err("counting sealed rows"))?;
        let sealed: i64 = row
            .try_get("", "sealed")
            .map_err(err("counting sealed rows"))?;
        if rows != sealed {
            report.problem = Some(format!(
                "{}: {rows} row(s) within the sealed range but {sealed} in the chain (rows added or removed behind the sealer)",
                kind.table()
            ));
            return Ok(report);
        }
    }
    txn.commit().await.map_err(err("ending the verification"))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_transaction_then_kind_then_id() {
        let k = |xid, kind, id: &str| Key {
            xid,
            kind,
            id: id.to_owned(),
        };
        let mut keys = [
            k(7, Kind::AuditLog, "00000000-0000-0000-0000-000000000001"),
            k(7, Kind::LedgerEntry, "10"),
            k(7, Kind::LedgerEntry, "9"),
            k(3, Kind::AuditLog, "ffffffff-0000-0000-0000-000000000000"),
            k(7, Kind::Transaction, "ffffffff-0000-0000-0000-000000000000"),
        ];
        keys.sort();
        let order: Vec<_> = keys
            .iter()
            .map(|k| (k.xid, k.kind, k.id.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                (3, Kind::AuditLog, "ffffffff-0000-0000-0000-000000000000"),
                (7, Kind::Transaction, "ffffffff-0000-0000-0000-000000000000"),
                (7, Kind::LedgerEntry, "9"),
                (7, Kind::LedgerEntry, "10"),
                (7, Kind::AuditLog, "00000000-0000-0000-0000-000000000001"),
            ]
        );
    }

    #[test]
    fn each_link_depends_on_the_one_before_and_on_the_kind() {
        let zero = [0u8; 32];
        let a = link(&zero, Kind::LedgerEntry, "{}");
        assert_ne!(a, link(&zero, Kind::AuditLog, "{}"));
        assert_ne!(link(&a, Kind::LedgerEntry, "{}"), a);
        assert_eq!(a, link(&zero, Kind::LedgerEntry, "{}"));
    }
}
