//! The tamper-evident ledger (migrations 16 and 18): every transaction (the fields of it
//! that never change), every ledger entry and every audit row is sealed into one hash chain,
//! in the order `(xid, kind, id)` of the PostgreSQL transaction that wrote it. A position
//! counts rows: the `n`-th row sealed is at position `n`.
//!
//! Each [`seal`] writes one chain row covering every row it sealed (kind `rows`): their
//! kinds, ids and own hashes (`row = SHA-256(kind ‖ 0x00 ‖ canonical encoding)`), at the
//! position of its last row, with `hash = SHA-256(previous hash ‖ "rows" ‖ 0x00 ‖ row hashes
//! in order)`. Rows sealed before migration 18 have one chain row each, with `hash =
//! SHA-256(previous hash ‖ kind ‖ 0x00 ‖ canonical encoding)`; the chain runs on across both.
//!
//! [`seal`] runs off the request path (the service's sealer, one batch at a time, serialised
//! on the chain head's row lock, so two instances never seal the same row); it only seals
//! rows whose writing transaction is older than every transaction still running, a set no
//! row can join later, so the chain never skips a row that commits late. It picks, encodes
//! and hashes the rows and writes the seal in one statement. [`verify`] recomputes the chain
//! from the start or from a trusted checkpoint (encoding in PostgreSQL, hashing here) and
//! names the first row that does not match, is missing, or was never sealed.

use crate::pool::Begin as _;
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

    /// The canonical encoding of a row `x` of this kind, as a PostgreSQL expression: fixed
    /// fields, in a fixed order, times in UTC with microseconds (so neither the session's
    /// time zone nor a column added later changes it).
    #[must_use]
    pub const fn body(self) -> &'static str {
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

/// The hash of one row of `kind` encoded as `body`: what a seal of many rows stores for each.
#[must_use]
pub fn row_hash(kind: Kind, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.name().as_bytes());
    h.update([0u8]);
    h.update(body.as_bytes());
    h.finalize().into()
}

/// The name of a seal of many rows, stored in `ledger_chain.kind` and hashed.
pub const ROWS: &str = "rows";

/// The hash that follows `prev` for a seal of many rows whose own hashes (in chain order,
/// 32 bytes each) are `row_hashes`.
#[must_use]
pub fn link_rows(prev: &[u8; 32], row_hashes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(ROWS.as_bytes());
    h.update([0u8]);
    h.update(row_hashes);
    h.finalize().into()
}

/// The statement of one seal (migration 18): picks the next `$3` rows after the cursor (`$1`
/// its xid, `$2` its id) among those whose writing transactions have all ended, in chain
/// order, encodes and hashes each in PostgreSQL, and writes them as one chain row following
/// `$4` (the head's hash) at `$5` (its position) plus their number, moving the head with it.
/// Returns how many rows it sealed. Only the chosen rows are encoded.
fn seal_sql(cursor: &Key, started: bool) -> String {
    let branches: Vec<String> = Kind::ALL
        .iter()
        .map(|&k| {
            let (n, u) = match k {
                Kind::LedgerEntry => ("x.id", "NULL::uuid"),
                Kind::Transaction | Kind::AuditLog => ("NULL::bigint", "x.id"),
            };
            format!(
                "(SELECT {rank}::int2 AS rank, x.xid, {n} AS n, {u} AS u FROM {table} x \
WHERE x.xid < (SELECT x FROM h) AND {after} ORDER BY x.xid, x.id LIMIT $3)",
                rank = k.rank(),
                table = k.table(),
                after = cursor.after(k, started),
            )
        })
        .collect();
    let body = |k: Kind, id: &str| {
        format!(
            "(SELECT {} FROM {} x WHERE x.id = k.{id})",
            k.body(),
            k.table()
        )
    };
    format!(
        "WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x), \
k AS MATERIALIZED (SELECT rank, xid, n, u, row_number() OVER (ORDER BY xid, rank, n, u) AS ord \
FROM ({branches}) b ORDER BY xid, rank, n, u LIMIT $3), \
r AS (SELECT k.ord, k.rank, k.xid, COALESCE(k.n::text, k.u::text) AS id, \
sha256(convert_to(CASE k.rank WHEN 1 THEN 'transaction' WHEN 2 THEN 'ledger_entry' ELSE 'audit_log' END, 'UTF8') \
|| '\\x00'::bytea || convert_to(CASE k.rank WHEN 1 THEN {t} WHEN 2 THEN {e} ELSE {a} END, 'UTF8')) AS hash FROM k), \
a AS (SELECT count(*) AS n, array_agg(rank ORDER BY ord) AS kinds, array_agg(id ORDER BY ord) AS ids, \
string_agg(hash, ''::bytea ORDER BY ord) AS hashes, (array_agg(xid ORDER BY ord DESC))[1] AS last_xid, \
(array_agg(rank ORDER BY ord DESC))[1] AS last_rank, (array_agg(id ORDER BY ord DESC))[1] AS last_id FROM r), \
l AS (INSERT INTO ledger_chain (position, kind, row_id, hash, row_kinds, row_ids, row_hashes) \
SELECT $5 + a.n, '{ROWS}', a.last_id, sha256($4 || convert_to('{ROWS}', 'UTF8') || '\\x00'::bytea || a.hashes), \
a.kinds, a.ids, a.hashes FROM a WHERE a.n > 0 RETURNING position, hash), \
m AS (UPDATE ledger_chain_head SET position = l.position, hash = l.hash, cursor_xid = a.last_xid, \
cursor_kind = a.last_rank, cursor_id = a.last_id, sealed_at = now() FROM l, a WHERE ledger_chain_head.id = 1 RETURNING 1) \
SELECT a.n AS sealed, (SELECT count(*) FROM m) AS moved FROM a",
        branches = branches.join(" UNION ALL "),
        t = body(Kind::Transaction, "u"),
        e = body(Kind::LedgerEntry, "n"),
        a = body(Kind::AuditLog, "u"),
    )
}

/// Seals up to `most` rows whose writing transactions have all ended, in chain order, in one
/// transaction and one chain row; returns how many (0 when nothing was waiting).
///
/// # Errors
/// When PostgreSQL fails; nothing is sealed then.
pub async fn seal(db: &DatabaseConnection, most: u32) -> anyhow::Result<u64> {
    let txn = db.start().await.map_err(err("beginning a seal"))?;
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
    let row = txn
        .query_one_raw(stmt(
            &seal_sql(&cursor, started),
            vec![
                cursor.xid.to_string().into(),
                cursor.id.clone().into(),
                limit.into(),
                head.hash.to_vec().into(),
                head.position.into(),
            ],
        ))
        .await
        .map_err(err("sealing rows"))?
        .ok_or_else(|| anyhow::anyhow!("sealing rows: no answer"))?;
    let sealed: i64 = row.try_get("", "sealed").map_err(err("sealing rows"))?;
    let moved: i64 = row.try_get("", "moved").map_err(err("sealing rows"))?;
    anyhow::ensure!(
        (sealed == 0) == (moved == 0),
        "sealing rows: {sealed} sealed but the head moved {moved} time(s)"
    );
    txn.commit().await.map_err(err("committing a seal"))?;
    Ok(u64::try_from(sealed).unwrap_or(0))
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

/// One row of `ledger_chain`: a row sealed alone (before migration 18), or a seal of many.
#[derive(Debug)]
struct Link {
    /// Its position: the (last) row's.
    at: i64,
    /// The rows it seals, in chain order.
    rows: Vec<(Kind, String)>,
    /// Each row's own hash, for a seal of many.
    row_hashes: Option<Vec<u8>>,
    /// The chain's hash at `at`.
    hash: Vec<u8>,
}

impl Link {
    fn read(l: &QueryResult) -> anyhow::Result<Self> {
        let at: i64 = l
            .try_get("", "position")
            .map_err(err("reading the chain"))?;
        let name: String = l.try_get("", "kind").map_err(err("reading the chain"))?;
        let hash: Vec<u8> = l.try_get("", "hash").map_err(err("reading the chain"))?;
        if name != ROWS {
            let kind = Kind::from_name(&name)
                .ok_or_else(|| anyhow::anyhow!("position {at}: unknown kind {name}"))?;
            let id: String = l.try_get("", "row_id").map_err(err("reading the chain"))?;
            return Ok(Self {
                at,
                rows: vec![(kind, id)],
                row_hashes: None,
                hash,
            });
        }
        let kinds: String = l
            .try_get("", "row_kinds")
            .map_err(err("reading the chain"))?;
        let ids: String = l.try_get("", "row_ids").map_err(err("reading the chain"))?;
        let row_hashes: Vec<u8> = l
            .try_get("", "row_hashes")
            .map_err(err("reading the chain"))?;
        let kinds = kinds
            .split(',')
            .map(|k| {
                k.parse::<i16>()
                    .ok()
                    .and_then(Kind::from_rank)
                    .ok_or_else(|| anyhow::anyhow!("position {at}: unknown kind {k}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rows: Vec<(Kind, String)> = kinds
            .into_iter()
            .zip(ids.split(',').map(str::to_owned))
            .collect();
        anyhow::ensure!(
            row_hashes.len() == 32 * rows.len(),
            "position {at}: a seal of {} row(s) with {} bytes of row hashes",
            rows.len(),
            row_hashes.len()
        );
        Ok(Self {
            at,
            rows,
            row_hashes: Some(row_hashes),
            hash,
        })
    }

    /// The position of its first row.
    fn first(&self) -> i64 {
        self.at - i64::try_from(self.rows.len()).unwrap_or(i64::MAX) + 1
    }

    /// The chain's hash after this link when it holds, from `prev` and the rows' `bodies`;
    /// otherwise the first thing that does not match.
    fn check(
        &self,
        prev: &[u8; 32],
        bodies: &HashMap<(Kind, String), String>,
    ) -> Result<[u8; 32], String> {
        let first = self.first();
        let mut own = Vec::with_capacity(self.rows.len());
        for (i, (kind, id)) in self.rows.iter().enumerate() {
            let at = first + i64::try_from(i).unwrap_or(i64::MAX);
            let Some(body) = bodies.get(&(*kind, id.clone())) else {
                return Err(format!(
                    "position {at}: {} {id} is missing (deleted?)",
                    kind.name()
                ));
            };
            own.push(match &self.row_hashes {
                None => link(prev, *kind, body),
                Some(sealed) => {
                    let mine = row_hash(*kind, body);
                    if sealed[32 * i..32 * (i + 1)] != mine[..] {
                        return Err(format!(
                            "position {at}: {} {id} does not match its seal (changed, or out of its order)",
                            kind.name()
                        ));
                    }
                    mine
                }
            });
        }
        let next = match &self.row_hashes {
            None => own.first().copied().unwrap_or(*prev),
            Some(sealed) => link_rows(prev, sealed),
        };
        if next[..] != self.hash[..] {
            let (kind, id) = &self.rows[0];
            return Err(if self.row_hashes.is_none() {
                format!(
                    "position {}: {} {id} does not match its seal (changed, or out of its order)",
                    self.at,
                    kind.name()
                )
            } else {
                format!(
                    "position {}: the seal of positions {first} to {} does not match its hash (the chain was rewritten)",
                    self.at, self.at
                )
            });
        }
        Ok(next)
    }
}

/// Positions of the chain read per round trip (or one seal of more).
const PAGE: i64 = 10_000;

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
                    stored.map_or_else(
                        || "nothing: no seal ends there; a checkpoint is a position the head reported".to_owned(),
                        hex::encode
                    )
                ));
                return Ok(report);
            }
            (at, hash)
        }
    };
    loop {
        // Up to PAGE positions at a time (a seal of many rows may reach further alone).
        let links = txn
            .query_all_raw(stmt(
                "SELECT position, kind, row_id, hash, array_to_string(row_kinds, ',') AS row_kinds, \
array_to_string(row_ids, ',') AS row_ids, row_hashes FROM ledger_chain \
WHERE position > $1 AND position <= GREATEST($1 + $2, (SELECT min(position) FROM ledger_chain WHERE position > $1)) \
ORDER BY position",
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
            let link = Link::read(l)?;
            for (kind, id) in &link.rows {
                ids.entry(*kind).or_default().push(id.to_owned());
            }
            page.push(link);
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
        for link in page {
            let first = link.first();
            if first != position + 1 {
                report.problem = Some(format!(
                    "position {}: missing from the chain (the next one stored is {first})",
                    position + 1
                ));
                return Ok(report);
            }
            match link.check(&prev, &bodies) {
                Ok(next) => prev = next,
                Err(problem) => {
                    report.problem = Some(problem);
                    return Ok(report);
                }
            }
            position = link.at;
            report.checked += u64::try_from(link.rows.len()).unwrap_or(0);
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
((SELECT count(*) FROM ledger_chain WHERE kind = $3) + (SELECT count(*) FROM ledger_chain c \
CROSS JOIN LATERAL unnest(c.row_kinds) AS k(rank) WHERE c.kind = '{ROWS}' AND k.rank = $4)) AS sealed",
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
                    kind.rank().into(),
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
    fn a_seal_of_many_rows_depends_on_each_row_and_on_their_order() {
        let zero = [0u8; 32];
        let a = row_hash(Kind::LedgerEntry, "{\"id\": 1}");
        let b = row_hash(Kind::LedgerEntry, "{\"id\": 2}");
        assert_ne!(
            a,
            row_hash(Kind::AuditLog, "{\"id\": 1}"),
            "the kind counts"
        );
        let ab = link_rows(&zero, &[a, b].concat());
        assert_ne!(ab, link_rows(&zero, &[b, a].concat()), "the order counts");
        assert_ne!(
            ab,
            link_rows(&a, &[a, b].concat()),
            "the previous hash counts"
        );
        assert_ne!(ab, link_rows(&zero, &a), "every row counts");
        assert_eq!(ab, link_rows(&zero, &[a, b].concat()));
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
