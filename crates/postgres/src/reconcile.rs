//! Reconciliation: proves from PostgreSQL alone that no money was created or lost. It reads
//! every row (it is an operator's check, not a request path).

use std::fmt;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, Statement, TransactionTrait,
};

/// The most offenders of each kind a report lists.
const SHOW: i64 = 50;

const WALLET_MISMATCHES: &str = "SELECT w.id::text AS id, w.balance::text AS balance, COALESCE(l.total, 0)::text AS ledger \
FROM wallets w LEFT JOIN (SELECT wallet_id, SUM(amount) AS total FROM ledger_entries WHERE wallet_id IS NOT NULL GROUP BY wallet_id) l \
ON l.wallet_id = w.id WHERE w.balance <> COALESCE(l.total, 0) ORDER BY w.id LIMIT $1";

const UNBALANCED: &str = "SELECT transaction_id::text AS id, SUM(amount)::text AS total FROM ledger_entries \
GROUP BY transaction_id HAVING SUM(amount) <> 0 ORDER BY transaction_id LIMIT $1";

const STATUS_MISMATCHES: &str = "SELECT t.id::text AS id, t.status FROM transactions t \
WHERE (t.status = 'completed') <> EXISTS (SELECT 1 FROM ledger_entries l WHERE l.transaction_id = t.id) \
ORDER BY t.id LIMIT $1";

const NEGATIVE: &str = "SELECT id::text AS id, balance::text AS balance FROM wallets WHERE balance < 0 ORDER BY id LIMIT $1";

/// Per asset: the wallets' total, the money that came in from outside (the platform's
/// `system:deposits` account) and the money paid out (`external:` accounts). Balances must
/// equal deposits minus payments.
const ASSET_TOTALS: &str = "SELECT a.asset, \
COALESCE((SELECT SUM(balance) FROM wallets w WHERE w.asset = a.asset), 0)::text AS balances, \
COALESCE((SELECT -SUM(amount) FROM ledger_entries l WHERE l.asset = a.asset AND l.account = 'system:deposits'), 0)::text AS deposits, \
COALESCE((SELECT SUM(amount) FROM ledger_entries l WHERE l.asset = a.asset AND l.account LIKE 'external:%'), 0)::text AS payments, \
(COALESCE((SELECT SUM(balance) FROM wallets w WHERE w.asset = a.asset), 0) + \
 COALESCE((SELECT SUM(amount) FROM ledger_entries l WHERE l.asset = a.asset AND l.wallet_id IS NULL), 0)) = 0 AS consistent \
FROM (SELECT DISTINCT asset FROM wallets) a ORDER BY a.asset";

/// Ledger entries on an account their transaction cannot produce: a wallet entry must name
/// its wallet, money from outside comes only from `system:deposits` (and only into
/// deposits), money paid out goes only to `external:<the payment's destination>`. So no
/// destination can reach a platform account, and every account is where its transaction
/// says.
const ACCOUNT_MISMATCHES: &str = "SELECT l.id::text AS id, l.account, t.kind FROM ledger_entries l \
JOIN transactions t ON t.id = l.transaction_id \
WHERE NOT ((l.wallet_id IS NOT NULL AND l.account = 'wallet:' || l.wallet_id::text) \
OR (l.wallet_id IS NULL AND t.kind = 'deposit' AND l.account = 'system:deposits') \
OR (l.wallet_id IS NULL AND t.kind = 'payment' AND l.account = 'external:' || t.destination)) \
ORDER BY l.id LIMIT $1";

/// Wallets whose `held` is not the sum of their open holds.
const HELD_MISMATCHES: &str = "SELECT w.id::text AS id, w.held::text AS held, COALESCE(h.total, 0)::text AS holds \
FROM wallets w LEFT JOIN (SELECT from_wallet_id, SUM(amount) AS total FROM transactions WHERE status = 'held' GROUP BY from_wallet_id) h \
ON h.from_wallet_id = w.id WHERE w.held <> COALESCE(h.total, 0) ORDER BY w.id LIMIT $1";

/// Holds and captures that disagree: a captured hold has exactly one capture, of the amount
/// it records as captured, and only a captured hold has one.
const CAPTURE_MISMATCHES: &str = "SELECT h.id::text AS id, \
h.status || ', captured ' || COALESCE(h.captured::text, 'none') || ', capture of ' || COALESCE(c.amount::text, 'none') AS problem \
FROM transactions h LEFT JOIN transactions c ON c.hold_id = h.id \
WHERE h.kind = 'hold' AND ((h.status = 'captured') <> (c.id IS NOT NULL) OR c.amount <> h.captured) \
UNION ALL SELECT c.id::text, 'a capture of a ' || COALESCE(h.status, 'missing') || ' ' || COALESCE(h.kind, '') \
FROM transactions c LEFT JOIN transactions h ON h.id = c.hold_id \
WHERE c.hold_id IS NOT NULL AND (h.id IS NULL OR h.kind <> 'hold' OR h.status <> 'captured' OR h.from_wallet_id <> c.from_wallet_id) \
ORDER BY 1 LIMIT $1";

const COUNTS: &str = "SELECT (SELECT count(*) FROM wallets) AS wallets, (SELECT count(*) FROM transactions) AS transactions, \
(SELECT count(*) FROM ledger_entries) AS entries";

/// One asset's totals, in minor units (as text: sums can exceed 64 bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetTotals {
    /// The asset.
    pub asset: String,
    /// The sum of the wallets' balances.
    pub balances: String,
    /// Money that came in from outside.
    pub deposits: String,
    /// Money that went out to destinations.
    pub payments: String,
    /// `balances == deposits - payments`.
    pub consistent: bool,
}

/// What reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Wallets checked.
    pub wallets: i64,
    /// Transactions checked.
    pub transactions: i64,
    /// Ledger entries checked.
    pub ledger_entries: i64,
    /// Wallets whose balance differs from the sum of their ledger entries: (id, balance, sum).
    pub wallet_mismatches: Vec<(String, String, String)>,
    /// Transactions whose entries do not sum to zero: (id, sum).
    pub unbalanced_transactions: Vec<(String, String)>,
    /// Completed transactions without entries, or others with entries: (id, status).
    pub status_mismatches: Vec<(String, String)>,
    /// Wallets below zero: (id, balance).
    pub negative_balances: Vec<(String, String)>,
    /// Ledger entries on an account their transaction cannot produce: (entry id, account,
    /// transaction kind).
    pub account_mismatches: Vec<(String, String, String)>,
    /// Wallets whose `held` differs from the sum of their open holds: (id, held, sum).
    pub held_mismatches: Vec<(String, String, String)>,
    /// Holds and captures that disagree: (id, what is wrong).
    pub capture_mismatches: Vec<(String, String)>,
    /// Per-asset totals.
    pub assets: Vec<AssetTotals>,
}

impl ReconcileReport {
    /// Whether every check passed.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.wallet_mismatches.is_empty()
            && self.unbalanced_transactions.is_empty()
            && self.status_mismatches.is_empty()
            && self.negative_balances.is_empty()
            && self.account_mismatches.is_empty()
            && self.held_mismatches.is_empty()
            && self.capture_mismatches.is_empty()
            && self.assets.iter().all(|a| a.consistent)
    }
}

impl fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} wallets, {} transactions, {} ledger entries",
            self.wallets, self.transactions, self.ledger_entries
        )?;
        for a in &self.assets {
            writeln!(
                f,
                "{:<6} balances {} = deposits {} - payments {}: {}",
                a.asset,
                a.balances,
                a.deposits,
                a.payments,
                if a.consistent { "ok" } else { "MISMATCH" }
            )?;
        }
        for (id, balance, ledger) in &self.wallet_mismatches {
            writeln!(
                f,
                "MISMATCH wallet {id}: balance {balance}, ledger sum {ledger}"
            )?;
        }
        for (id, sum) in &self.unbalanced_transactions {
            writeln!(f, "MISMATCH transaction {id}: entries sum to {sum}, not 0")?;
        }
        for (id, status) in &self.status_mismatches {
            writeln!(
                f,
                "MISMATCH transaction {id}: status {status} disagrees with its ledger entries"
            )?;
        }
        for (id, balance) in &self.negative_balances {
            writeln!(f, "MISMATCH wallet {id}: negative balance {balance}")?;
        }
        for (id, account, kind) in &self.account_mismatches {
            writeln!(
                f,
                "MISMATCH ledger entry {id}: account {account} cannot belong to a {kind}"
            )?;
        }
        for (id, held, holds) in &self.held_mismatches {
            writeln!(
                f,
                "MISMATCH wallet {id}: held {held}, open holds sum to {holds}"
            )?;
        }
        for (id, problem) in &self.capture_mismatches {
            writeln!(f, "MISMATCH hold or capture {id}: {problem}")?;
        }
        write!(
            f,
            "{}",
            if self.is_consistent() {
                "reconcile: OK"
            } else {
                "reconcile: FAILED"
            }
        )
    }
}

fn triples(
    rows: &[sea_orm::QueryResult],
    [a, b, c]: [&str; 3],
) -> Result<Vec<(String, String, String)>, DbErr> {
    rows.iter()
        .map(|r| Ok((r.try_get("", a)?, r.try_get("", b)?, r.try_get("", c)?)))
        .collect()
}

async fn pairs(
    db: &DatabaseTransaction,
    sql: &str,
    a: &str,
    b: &str,
) -> Result<Vec<(String, String)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [SHOW.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", a)?, r.try_get("", b)?)))
        .collect()
}

/// Runs every check, in one read-only `REPEATABLE READ` transaction: every check sees the same
/// snapshot, so postings committing meanwhile cannot make the checks disagree with each other.
/// The pool's statement timeout is lifted for it: on a large ledger the sums take longer than
/// any request may, and a reconciliation that gives up says nothing.
///
/// # Errors
/// `DbErr` when PostgreSQL cannot be read.
pub async fn reconcile(db: &DatabaseConnection) -> Result<ReconcileReport, DbErr> {
    let txn = db
        .begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?;
    txn.execute_unprepared("SET LOCAL statement_timeout = 0")
        .await?;
    let report = checks(&txn).await?;
    txn.commit().await?;
    Ok(report)
}

async fn checks(db: &DatabaseTransaction) -> Result<ReconcileReport, DbErr> {
    let counts = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, COUNTS))
        .await?
        .ok_or_else(|| DbErr::Custom("count query returned no row".to_owned()))?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            WALLET_MISMATCHES,
            [SHOW.into()],
        ))
        .await?;
    let wallet_mismatches = triples(&rows, ["id", "balance", "ledger"])?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            ACCOUNT_MISMATCHES,
            [SHOW.into()],
        ))
        .await?;
    let account_mismatches = triples(&rows, ["id", "account", "kind"])?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            HELD_MISMATCHES,
            [SHOW.into()],
        ))
        .await?;
    let held_mismatches = triples(&rows, ["id", "held", "holds"])?;
    let assets = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, ASSET_TOTALS))
        .await?
        .iter()
        .map(|r| {
            Ok(AssetTotals {
                asset: r.try_get("", "asset")?,
                balances: r.try_get("", "balances")?,
                deposits: r.try_get("", "deposits")?,
                payments: r.try_get("", "payments")?,
                consistent: r.try_get("", "consistent")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(ReconcileReport {
        wallets: counts.try_get("", "wallets")?,
        transactions: counts.try_get("", "transactions")?,
        ledger_entries: counts.try_get("", "entries")?,
        wallet_mismatches,
        unbalanced_transactions: pairs(db, UNBALANCED, "id", "total").await?,
        status_mismatches: pairs(db, STATUS_MISMATCHES, "id", "status").await?,
        negative_balances: pairs(db, NEGATIVE, "id", "balance").await?,
        account_mismatches,
        held_mismatches,
        capture_mismatches: pairs(db, CAPTURE_MISMATCHES, "id", "problem").await?,
        assets,
    })
}
