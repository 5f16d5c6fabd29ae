//! The benchmark's environment: databases cloned from the migrated template and seeded in
//! bulk, instances of the service, and the machine's own baseline tools.

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use waiaas_app::{App, Settings};
use waiaas_domain::{AgentId, OwnerId, WalletId};
use waiaas_testkit::{Fixture, TestDb};

/// The deterministic id of bench wallet `i` (1-based), so pgbench can name it too.
#[must_use]
pub fn wallet_id(i: u64) -> WalletId {
    WalletId::from_uuid(uuid::Uuid::from_u128(
        0x0000_0000_0000_7000_8000_0000_0000_0000 | u128::from(i & 0xffff_ffff_ffff),
    ))
}

/// The SQL expression pgbench uses for bench wallet `:var`.
#[must_use]
pub fn wallet_sql(var: &str) -> String {
    format!("('00000000-0000-7000-8000-' || lpad(to_hex(:{var}::bigint), 12, '0'))::uuid")
}

/// Waits (at most 10 s) until the instance's cache holds its lease, so that reads are served
/// from Redis from the first one measured.
///
/// # Errors
/// When the instance runs without a cache or gets no lease in time.
pub async fn wait_for_cache_lease(app: &App) -> anyhow::Result<()> {
    let cache = app
        .cache
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no cache"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cache.lease_epoch().is_none() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "no cache lease");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Each bench wallet starts with this balance (minor units): transfers never run dry.
pub const START_BALANCE: i64 = 1_000_000_000_000;

/// A seeded bench database.
#[derive(Debug)]
pub struct Seeded {
    /// The database (dropped with this value).
    pub db: TestDb,
    /// The owner of every wallet.
    pub owner: OwnerId,
    /// The agent holding every wallet.
    pub agent: AgentId,
    /// How many wallets exist (ids 1..=wallets).
    pub wallets: u64,
    /// How many history ledger rows were seeded.
    pub history_rows: u64,
}

async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> anyhow::Result<u64> {
    let r = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await
        .with_context(|| format!("seeding: {}", &sql[..sql.len().min(60)]))?;
    Ok(r.rows_affected())
}

/// Runs bulk statements in one transaction on one connection, without the pool's statement
/// timeout (seeding millions of rows takes minutes), without waiting for WAL flushes, and
/// without triggers or foreign-key checks (`session_replication_role = replica`): seeded
/// rows are generated consistent, and stand for history whose events were placed and pruned
/// long ago, so they leave no outbox backlog for the measured runs.
async fn bulk(db: &TestDb, statements: Vec<(String, Vec<sea_orm::Value>)>) -> anyhow::Result<()> {
    use sea_orm::TransactionTrait as _;
    let txn = db.db.begin().await?;
    exec(&txn, "SET LOCAL statement_timeout = 0", vec![]).await?;
    exec(&txn, "SET LOCAL synchronous_commit = off", vec![]).await?;
    exec(&txn, "SET LOCAL session_replication_role = replica", vec![]).await?;
    for (sql, values) in statements {
        exec(&txn, &sql, values).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A fresh database with one owner, one agent and `wallets` funded wallets.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn seed(wallets: u64, pool: u32) -> anyhow::Result<Seeded> {
    let db = TestDb::with_pool(pool).await;
    let services = waiaas_testkit::services(&db.postgres());
    let world = Fixture::world(&services).await;
    let mut seeded = Seeded {
        db,
        owner: world.owner_id,
        agent: world.agent_id,
        wallets: 0,
        history_rows: 0,
    };
    add_wallets(&mut seeded, wallets).await?;
    Ok(seeded)
}

/// Adds wallets `seeded.wallets + 1 ..= target`, each funded by a deposit (transaction and two
/// ledger entries), in three set-based statements.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn add_wallets(seeded: &mut Seeded, target: u64) -> anyhow::Result<()> {
    if target <= seeded.wallets {
        return Ok(());
    }
    let (from, to) = (i64::try_from(seeded.wallets + 1)?, i64::try_from(target)?);
    let (owner, agent) = (*seeded.owner.as_uuid(), *seeded.agent.as_uuid());
    let w = "('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid";
    let t = "('00000000-0000-7000-9000-' || lpad(to_hex(g), 12, '0'))::uuid";
    let mut stmts: Vec<(String, Vec<sea_orm::Value>)> = Vec::new();
    stmts.push((
        format!("INSERT INTO wallets (id, agent_id, owner_id, asset, balance, version, created_at, updated_at) \
                  SELECT {w}, $1, $2, 'USD', $3, 2, now(), now() FROM generate_series($4::bigint, $5::bigint) g"),
        vec![agent.into(), owner.into(), START_BALANCE.into(), from.into(), to.into()],
    ));
    stmts.push((
        format!("INSERT INTO transactions (id, kind, status, asset, amount, to_wallet_id, metadata, owner_id, initiator_type, initiator_id, created_at, updated_at, posted_at) \
                  SELECT {t}, 'deposit', 'completed', 'USD', $1, {w}, '{{}}'::jsonb, $2, 'owner', $2, now(), now(), now() FROM generate_series($3::bigint, $4::bigint) g"),
        vec![START_BALANCE.into(), owner.into(), from.into(), to.into()],
    ));
    stmts.push((
        format!("INSERT INTO ledger_entries (transaction_id, wallet_id, account, asset, amount, created_at) \
                  SELECT {t}, {w}, 'wallet:' || {w}, 'USD', $1, now() FROM generate_series($2::bigint, $3::bigint) g \
                  UNION ALL SELECT {t}, NULL, 'system:deposits', 'USD', -$1::bigint, now() FROM generate_series($2::bigint, $3::bigint) g"),
        vec![START_BALANCE.into(), from.into(), to.into()],
    ));
    stmts.push(("ANALYZE wallets".to_owned(), vec![]));
    bulk(&seeded.db, stmts).await?;
    seeded.wallets = target;
    Ok(())
}

/// Adds history: `rows` ledger rows as pairs of completed transfers that cancel out (a→b then
/// b→a), spread over the first `spread` wallets and the last 30 days, so balances stay valid
/// and reconcile still passes.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn add_history(seeded: &mut Seeded, rows: u64, spread: u64) -> anyhow::Result<()> {
    // An even number of transfers, starting at an even index: pairs (2k, 2k+1) cancel out.
    let transfers = i64::try_from(rows / 4 * 2)?;
    let spread = i64::try_from(spread.max(2))?;
    let owner = *seeded.owner.as_uuid();
    let agent = *seeded.agent.as_uuid();
    let base = i64::try_from(seeded.history_rows / 4 * 2)?;
    // Transfer k goes from wallet a(k) to b(k); k odd reverses k-1, so each pair cancels.
    let pair = "(((g / 2) * 7919) % $1) + 1";
    let a = format!("CASE WHEN g % 2 = 0 THEN {pair} ELSE ((({pair}) % $1) + 1) END");
    let b = format!("CASE WHEN g % 2 = 0 THEN ((({pair}) % $1) + 1) ELSE {pair} END");
    let wid = |e: &str| format!("('00000000-0000-7000-8000-' || lpad(to_hex({e}), 12, '0'))::uuid");
    let tid = "('00000000-0000-7000-a000-' || lpad(to_hex(g), 12, '0'))::uuid";
    let at = "now() - ((g % 43200) * interval '1 minute')";
    let mut stmts: Vec<(String, Vec<sea_orm::Value>)> = Vec::new();
    stmts.push((
        format!("INSERT INTO transactions (id, kind, status, asset, amount, from_wallet_id, to_wallet_id, metadata, owner_id, initiator_type, initiator_id, created_at, updated_at, posted_at) \
                  SELECT {tid}, 'transfer', 'completed', 'USD', 1, {}, {}, '{{}}'::jsonb, $2, 'agent', $3, {at}, {at}, {at} \
                  FROM generate_series($4::bigint, $5::bigint) g", wid(&a), wid(&b)),
        vec![spread.into(), owner.into(), agent.into(), base.into(), (base + transfers - 1).into()],
    ));
    stmts.push((
        format!("INSERT INTO ledger_entries (transaction_id, wallet_id, account, asset, amount, created_at) \
                  SELECT {tid}, {wa}, 'wallet:' || {wa}, 'USD', -1, {at} FROM generate_series($2::bigint, $3::bigint) g \
                  UNION ALL SELECT {tid}, {wb}, 'wallet:' || {wb}, 'USD', 1, {at} FROM generate_series($2::bigint, $3::bigint) g",
                  wa = wid(&a), wb = wid(&b)),
        vec![spread.into(), base.into(), (base + transfers - 1).into()],
    ));
    stmts.push(("ANALYZE transactions".to_owned(), vec![]));
    stmts.push(("ANALYZE ledger_entries".to_owned(), vec![]));
    bulk(&seeded.db, stmts).await?;
    seeded.history_rows += u64::try_from(transfers * 2)?;
    Ok(())
}

/// Seals every row left unsealed, when the instances seal, and prints how fast unless
/// `quiet` (the rate at which a sealer catches up on a backlog, all alone).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn catch_up(seeded: &Seeded, quiet: bool) -> anyhow::Result<()> {
    let Some(batch) = sealer() else {
        return Ok(());
    };
    let wal = wal_bytes(&seeded.db.db).await?;
    let started = std::time::Instant::now();
    let sealed = waiaas_app::sealer::run_once(&seeded.db.db, batch).await?;
    let secs = started.elapsed().as_secs_f64();
    let wal = wal_bytes(&seeded.db.db).await? - wal;
    if !quiet && sealed > 0 {
        eprintln!(
            "{:>40}  sealer caught up on {sealed} rows in {secs:.2} s ({:.0} rows/s, {:.0} WAL bytes per row)",
            "",
            sealed as f64 / secs.max(1e-9),
            wal as f64 / sealed as f64
        );
    }
    Ok(())
}

/// Places the events that earlier runs committed and no relay placed (pgbench's transfers
/// fire the events trigger with no instance beside them), before a run: an instance's relay
/// would otherwise place and read that backlog while the clock runs, in whichever run came
/// first after a level's pgbench runs.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn place_events(seeded: &Seeded) -> anyhow::Result<()> {
    use waiaas_domain::ports::EventLog as _;
    const BATCH: u32 = 10_000;
    let pg = waiaas_postgres::Postgres::new(seeded.db.db.clone());
    while pg
        .sequence(BATCH)
        .await
        .map_err(|e| anyhow::anyhow!("placing earlier runs' events: {e}"))?
        == u64::from(BATCH)
    {}
    Ok(())
}

/// Works off what earlier runs or seeding left behind, before a run's instance starts:
/// places unplaced events and seals unsealed rows (printing how fast unless `quiet`), so that
/// no run spends its clock on a backlog (and no instance's own sealer takes the chain's head
/// first, which would make this catch-up skip its turn); returns the seconds it took.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn settle(seeded: &Seeded, quiet: bool) -> anyhow::Result<f64> {
    let started = std::time::Instant::now();
    place_events(seeded).await?;
    catch_up(seeded, quiet).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Where the server's write-ahead log is, in bytes (cluster-wide: other databases' writes
/// count too, so read it on a quiet server).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn wal_bytes(db: &sea_orm::DatabaseConnection) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS b",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no WAL position"))?
        .try_get("", "b")?)
}

static SEAL_INTERVAL_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Sets the instances' `ledger.seal_interval_ms` for this run (the first call counts).
pub fn seal_interval_ms(ms: u64) {
    let _ = SEAL_INTERVAL_MS.set(ms);
}

static POSTING_WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Sets the instances' `posting.workers` for this run (the first call counts).
pub fn posting_workers(n: usize) {
    let _ = POSTING_WORKERS.set(n.max(1));
}

/// The instances' `posting.workers`: as set for this run, else as deployed.
fn workers() -> usize {
    POSTING_WORKERS
        .get()
        .copied()
        .unwrap_or(Settings::default().posting.workers)
}

static PGBOUNCER: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// The checker's instances of this run reach PostgreSQL through PgBouncer in transaction
/// mode (`database.pooler = "pgbouncer-transaction"`).
pub fn use_pgbouncer() {
    let _ = PGBOUNCER.set(());
}

/// Whether this run puts PgBouncer between the checker's instances and PostgreSQL.
#[must_use]
pub fn pgbouncer() -> bool {
    PGBOUNCER.get().is_some()
}

static APP_ROLE: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// The role bench instances connect as with `--app-role`: no superuser, not the tables'
/// owner, so row-level security applies to it.
const APP_ROLE_NAME: &str = "waiaas_bench_app";

/// Instances of this run connect as [`APP_ROLE_NAME`] (see [`grant_app_role`]).
pub fn use_app_role() {
    let _ = APP_ROLE.set(());
}

/// With `--app-role`: creates the role when missing, grants it what serving needs on
/// `database` (the data, not the schema) and turns row-level security on, over `db` (a
/// superuser's connection to that database).
///
/// # Errors
/// When PostgreSQL refuses.
pub async fn grant_app_role(
    db: &sea_orm::DatabaseConnection,
    database: &str,
) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    if APP_ROLE.get().is_none() {
        return Ok(());
    }
    // Exactly what `waiaas db roles` grants, with `database.row_level_security = true`.
    for statement in waiaas_app::roles::statements(APP_ROLE_NAME, database, None, true)? {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

/// `url` with the user swapped for the app role when this run uses it.
#[must_use]
pub fn as_app_role(url: &str) -> String {
    if APP_ROLE.get().is_none() {
        return url.to_owned();
    }
    waiaas_testkit::with_user(url, APP_ROLE_NAME)
}

/// The instances' sealer settings for this run: `Some(batch)` when they seal.
#[must_use]
pub fn sealer() -> Option<u32> {
    let ledger = Settings::default().ledger;
    let interval = SEAL_INTERVAL_MS
        .get()
        .copied()
        .unwrap_or(ledger.seal_interval_ms);
    (interval > 0).then_some(ledger.seal_batch.max(1))
}

/// Settings for a bench instance on `db`, posting as deployed (batched).
#[must_use]
pub fn settings(db: &TestDb, redis_url: Option<&str>, pool: u32) -> Settings {
    settings_batched(db, redis_url, pool, Settings::default().posting.batch_size)
}

/// Settings for a bench instance on `db` whose posting workers carry at most `batch_size`
/// postings per transaction (1: each posting in its own transaction, without a queue).
#[must_use]
pub fn settings_batched(
    db: &TestDb,
    redis_url: Option<&str>,
    pool: u32,
    batch_size: usize,
) -> Settings {
    let mut s = Settings::default();
    s.posting.batch_size = batch_size;
    s.posting.workers = workers();
    s.database.url = as_app_role(&db.url);
    s.database.min_connections = 0;
    s.database.max_connections = pool;
    s.database.auto_migrate = false;
    s.database.create_database = false;
    // Plain TCP on loopback, as pgbench runs: what is compared is the work, not the cipher
    // (the service negotiates TLS by default when the server offers it).
    s.database.sslmode = Some("disable".to_owned());
    if let Some(ms) = SEAL_INTERVAL_MS.get() {
        s.ledger.seal_interval_ms = *ms;
    }
    match redis_url {
        Some(url) => {
            s.redis.url = url.to_owned();
            s.redis.key_prefix = waiaas_testkit::unique_prefix();
        }
        None => s.redis.enabled = false,
    }
    s.rate_limit.enabled = false;
    s
}

/// An instance of the service on `db`.
///
/// # Errors
/// When it cannot be built.
pub async fn instance(db: &TestDb, redis_url: Option<&str>, pool: u32) -> anyhow::Result<Arc<App>> {
    Ok(Arc::new(
        waiaas_app::build(&settings(db, redis_url, pool)).await?,
    ))
}

/// An instance of the service on `db` posting at most `batch_size` transfers per
/// transaction; its pool has room for its posting workers besides `clients` callers.
///
/// # Errors
/// When it cannot be built.
pub async fn instance_batched(
    db: &TestDb,
    redis_url: Option<&str>,
    clients: usize,
    batch_size: usize,
) -> anyhow::Result<Arc<App>> {
    let pool = u32::try_from(clients + workers() + 2)?;
    Ok(Arc::new(
        waiaas_app::build(&settings_batched(db, redis_url, pool, batch_size)).await?,
    ))
}

/// The shared Redis of the machine (for L2 figures): `WAIAAS_TEST_REDIS_URL` or the default.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("WAIAAS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_wallet_ids_are_what_pgbench_computes() {
        assert_eq!(
            super::wallet_id(1).to_string(),
            "00000000-0000-7000-8000-000000000001"
        );
        assert_eq!(
            super::wallet_id(0xabc).to_string(),
            "00000000-0000-7000-8000-000000000abc"
        );
    }
}
