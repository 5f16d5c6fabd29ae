//! `waiaas-bench check`: the consistency checker, the project's conscience. Two instances of
//! the service run in this process (separate pools, caches and L1s) over a private
//! PostgreSQL and a private Redis that the checker crashes, restarts, pauses, fills and cuts
//! off. Writers move money with idempotency keys and retry with the same key until they have
//! a real answer, abandoning a quarter of their requests half-way (a client disconnecting, a
//! request timing out); they also change policies and read notifications; a revoker opens,
//! uses and revokes sessions, lets agent keys issued with a one-second lifetime (and the
//! sessions opened with them) expire, and deletes agents (or revokes single keys) whose keys
//! and sessions every instance has used (and may have cached); readers read balances, policies, summaries, unread counts and ended
//! credentials through both instances.
//!
//! Every operation is recorded, then checked: no read older than an acknowledged write, no
//! read older than one that had finished before it started, every version always with the
//! same value, no revoked or expired credential accepted, every acknowledged write in PostgreSQL as it
//! was acknowledged, every refused one without effect, every other one resolved by its retry
//! with the same key, no answer that would have been a 500, money conserved, and the ledger
//! reconciled.

mod env;
mod events;
mod faults;
mod ops;
mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use waiaas_testkit::History;

use self::env::Env;
use self::faults::Fault;
use self::ops::Run;

/// How long and how hard to check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Total run time.
    pub duration: Duration,
    /// Writer tasks.
    pub writers: usize,
    /// Reader tasks.
    pub readers: usize,
    /// Wallets.
    pub wallets: usize,
    /// No progress output.
    pub quiet: bool,
}

impl CheckOptions {
    /// The short form run in CI: every fault once.
    #[must_use]
    pub const fn short() -> Self {
        Self {
            duration: Duration::from_secs(40),
            writers: 6,
            readers: 6,
            wallets: 8,
            quiet: true,
        }
    }
}

/// What the checker found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Operations done.
    pub operations: u64,
    /// Failures: answers that would have been a 500, refused reads, requests never resolved.
    pub failed: u64,
    /// 503 answers (faults the service named; the client retried).
    pub unavailable: u64,
    /// The 503 answers by code.
    pub unavailable_by_code: std::collections::BTreeMap<String, u64>,
    /// Requests abandoned half-way by their client.
    pub dropped: u64,
    /// Retries with the same key.
    pub retried: u64,
    /// Retries answered by a replay of what the first attempt had done.
    pub replays: u64,
    /// Requests still unresolved when the faults stopped (each retried once more then).
    pub leftovers: u64,
    /// Writes recorded.
    pub writes: u64,
    /// Reads recorded.
    pub reads: u64,
    /// Faults injected (each a fault that actually happened, not an attempt).
    pub faults: u64,
    /// Stale reads found.
    pub stale_reads: u64,
    /// Reads older than a read that had finished before they started.
    pub regressions: u64,
    /// Versions seen with two values.
    pub mismatches: u64,
    /// Authentications with a revoked credential that succeeded.
    pub revoked_accepted: u64,
    /// Authentications with a revoked credential, checked.
    pub revocation_checks: u64,
    /// Reads served from Redis.
    pub l2_hits: u64,
    /// Write-throughs that failed (and raised the fence).
    pub failed_write_throughs: u64,
    /// Fences raised.
    pub fences: u64,
    /// Events placed in the outbox (each checked against its transaction, the follower and
    /// the live feeds).
    pub events: u64,
    /// Batches the instances' posting workers took (transfers and payments are batched, as
    /// by default), and the postings they carried: their ratio is the mean batch size.
    pub batches: u64,
    /// Postings those batches carried.
    pub batched_postings: u64,
    /// Batches posted one by one instead (expired holds, a key used concurrently, a failed
    /// statement: a held lock, a PostgreSQL fault).
    pub batches_split: u64,
    /// Rows of the tamper-evident chain (transactions, ledger entries, audit rows) the
    /// instances' sealers and a last seal had sealed by the end, all recomputed by `verify`.
    pub sealed: u64,
    /// Ledger invariants violated (reconcile, totals, acknowledged writes, events, the
    /// chain).
    pub invariant_violations: u64,
    /// Human-readable details of any violation.
    pub details: Vec<String>,
}

impl CheckReport {
    /// Whether nothing was violated.
    #[must_use]
    pub const fn passed(&self) -> bool {
        self.failed == 0
            && self.stale_reads == 0
            && self.regressions == 0
            && self.mismatches == 0
            && self.revoked_accepted == 0
            && self.invariant_violations == 0
    }
}

/// What each wallet starts with.
const INITIAL: i64 = 100_000;

/// Runs the checker.
///
/// # Errors
/// When the environment cannot be set up (PostgreSQL's binaries, `redis-server`) or a fault
/// cannot be injected.
pub async fn run(opts: CheckOptions) -> anyhow::Result<CheckReport> {
    let env = Arc::new(Env::start(opts.wallets, INITIAL).await?);
    let batched_before = waiaas_postgres::batch_stats();
    let run = Arc::new(Run {
        env: env.clone(),
        history: History::new(),
        stats: ops::Stats::default(),
        ledger: std::sync::Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        errors: std::sync::Mutex::new(Vec::new()),
        revoked: std::sync::Mutex::new(Vec::new()),
        patience: Duration::from_secs(20),
    });
    let watch = events::start(&run).await?;
    let mut tasks = Vec::new();
    for t in 0..opts.writers {
        let run = run.clone();
        tasks.push(tokio::spawn(async move { run.writer(17 + t as u64).await }));
    }
    for t in 0..opts.readers {
        let run = run.clone();
        tasks.push(tokio::spawn(
            async move { run.reader(1_001 + t as u64).await },
        ));
    }
    {
        let run = run.clone();
        tasks.push(tokio::spawn(async move { run.revoker(4_242).await }));
    }

    // The faults, one after the other, spread over the run; at least each once.
    let started = Instant::now();
    let mut timeline = Vec::new();
    let step = opts.duration / (Fault::ALL.len() as u32 * 2);
    let say = |m: &str| {
        if !opts.quiet {
            eprintln!("[{:>5.1}s] {m}", started.elapsed().as_secs_f64());
        }
    };
    let mut faults = 0;
    let mut round = 0;
    while round < Fault::ALL.len() || started.elapsed() + step * 2 < opts.duration {
        tokio::time::sleep(step).await;
        let fault = Fault::ALL[round % Fault::ALL.len()];
        say(fault.describe());
        let from = started.elapsed();
        faults::inject(&env, fault, step, round).await?;
        timeline.push(format!(
            "{:>6}–{:>6} ms: {}",
            from.as_millis(),
            started.elapsed().as_millis(),
            fault.describe()
        ));
        faults += 1;
        round += 1;
    }
    tokio::time::sleep(step).await;
    run.stop.store(true, Ordering::Relaxed);
    let mut panics = Vec::new();
    for t in tasks {
        if let Err(e) = t.await {
            panics.push(format!("a client task failed: {e}"));
        }
    }
    say("faults over; verifying");

    let leftovers = verify::resolve_leftovers(&run).await;
    verify::read_everything(&run).await;
    let history = run.history.check();
    let (mut violations, net) = verify::against_postgres(&run).await?;
    // The holds placed last live three seconds at most: the instances' sweepers, racing each
    // other, release them now that nothing fails; each hold must end exactly once.
    for _ in 0..150 {
        let open = env
            .scalar("SELECT count(*)::bigint AS n FROM transactions WHERE status = 'held' AND expires_at < now()")
            .await?;
        if open == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    violations.extend(verify::holds(&run).await?);
    let (event_violations, event_count) = events::verify(&run, watch).await?;
    violations.extend(event_violations);
    let s = &run.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let batches = waiaas_postgres::batch_stats();
    let mut report = CheckReport {
        batches: batches.batches - batched_before.batches,
        batched_postings: batches.postings - batched_before.postings,
        batches_split: batches.split - batched_before.split,
        operations: load(&s.ops),
        failed: load(&s.failed) + panics.len() as u64,
        unavailable: load(&s.unavailable),
        unavailable_by_code: s
            .codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        dropped: load(&s.dropped),
        retried: load(&s.retried),
        replays: load(&s.replays),
        leftovers: leftovers as u64,
        writes: history.writes as u64,
        reads: history.reads as u64,
        faults,
        stale_reads: history.stale_count as u64,
        regressions: history.regression_count as u64,
        mismatches: history.mismatches.len() as u64,
        revoked_accepted: history.revoked_but_accepted as u64,
        revocation_checks: history.revocation_checks as u64,
        invariant_violations: violations.len() as u64,
        events: event_count,
        ..CheckReport::default()
    };
    for i in 0..2 {
        if let Some(c) = &env.instance(i).cache {
            use waiaas_cache::CacheStats as S;
            report.l2_hits += S::get(&c.stats.l2_hits);
            report.failed_write_throughs += S::get(&c.stats.write_failures);
            report.fences += S::get(&c.stats.fences);
        }
    }
    if !report_passed_so_far(&history, &violations) {
        report
            .details
            .push("faults, from the start of the run:".to_owned());
        report
            .details
            .extend(timeline.iter().map(|t| format!("  {t}")));
    }
    report.details.extend(panics);
    report.details.extend(
        run.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned(),
    );
    report.details.extend(violations);
    report
        .details
        .extend(history.stale.iter().map(|s| format!("stale read: {s:?}")));
    report.details.extend(
        history
            .regressions
            .iter()
            .map(|s| format!("read went back: {s:?}")),
    );
    report.details.extend(
        history
            .mismatches
            .iter()
            .map(|m| format!("one version, two values: {m:?}")),
    );

    let reconcile = waiaas_postgres::reconcile(&env.admin).await?;
    if !reconcile.is_consistent() {
        report.invariant_violations += 1;
        report.details.push(reconcile.to_string());
    }
    // The chain the instances sealed under the faults: whatever was left is sealed now, it
    // covers every row written, and it recomputes.
    let rows = env
        .scalar(
            "SELECT ((SELECT count(*) FROM transactions) + (SELECT count(*) FROM ledger_entries) \
             + (SELECT count(*) FROM audit_logs))::bigint AS n",
        )
        .await?;
    let mut idle = 0;
    while idle < 3 {
        // An instance's sealer may hold the head: this one's turn is then skipped.
        if waiaas_postgres::chain::seal(&env.admin, 10_000).await? == 0 {
            idle += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let chain = waiaas_postgres::chain::verify(&env.admin, None).await?;
    report.sealed = u64::try_from(chain.head.position).unwrap_or(0);
    if !chain.is_intact() {
        report.invariant_violations += 1;
        report.details.push(chain.to_string());
    }
    if chain.head.position < rows {
        report.invariant_violations += 1;
        report.details.push(format!(
            "the chain holds {} rows; {rows} were written",
            chain.head.position
        ));
    }
    let total = env
        .scalar("SELECT COALESCE(SUM(balance), 0)::bigint AS n FROM wallets")
        .await?;
    let expected = INITIAL * opts.wallets as i64 + net;
    if total != expected {
        report.invariant_violations += 1;
        report.details.push(format!(
            "balances sum to {total}; the acknowledged deposits and payments say {expected}"
        ));
    }
    env.shutdown().await;
    Ok(report)
}

fn report_passed_so_far(history: &waiaas_testkit::HistoryReport, violations: &[String]) -> bool {
    history.clean() && violations.is_empty()
}
