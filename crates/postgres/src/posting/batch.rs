//! Batched postings: transfers, payments, holds and deposits queue for a few posting
//! workers; each worker takes what has queued (up to the batch size, without waiting for
//! more) and posts it in one PostgreSQL transaction with a fixed number of statements,
//! deciding every posting in queue order on the state the ones before it left, exactly as if
//! they had run one after the other. A batch of one is posted by the single-posting path, so
//! latency at low load is what it was. One bad posting never fails its neighbours: a refusal
//! answers only its own request, and when a batch's statements fail, its postings are
//! posted one by one.

use crate::pool::Begin as _;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Datelike as _, SubsecRound as _, Utc};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, FromQueryResult as _};
use serde_json::{Value as Json, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;
use waiaas_domain::model::Budget;
use waiaas_domain::model::{Actor, TransactionKind, TransactionStatus, WalletBalance};
use waiaas_domain::notifications::NotificationKind;
use waiaas_domain::policy::{
    BudgetLimits, LevelState, LevelUsage, Levels, PolicyRules, SpendRequest, Usage, evaluate_levels,
};
use waiaas_domain::ports::{
    DepositCommand, HoldCommand, Idempotency, PostingOutcome, SpendCommand,
};
use waiaas_domain::{
    AuditContext, Counterparty, Decision, Fault, Money, OwnerId, PostingError, Transaction,
};

use super::shared::{self, LockedWallet, NewTransaction, stmt, uuid_array};
use super::sql;
use crate::entity::transactions;
use crate::error::{Cause as _, DbContext as _, commit};
use crate::{Postgres, Work};

/// `anyhow::ensure!` for functions whose error converts from `anyhow::Error`.
macro_rules! ensure_that {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(anyhow::anyhow!($($arg)+).into());
        }
    };
}

/// How postings are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Posting workers (each holds one connection while it posts a batch).
    pub workers: usize,
    /// The most postings one batch carries; 1 posts each in its own transaction, without
    /// a queue (the behaviour before batching).
    pub max_batch: usize,
}

/// Batches posted by the workers of this process, and the postings they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Batches taken from the queue (a batch of one included).
    pub batches: u64,
    /// Postings they carried.
    pub postings: u64,
    /// Batches of more than one posting that were posted one by one instead (expired holds
    /// to release first, a key used concurrently, a statement that failed).
    pub split: u64,
}

static BATCHES: AtomicU64 = AtomicU64::new(0);
static POSTINGS: AtomicU64 = AtomicU64::new(0);
static SPLIT: AtomicU64 = AtomicU64::new(0);

/// What the posting workers of this process have done so far (for the benchmark's mean
/// batch size).
#[must_use]
pub fn batch_stats() -> BatchStats {
    BatchStats {
        batches: BATCHES.load(Ordering::Relaxed),
        postings: POSTINGS.load(Ordering::Relaxed),
        split: SPLIT.load(Ordering::Relaxed),
    }
}

type Reply = oneshot::Sender<Result<PostingOutcome, PostingError>>;

/// What a batch carries.
#[derive(Debug)]
enum Posting {
    /// A transfer or payment.
    Spend(SpendCommand),
    /// A hold placed.
    Hold(HoldCommand),
    /// A deposit.
    Deposit(DepositCommand),
}

impl Posting {
    /// The spend it decides (a transfer, payment or hold), with a hold's expiry.
    const fn spend(&self) -> Option<(&SpendCommand, Option<DateTime<Utc>>)> {
        match self {
            Self::Spend(c) => Some((c, None)),
            Self::Hold(h) => Some((&h.spend, Some(h.expires_at))),
            Self::Deposit(_) => None,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        match self {
            Self::Spend(c) => c.now,
            Self::Hold(h) => h.spend.now,
            Self::Deposit(d) => d.now,
        }
    }

    /// Whose idempotency keys it uses: the agent's, or the depositing owner's.
    const fn principal(&self) -> Uuid {
        match self {
            Self::Spend(c) => *c.agent_id.as_uuid(),
            Self::Hold(h) => *h.spend.agent_id.as_uuid(),
            Self::Deposit(d) => *d.owner_id.as_uuid(),
        }
    }

    const fn idempotency(&self) -> Option<&Idempotency> {
        match self {
            Self::Spend(c) => c.idempotency.as_ref(),
            Self::Hold(h) => h.spend.idempotency.as_ref(),
            Self::Deposit(d) => d.idempotency.as_ref(),
        }
    }

    const fn audit(&self) -> &AuditContext {
        match self {
            Self::Spend(c) => &c.audit,
            Self::Hold(h) => &h.spend.audit,
            Self::Deposit(d) => &d.audit,
        }
    }

    /// The wallets it touches, the paying one first.
    fn wallets(&self) -> Vec<Uuid> {
        match self.spend() {
            Some((c, _)) => {
                let mut v = vec![*c.from_wallet_id.as_uuid()];
                if let Counterparty::Wallet(w) = &c.to {
                    v.push(*w.as_uuid());
                }
                v
            }
            None => match self {
                Self::Deposit(d) => vec![*d.wallet_id.as_uuid()],
                _ => Vec::new(),
            },
        }
    }
}

/// A posting waiting for a worker.
struct Job {
    posting: Posting,
    reply: Reply,
    /// The span of the request that queued it: the batch's span follows from it.
    caller: tracing::Span,
}

/// The posting queue of one adapter; its workers start with the first posting.
pub(crate) struct Queue {
    batching: Batching,
    sender: OnceLock<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

impl Queue {
    pub(crate) fn new(batching: Batching) -> Self {
        Self {
            batching,
            sender: OnceLock::new(),
        }
    }

    /// The queue's sender, starting the workers on first use. The workers hold the adapter
    /// without its queue: they end when the last adapter with the queue is dropped.
    fn sender(&self, pg: &Postgres) -> &mpsc::Sender<Job> {
        self.sender.get_or_init(|| {
            let workers = self.batching.workers.max(1);
            let max = self.batching.max_batch.max(1);
            let (tx, rx) = mpsc::channel::<Job>(max.saturating_mul(workers).saturating_mul(4));
            let rx = Arc::new(Mutex::new(rx));
            let mut worker = pg.clone();
            worker.batch = None;
            for _ in 0..workers {
                tokio::spawn(work(worker.clone(), rx.clone(), max));
            }
            tx
        })
    }
}

impl Postgres {
    /// Posts transfers, payments, holds and deposits through a queue of `batching.workers`
    /// posting workers, each posting up to `batching.max_batch` of them in one transaction
    /// (`max_batch` 1: each in its own, without a queue).
    #[must_use]
    pub fn with_batching(mut self, batching: Batching) -> Self {
        self.batch = (batching.max_batch > 1).then(|| Arc::new(Queue::new(batching)));
        self
    }

    /// Posts a transfer or payment: through the queue when batching, else in a
    /// transaction of its own. A posting with a mandate is always posted on its own (the
    /// batch does not lock mandates).
    pub(super) async fn spend(&self, cmd: &SpendCommand) -> Result<PostingOutcome, PostingError> {
        if cmd.mandate_id.is_some() {
            return self.alone(&Posting::Spend(cmd.clone())).await;
        }
        self.queued(Posting::Spend(cmd.clone())).await
    }

    /// Places a hold: through the queue when batching, as [`Self::spend`].
    pub(super) async fn hold(&self, cmd: &HoldCommand) -> Result<PostingOutcome, PostingError> {
        if cmd.spend.mandate_id.is_some() {
            return self.alone(&Posting::Hold(cmd.clone())).await;
        }
        self.queued(Posting::Hold(cmd.clone())).await
    }

    /// Posts a deposit: through the queue when batching.
    pub(super) async fn deposit(
        &self,
        cmd: &DepositCommand,
    ) -> Result<PostingOutcome, PostingError> {
        self.queued(Posting::Deposit(cmd.clone())).await
    }

    async fn queued(&self, posting: Posting) -> Result<PostingOutcome, PostingError> {
        let Some(queue) = &self.batch else {
            return self.alone(&posting).await;
        };
        let (reply, answer) = oneshot::channel();
        // Once queued, the posting runs to its end even if this request goes away.
        queue
            .sender(self)
            .send(Job {
                posting,
                reply,
                caller: tracing::Span::current(),
            })
            .await
            .map_err(|_| PostingError::from_cause(anyhow!("the posting workers ended")))?;
        answer.await.map_err(|_| {
            PostingError::from_cause(anyhow!("a posting worker ended without an answer"))
        })?
    }

    /// Posts one posting in a transaction of its own.
    async fn alone(&self, posting: &Posting) -> Result<PostingOutcome, PostingError> {
        match posting {
            Posting::Spend(c) => {
                self.run(Work::Write, || super::spend::post(&self.db, c, None))
                    .await
            }
            Posting::Hold(h) => {
                self.run(Work::Write, || {
                    super::spend::post(&self.db, &h.spend, Some(h.expires_at))
                })
                .await
            }
            Posting::Deposit(d) => {
                self.run(Work::Write, || super::deposit::post(&self.db, d))
                    .await
            }
        }
    }
}

/// One posting worker: takes what has queued, up to `max`, and posts it.
async fn work(pg: Postgres, rx: Arc<Mutex<mpsc::Receiver<Job>>>, max: usize) {
    loop {
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < max {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        BATCHES.fetch_add(1, Ordering::Relaxed);
        POSTINGS.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        metrics::counter!("waiaas_posting_batches_total").increment(1);
        metrics::counter!("waiaas_posting_batched_total").increment(jobs.len() as u64);
        // One span per batch, linked to the span of every request it carries (a trace
        // shows which batch posted a request, and with whom).
        let span = tracing::info_span!("posting_batch", postings = jobs.len());
        for job in &jobs {
            span.follows_from(&job.caller);
        }
        // A panic ends the batch's task, not the worker: its requests are answered that
        // the worker ended.
        let pg = pg.clone();
        let batch = async move { post_jobs(&pg, jobs).await };
        if let Err(e) = tokio::spawn(tracing::Instrument::instrument(batch, span)).await {
            tracing::error!(error = %e, "A posting batch panicked");
        }
    }
}

/// Posts the jobs of one batch and answers each.
async fn post_jobs(pg: &Postgres, jobs: Vec<Job>) {
    let same_day = jobs
        .iter()
        .all(|j| j.posting.now().date_naive() == jobs[0].posting.now().date_naive());
    if jobs.len() == 1 || !same_day {
        return alone(pg, jobs).await;
    }
    let cmds: Vec<&Posting> = jobs.iter().map(|j| &j.posting).collect();
    match pg.run(Work::Write, || post(&pg.db, &cmds)).await {
        Ok(None) => {
            SPLIT.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("waiaas_posting_batches_split_total", "reason" => "expected")
                .increment(1);
            alone(pg, jobs).await;
        }
        Ok(Some(answers)) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            let unknown = e.cause().and_then(Fault::of) == Some(Fault::OutcomeUnknown);
            if unknown {
                // The commit's outcome is unknown: posting again could move money twice. A
                // retry with the same idempotency key finds out.
                tracing::warn!(
                    postings = jobs.len(),
                    "A batch's commit has an unknown outcome"
                );
                for job in jobs {
                    let _ = job.reply.send(Err(PostingError::from_cause(
                        anyhow!("the connection was lost while committing a batch of postings")
                            .context(Fault::OutcomeUnknown),
                    )));
                }
                return;
            }
            let cause = e.cause().map(|c| format!("{c:#}"));
            tracing::warn!(
                postings = jobs.len(),
                error = %e,
                cause = ?cause,
                "A batch failed: posting its postings one by one"
            );
            SPLIT.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("waiaas_posting_batches_split_total", "reason" => "failed")
                .increment(1);
            alone(pg, jobs).await;
        }
    }
}

/// Posts each job in a transaction of its own, all at once (one waiting for a lock does not
/// hold the others back).
async fn alone(pg: &Postgres, jobs: Vec<Job>) {
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let pg = pg.clone();
        set.spawn(async move {
            let answer = pg.alone(&job.posting).await;
            let _ = job.reply.send(answer);
        });
    }
    while set.join_next().await.is_some() {}
}

/// A wallet's rules and the spend they bound, as the batch's postings change it.
#[derive(Debug)]
struct Spending {
    rules: PolicyRules,
    usage: Usage,
}

/// A budget's level: `agent` or `owner`, the principal and the asset.
type LevelKey = (&'static str, Uuid, String);

/// A posting decided and to be written.
#[derive(Debug)]
struct Decided {
    /// Its index in the batch.
    at: usize,
    id: Uuid,
    status: TransactionStatus,
    owner: Uuid,
    from: Uuid,
    /// The balances after it (a completed posting).
    balances: Vec<WalletBalance>,
    /// The owner it notified (held or denied), with its notifications' new version.
    notified: Option<(OwnerId, i64)>,
}

/// How a posting of the batch is answered.
#[derive(Debug)]
enum Answer {
    /// Refused, or a replay of an earlier batch's transaction: answered as it is.
    Done(Box<Result<PostingOutcome, PostingError>>),
    /// Its key was used by an earlier posting of this batch (the index in `decided`).
    Repeat {
        of: usize,
        balances: Vec<WalletBalance>,
    },
    /// Decided (the index in `decided`).
    Decided(usize),
}

/// A column of a row, or why not.
fn get<T: sea_orm::TryGetable>(row: &sea_orm::QueryResult, column: &str) -> anyhow::Result<T> {
    row.try_get("", column)
        .with_context(|| format!("reading column {column}"))
}

fn add(a: Money, b: Money) -> Money {
    Money::new(a.minor_units().saturating_add(b.minor_units())).unwrap_or(a)
}

/// Posts a batch of transfers, payments, holds and deposits of one UTC day in one
/// transaction; the outer error fails the whole batch (nothing of it is kept), the inner ones
/// answer one posting.
/// `None`: nothing was kept, and the postings are to be posted one by one (a paying wallet
/// has expired holds to release, or a key was used concurrently).
async fn post(
    db: &DatabaseConnection,
    cmds: &[&Posting],
) -> Result<Option<Vec<Result<PostingOutcome, PostingError>>>, PostingError> {
    let now = cmds
        .iter()
        .map(|c| c.now().trunc_subsecs(6))
        .max()
        .context("an empty batch")?;
    let day = now.date_naive();
    let month = day.with_day(1).unwrap_or(day);
    let mut ids: Vec<Uuid> = cmds.iter().flat_map(|c| c.wallets()).collect();
    ids.sort_unstable();
    ids.dedup();

    let txn = db.start().await.doing("beginning a batch of postings")?;
    // 1. The wallets, in id order, in one statement.
    let locked = shared::lock_wallets(&txn, &ids, Uuid::nil(), None, now).await?;
    let mut wallets: HashMap<Uuid, LockedWallet> =
        locked.wallets.into_iter().map(|w| (w.id, w)).collect();

    // 2. What the keys already produced, as seen after the locks.
    let keyed: Vec<(Uuid, String)> = cmds
        .iter()
        .filter_map(|c| {
            c.idempotency()
                .map(|i| (c.principal(), i.key.as_str().to_owned()))
        })
        .collect();
    let mut prior: HashMap<(Uuid, String), transactions::Model> = HashMap::new();
    if !keyed.is_empty() {
        let rows = txn
            .query_all_raw(stmt(
                sql::BATCH_PRIOR_KEYS,
                vec![
                    uuid_array(keyed.iter().map(|k| k.0)),
                    keyed.iter().map(|k| k.1.clone()).collect::<Vec<_>>().into(),
                ],
            ))
            .await
            .doing("looking up the batch's idempotency keys")?;
        for row in &rows {
            let m = transactions::Model::from_query_result(row, "")
                .context("decoding a prior transaction")?;
            if let (Some(initiator), Some(key)) = (m.initiator_id, m.idempotency_key.clone()) {
                prior.insert((initiator, key), m);
            }
        }
    }
    let fresh = |c: &Posting| {
        c.idempotency()
            .is_none_or(|i| !prior.contains_key(&(c.principal(), i.key.as_str().to_owned())))
    };

    // Holds past their expiry on a paying wallet are released before anything is decided;
    // the single-posting path does that (and answers for it), so such a batch is posted
    // one by one. It is rare: the sweeper releases them within a second.
    if cmds.iter().any(|c| {
        fresh(c)
            && c.spend().is_some_and(|(s, _)| {
                wallets
                    .get(s.from_wallet_id.as_uuid())
                    .is_some_and(|w| w.expired_held)
            })
    }) {
        txn.rollback().await.doing("rolling back a batch")?;
        return Ok(None);
    }

    // 3. The budgets above the paying wallets, locked, then policies and spend.
    let mut paying: Vec<Uuid> = cmds
        .iter()
        .filter(|c| fresh(c))
        .filter_map(|c| c.spend())
        .map(|(s, _)| *s.from_wallet_id.as_uuid())
        .filter(|id| wallets.contains_key(id))
        .collect();
    paying.sort_unstable();
    paying.dedup();
    // The (principal, asset) pairs above the paying wallets, sorted: the lock order.
    let above = |principal: fn(&LockedWallet) -> Uuid| -> Vec<(Uuid, String)> {
        let mut v: Vec<(Uuid, String)> = paying
            .iter()
            .filter_map(|id| wallets.get(id))
            .map(|w| (principal(w), w.asset.clone()))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let agent_levels = above(|w| w.agent_id);
    let owner_levels = above(|w| w.owner_id);
    let mut levels: HashMap<LevelKey, (BudgetLimits, LevelUsage)> = HashMap::new();
    let mut spending: HashMap<Uuid, Spending> = HashMap::new();
    if !paying.is_empty() {
        let pairs = |v: &[(Uuid, String)]| -> [sea_orm::Value; 2] {
            [
                uuid_array(v.iter().map(|p| p.0)),
                v.iter().map(|p| p.1.clone()).collect::<Vec<_>>().into(),
            ]
        };
        let [a1, a2] = pairs(&agent_levels);
        let [o1, o2] = pairs(&owner_levels);
        let budgets = txn
            .query_all_raw(stmt(sql::BATCH_LOCK_BUDGETS, vec![a1, a2, o1, o2]))
            .await
            .doing("locking the batch's budgets")?;
        for row in &budgets {
            let level: String = get(row, "level")?;
            let limit = |c: &str| -> anyhow::Result<Option<Money>> {
                get::<Option<i64>>(row, c)?
                    .map(|v| crate::convert::money(v, "budget limit"))
                    .transpose()
            };
            let limits = BudgetLimits {
                max_per_transaction: limit("max_per_transaction")?,
                daily_limit: limit("daily_limit")?,
                monthly_limit: limit("monthly_limit")?,
            };
            let key: LevelKey = (
                if level == "agent" { "agent" } else { "owner" },
                get(row, "principal")?,
                get(row, "asset")?,
            );
            levels.insert(key, (limits, LevelUsage::default()));
        }
        if !levels.is_empty() {
            let of = |l: &str| -> Vec<(Uuid, String)> {
                levels
                    .keys()
                    .filter(|k| k.0 == l)
                    .map(|k| (k.1, k.2.clone()))
                    .collect()
            };
            let [a1, a2] = pairs(&of("agent"));
            let [o1, o2] = pairs(&of("owner"));
            let rows = txn
                .query_all_raw(stmt(
                    sql::BATCH_LEVEL_SPEND,
                    vec![a1, a2, o1, o2, day.into(), month.into()],
                ))
                .await
                .doing("reading the spend under the batch's budgets")?;
            for row in &rows {
                let level: String = get(row, "level")?;
                let key: LevelKey = (
                    if level == "agent" { "agent" } else { "owner" },
                    get(row, "principal")?,
                    get(row, "asset")?,
                );
                let sum = |c: &str| -> anyhow::Result<Money> {
                    crate::convert::money(get::<Option<i64>>(row, c)?.unwrap_or(0), "spend")
                };
                if let Some(l) = levels.get_mut(&key) {
                    l.1 = LevelUsage {
                        spent_today: sum("today")?,
                        spent_month: sum("month")?,
                    };
                }
            }
        }
        let rows = txn
            .query_all_raw(stmt(
                sql::BATCH_POLICY_AND_SPEND,
                vec![uuid_array(paying.iter().copied()), day.into(), month.into()],
            ))
            .await
            .doing("reading the batch's policies and spend")?;
        for row in &rows {
            let id: Uuid = get(row, "wallet_id")?;
            let rules: PolicyRules = match get::<Option<Json>>(row, "rules")? {
                Some(json) => {
                    serde_json::from_value(json).context("stored policy rules are invalid")?
                }
                None => PolicyRules::default(),
            };
            let sum = |c: &str| -> anyhow::Result<Money> {
                crate::convert::money(get::<Option<i64>>(row, c)?.unwrap_or(0), "spend")
            };
            let count: Option<i32> = get(row, "count_today")?;
            let mut usage = Usage {
                spent_today: sum("spent_today")?,
                count_today: u32::try_from(count.unwrap_or(0)).unwrap_or(0),
                count_last_hour: 0,
                spent_month: sum("spent_month")?,
            };
            if rules.needs_hourly_count() {
                let since = now - chrono::Duration::hours(1);
                let n: i64 = txn
                    .query_one_raw(stmt(sql::HOURLY_COUNT, vec![id.into(), since.into()]))
                    .await
                    .doing("counting the rolling hour")?
                    .ok_or_else(|| anyhow!("hourly count returned no row"))
                    .and_then(|r| get(&r, "n"))?;
                usage.count_last_hour = u32::try_from(n).unwrap_or(u32::MAX);
            }
            spending.insert(id, Spending { rules, usage });
        }
    }

    // 4. Each posting decided in queue order on the state the ones before it left.
    let mut answers: Vec<Answer> = Vec::with_capacity(cmds.len());
    let mut decided: Vec<Decided> = Vec::new();
    let mut rows: Vec<Json> = Vec::new();
    let mut used: HashMap<(Uuid, String), usize> = HashMap::new();
    for (at, c) in cmds.iter().enumerate() {
        let key = c
            .idempotency()
            .map(|i| (c.principal(), i.key.as_str().to_owned()));
        if let Some(k) = &key {
            if let Some(m) = prior.get(k) {
                answers.push(Answer::Done(Box::new(replay(
                    m.clone(),
                    c.idempotency(),
                    &wallets,
                ))));
                continue;
            }
            if let Some(&of) = used.get(k) {
                let balances = snapshots(&wallets, &c.wallets())?;
                answers.push(Answer::Repeat { of, balances });
                continue;
            }
        }
        let verdict = match c {
            Posting::Spend(s) => decide(s, None, &mut wallets, &mut spending, &mut levels)?,
            Posting::Hold(h) => decide(
                &h.spend,
                Some(h.expires_at),
                &mut wallets,
                &mut spending,
                &mut levels,
            )?,
            Posting::Deposit(d) => deposit(d, &mut wallets)?,
        };
        match verdict {
            Err(e) => answers.push(Answer::Done(Box::new(Err(e)))),
            Ok((row, status, balances)) => {
                let from = c.wallets().first().copied().unwrap_or_default();
                let owner = wallets.get(&from).map_or(Uuid::nil(), |w| w.owner_id);
                let id = row
                    .get("id")
                    .and_then(Json::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .context("a decided row has no id")?;
                if let Some(k) = key {
                    used.insert(k, decided.len());
                }
                answers.push(Answer::Decided(decided.len()));
                decided.push(Decided {
                    at,
                    id,
                    status,
                    owner,
                    from,
                    balances,
                    notified: None,
                });
                rows.push(row);
            }
        }
    }

    // 5. The transactions, then what they write, in a fixed number of statements.
    let mut stored: HashMap<Uuid, Transaction> = HashMap::new();
    if !rows.is_empty() {
        let inserted = txn
            .query_all_raw(stmt(
                sql::BATCH_INSERT_TRANSACTIONS,
                vec![Json::Array(rows).into()],
            ))
            .await
            .doing("inserting the batch's transactions")?;
        for row in &inserted {
            let model = transactions::Model::from_query_result(row, "")
                .context("decoding a batch's transaction")?;
            let t = Transaction::try_from(model)?;
            stored.insert(*t.id.as_uuid(), t);
        }
        if stored.len() != decided.len() {
            // A key was used by a request that committed after this batch looked: the
            // postings are posted one by one, each finding what it should.
            tracing::debug!(
                postings = cmds.len(),
                "An idempotency key of the batch was used concurrently: posting one by one"
            );
            txn.rollback().await.doing("rolling back a batch")?;
            return Ok(None);
        }
    }
    let mut entries = Vec::new();
    let mut spend: HashMap<Uuid, (i128, i64)> = HashMap::new();
    let mut audit_rows = Vec::new();
    // Owners are told of what was held or denied, owner by owner (each notification locks
    // its owner's row: two batches take them in the same order), in queue order for each.
    let mut notices: Vec<(usize, NotificationKind)> = decided
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let kind = match d.status {
                TransactionStatus::PendingApproval => NotificationKind::ApprovalRequested,
                TransactionStatus::Denied => NotificationKind::TransferDenied,
                TransactionStatus::Held => NotificationKind::HoldPlaced,
                _ => return None,
            };
            Some((i, kind))
        })
        .collect();
    notices.sort_by_key(|(i, _)| decided[*i].owner);
    for (i, kind) in notices {
        let d = &mut decided[i];
        let t = stored
            .get(&d.id)
            .context("a decided transaction was not stored")?;
        let at = cmds[d.at].now().trunc_subsecs(6);
        let v = shared::notify(&txn, d.owner, kind, d.from, t, at).await?;
        d.notified = Some((OwnerId::from_uuid(d.owner), v));
    }
    // Per wallet: the balance moved, the amount held, and the postings that changed it.
    let mut moved: HashMap<Uuid, (i128, i128, i64)> = HashMap::new();
    for d in &decided {
        let c = cmds[d.at];
        let t = stored
            .get(&d.id)
            .context("a decided transaction was not stored")?;
        let at = c.now().trunc_subsecs(6);
        let amount = t.amount.minor_units();
        let asset = t.asset.as_str();
        let entry = |wallet: Option<Uuid>, account: String, amount: i64| {
            json!({
                "transaction_id": d.id,
                "wallet_id": wallet,
                "account": account,
                "asset": asset,
                "amount": amount,
                "created_at": at,
            })
        };
        match d.status {
            TransactionStatus::Held => {
                let hold = json!({ "hold": t, "balances": &d.balances });
                audit_rows.push(audit_row(
                    c.audit(),
                    d.owner,
                    ("hold.place", "hold"),
                    t,
                    hold,
                    at,
                ));
                let e = moved.entry(d.from).or_default();
                e.1 += i128::from(amount);
                e.2 += 1;
                let s = spend.entry(d.from).or_default();
                s.0 += i128::from(amount);
                s.1 += 1;
            }
            TransactionStatus::Completed => {
                let created = json!({ "transaction": t, "balances": &d.balances });
                audit_rows.push(audit_row(
                    c.audit(),
                    d.owner,
                    ("transaction.create", "transaction"),
                    t,
                    created,
                    at,
                ));
                let mut credit = |wallet: Uuid, amount: i64| {
                    let e = moved.entry(wallet).or_default();
                    e.0 += i128::from(amount);
                    e.2 += 1;
                };
                if let Some((s, _)) = c.spend() {
                    entries.push(entry(Some(d.from), format!("wallet:{}", d.from), -amount));
                    credit(d.from, -amount);
                    match &s.to {
                        Counterparty::Wallet(w) => {
                            let to = *w.as_uuid();
                            entries.push(entry(Some(to), format!("wallet:{to}"), amount));
                            credit(to, amount);
                        }
                        Counterparty::External(dest) => {
                            entries.push(entry(
                                None,
                                format!("external:{}", dest.as_str()),
                                amount,
                            ));
                        }
                    }
                    let s = spend.entry(d.from).or_default();
                    s.0 += i128::from(amount);
                    s.1 += 1;
                } else {
                    // A deposit, from the platform's deposits account.
                    entries.push(entry(Some(d.from), format!("wallet:{}", d.from), amount));
                    entries.push(entry(None, "system:deposits".to_owned(), -amount));
                    credit(d.from, amount);
                }
            }
            _ => {
                let created = json!({ "transaction": t, "balances": [] });
                audit_rows.push(audit_row(
                    c.audit(),
                    d.owner,
                    ("transaction.create", "transaction"),
                    t,
                    created,
                    at,
                ));
            }
        }
    }
    let spend_rows: Vec<Json> = spend
        .iter()
        .map(|(w, (amount, count))| {
            json!({
                "wallet_id": w,
                "day": day,
                "amount": i64::try_from(*amount).unwrap_or(i64::MAX),
                "count": count,
            })
        })
        .collect();
    let mut wallet_rows = Vec::new();
    for (w, (delta, held, bumps)) in &moved {
        let delta = i64::try_from(*delta).context("a batch's balance change overflows")?;
        let held = i64::try_from(*held).context("a batch's held change overflows")?;
        wallet_rows.push(json!({"id": w, "delta": delta, "held": held, "bumps": bumps}));
    }
    if !audit_rows.is_empty() {
        let written = txn
            .query_all_raw(stmt(
                sql::BATCH_WRITES,
                vec![
                    Json::Array(entries).into(),
                    Json::Array(spend_rows).into(),
                    Json::Array(audit_rows).into(),
                    Json::Array(wallet_rows).into(),
                    now.into(),
                ],
            ))
            .await
            .doing("writing the batch")?;
        ensure_that!(
            written.len() == moved.len(),
            "the batch moved {} wallets but updated {}",
            moved.len(),
            written.len()
        );
        for row in &written {
            let id: Uuid = get(row, "id")?;
            let w = wallets
                .get(&id)
                .context("an updated wallet was not locked")?;
            let (balance, held, version): (i64, i64, i64) = (
                get(row, "balance")?,
                get(row, "held")?,
                get(row, "version")?,
            );
            ensure_that!(
                (balance, held, version)
                    == (w.balance.minor_units(), w.held.minor_units(), w.version),
                "wallet {id} was written as {balance}/{held} v{version}, but the batch computed {}/{} v{}",
                w.balance,
                w.held,
                w.version
            );
        }
    }
    commit(txn, "committing a batch of postings").await?;

    // 6. Every posting answered.
    let outcome = |d: &Decided| -> Result<PostingOutcome, PostingError> {
        let transaction = stored
            .get(&d.id)
            .cloned()
            .context("a decided transaction was not stored")?;
        Ok(PostingOutcome {
            transaction,
            replayed: false,
            balances: d.balances.clone(),
            notified: d.notified,
        })
    };
    Ok(Some(
        answers
            .into_iter()
            .zip(cmds)
            .map(|(answer, c)| match answer {
                Answer::Done(r) => *r,
                Answer::Decided(i) => outcome(&decided[i]),
                Answer::Repeat { of, balances } => {
                    let first = &decided[of];
                    let same = cmds[first.at].idempotency().map(|i| &i.request_hash)
                        == c.idempotency().map(|i| &i.request_hash);
                    if !same {
                        return Err(PostingError::IdempotencyConflict);
                    }
                    let mut o = outcome(first)?;
                    o.replayed = true;
                    o.balances = balances;
                    o.notified = None;
                    Ok(o)
                }
            })
            .collect(),
    ))
}

/// The current balances of the given wallets that were locked.
fn snapshots(
    wallets: &HashMap<Uuid, LockedWallet>,
    ids: &[Uuid],
) -> anyhow::Result<Vec<WalletBalance>> {
    ids.iter()
        .filter_map(|id| wallets.get(id))
        .map(LockedWallet::snapshot)
        .collect()
}

/// Answers a posting whose key an earlier batch's transaction used.
fn replay(
    model: transactions::Model,
    idempotency: Option<&Idempotency>,
    wallets: &HashMap<Uuid, LockedWallet>,
) -> Result<PostingOutcome, PostingError> {
    let same = idempotency.is_some_and(|i: &Idempotency| {
        model.request_hash.as_deref() == Some(i.request_hash.as_str())
    });
    if !same {
        return Err(PostingError::IdempotencyConflict);
    }
    let transaction = Transaction::try_from(model)?;
    let ids: Vec<Uuid> = transaction.wallets().iter().map(|w| *w.as_uuid()).collect();
    Ok(PostingOutcome {
        transaction,
        replayed: true,
        balances: snapshots(wallets, &ids)?,
        notified: None,
    })
}

/// A posting decided: its transaction row, status and the balances after it; or why it is
/// refused.
type Verdict = Result<(Json, TransactionStatus, Vec<WalletBalance>), PostingError>;

/// Decides one posting on the batch's state and applies its outcome to it: the transaction
/// row to insert, its status and the balances after it. `Ok(Err(_))` refuses it alone.
#[allow(clippy::too_many_lines)]
fn decide(
    c: &SpendCommand,
    hold: Option<DateTime<Utc>>,
    wallets: &mut HashMap<Uuid, LockedWallet>,
    spending: &mut HashMap<Uuid, Spending>,
    levels: &mut HashMap<LevelKey, (BudgetLimits, LevelUsage)>,
) -> anyhow::Result<Verdict> {
    let agent = *c.agent_id.as_uuid();
    let from_id = *c.from_wallet_id.as_uuid();
    let Some(from) = wallets.get(&from_id) else {
        return Ok(Err(PostingError::WalletNotFound(c.from_wallet_id)));
    };
    if from.agent_id != agent {
        return Ok(Err(PostingError::NotHolder(c.from_wallet_id)));
    }
    if !from.agent_active {
        return Ok(Err(PostingError::AgentNotActive));
    }
    let to_id = match &c.to {
        Counterparty::Wallet(w) => {
            let Some(to) = wallets.get(w.as_uuid()) else {
                return Ok(Err(PostingError::WalletNotFound(*w)));
            };
            if to.asset != from.asset {
                return Ok(Err(PostingError::AssetMismatch {
                    from: waiaas_domain::AssetCode::parse(&from.asset).context("stored asset")?,
                    to: waiaas_domain::AssetCode::parse(&to.asset).context("stored asset")?,
                }));
            }
            if to.closed {
                return Ok(Err(PostingError::WalletClosed(*w)));
            }
            Some(*w.as_uuid())
        }
        Counterparty::External(_) => None,
    };
    let (owner, asset) = (from.owner_id, from.asset.clone());
    let spent = spending
        .get(&from_id)
        .context("the paying wallet's policy was not read")?;
    let agent_key: LevelKey = ("agent", from.agent_id, asset.clone());
    let owner_key: LevelKey = ("owner", owner, asset.clone());
    fn state(l: &(BudgetLimits, LevelUsage)) -> LevelState<'_> {
        LevelState {
            limits: &l.0,
            usage: l.1,
        }
    }
    let decision = {
        let agent_level = levels.get(&agent_key);
        let owner_level = levels.get(&owner_key);
        evaluate_levels(
            &spent.rules,
            from.available(),
            &spent.usage,
            &Levels {
                agent: agent_level.map(state),
                owner: owner_level.map(state),
            },
            &SpendRequest {
                amount: c.amount,
                counterparty: &c.to,
                approved: false,
            },
        )
    };
    if let (Decision::Allow { .. }, Some(to)) = (&decision, to_id)
        && wallets
            .get(&to)
            .is_some_and(|w| w.balance.checked_add(c.amount).is_err())
    {
        return Ok(Err(PostingError::BalanceOverflow));
    }
    let at = c.now.trunc_subsecs(6);
    let shared::SpendRecord {
        recorded:
            shared::Recorded {
                status,
                rule,
                reason,
                budget,
                level,
            },
        kind,
        approval_deadline,
    } = shared::spend_record(
        &decision,
        hold.is_some(),
        to_id.is_some(),
        spent.rules.approval_timeout_s,
        at,
    );
    let destination = match &c.to {
        Counterparty::External(d) => Some(d.as_str()),
        Counterparty::Wallet(_) => None,
    };
    let row = NewTransaction {
        id: *c.transaction_id.as_uuid(),
        kind,
        status,
        asset: &asset,
        amount: c.amount,
        from_wallet: Some(from_id),
        to_wallet: to_id,
        destination,
        memo: c.memo.as_ref().map(|m| m.as_str()),
        metadata: &c.metadata,
        owner_id: owner,
        initiator: Actor::Agent(c.agent_id),
        idempotency: c.idempotency.as_ref(),
        rule,
        reason,
        budget,
        now: at,
        expires_at: hold,
        hold_id: None,
        level,
        approval_deadline,
        mandate_id: None,
    }
    .to_json()?;
    let mut balances = Vec::new();
    if status == TransactionStatus::Held {
        let from = wallets
            .get_mut(&from_id)
            .context("the paying wallet is locked")?;
        from.held = from
            .held
            .checked_add(c.amount)
            .map_err(|_| anyhow!("a batch's hold overflows what is held"))?;
        from.version += 1;
        balances.push(from.snapshot()?);
    }
    if matches!(
        status,
        TransactionStatus::Completed | TransactionStatus::Held
    ) {
        let amount = c.amount;
        spent_more(spending, levels, from_id, [&agent_key, &owner_key], amount);
    }
    if status == TransactionStatus::Completed {
        let amount = c.amount;
        let from = wallets
            .get_mut(&from_id)
            .context("the paying wallet is locked")?;
        from.balance = from
            .balance
            .checked_sub(amount)
            .map_err(|_| anyhow!("a batch decided a spend beyond the balance"))?;
        from.version += 1;
        balances.push(from.snapshot()?);
        if let Some(to) = to_id {
            let to = wallets
                .get_mut(&to)
                .context("the receiving wallet is locked")?;
            to.balance = to
                .balance
                .checked_add(amount)
                .map_err(|_| anyhow!("balance overflow"))?;
            to.version += 1;
            balances.push(to.snapshot()?);
        }
    }
    Ok(Ok((row, status, balances)))
}

/// Counts a spend (a completed transfer or payment, or a hold placed) in its wallet's
/// usage and under the budgets above it, for the postings after it.
fn spent_more(
    spending: &mut HashMap<Uuid, Spending>,
    levels: &mut HashMap<LevelKey, (BudgetLimits, LevelUsage)>,
    wallet: Uuid,
    above: [&LevelKey; 2],
    amount: Money,
) {
    if let Some(s) = spending.get_mut(&wallet) {
        s.usage.spent_today = add(s.usage.spent_today, amount);
        s.usage.spent_month = add(s.usage.spent_month, amount);
        s.usage.count_today = s.usage.count_today.saturating_add(1);
        s.usage.count_last_hour = s.usage.count_last_hour.saturating_add(1);
    }
    for key in above {
        if let Some(l) = levels.get_mut(key) {
            l.1.spent_today = add(l.1.spent_today, amount);
            l.1.spent_month = add(l.1.spent_month, amount);
        }
    }
}

/// Decides a deposit on the batch's state and applies it: the transaction row to insert,
/// its status and the balance after it. `Ok(Err(_))` refuses it alone.
fn deposit(
    d: &DepositCommand,
    wallets: &mut HashMap<Uuid, LockedWallet>,
) -> anyhow::Result<Verdict> {
    let id = *d.wallet_id.as_uuid();
    let Some(wallet) = wallets
        .get_mut(&id)
        .filter(|w| w.owner_id == *d.owner_id.as_uuid())
    else {
        return Ok(Err(PostingError::WalletNotFound(d.wallet_id)));
    };
    if wallet.closed {
        return Ok(Err(PostingError::WalletClosed(d.wallet_id)));
    }
    let Ok(balance) = wallet.balance.checked_add(d.amount) else {
        return Ok(Err(PostingError::BalanceOverflow));
    };
    let row = NewTransaction {
        id: *d.transaction_id.as_uuid(),
        kind: TransactionKind::Deposit,
        status: TransactionStatus::Completed,
        asset: &wallet.asset,
        amount: d.amount,
        from_wallet: None,
        to_wallet: Some(id),
        destination: None,
        memo: d.memo.as_ref().map(|m| m.as_str()),
        metadata: &d.metadata,
        owner_id: wallet.owner_id,
        initiator: Actor::Owner(d.owner_id),
        idempotency: d.idempotency.as_ref(),
        rule: None,
        reason: None,
        budget: Budget::default(),
        now: d.now.trunc_subsecs(6),
        expires_at: None,
        hold_id: None,
        level: None,
        approval_deadline: None,
        mandate_id: None,
    }
    .to_json()?;
    wallet.balance = balance;
    wallet.version += 1;
    Ok(Ok((
        row,
        TransactionStatus::Completed,
        vec![wallet.snapshot()?],
    )))
}

/// The audit row of a posting, as JSON for the batch's insert.
fn audit_row(
    ctx: &AuditContext,
    owner: Uuid,
    (action, resource_type): (&str, &str),
    t: &Transaction,
    new_value: Json,
    at: DateTime<Utc>,
) -> Json {
    json!({
        "id": Uuid::now_v7(),
        "owner_id": owner,
        "actor_type": ctx.actor.kind(),
        "actor_id": ctx.actor.id(),
        "action": action,
        "resource_type": resource_type,
        "resource_id": t.id.to_string(),
        "old_value": null,
        "new_value": new_value,
        "request_id": ctx.request_id,
        "ip": ctx.ip.map(|ip| ip.to_string()),
        "created_at": at,
    })
}
