//! `waiaas-bench check`: the consistency checker. Two instances of the service run in this
//! process (separate pools, caches and L1s) over one PostgreSQL database and one Redis that
//! the checker starts and controls. Writers move money (transfers, payments, deposits) and
//! set policies; readers read balances and policies through both instances; meanwhile Redis
//! is killed and restarted, paused with `CLIENT PAUSE`, and its pub/sub connections (the
//! event bus) are cut. Every operation is recorded, then checked: no stale read, no lost
//! money, no failed request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use waiaas_app::App;
use waiaas_domain::services::{DepositRequest, TransferRequest};
use waiaas_domain::{Money, PolicyRules, TransactionStatus, WalletId};
use waiaas_testkit::{Fixture, History, RedisServer, Resource, World, raw_command, unique_prefix};

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
    /// The short form run in CI.
    #[must_use]
    pub const fn short() -> Self {
        Self {
            duration: Duration::from_secs(15),
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
    /// Operations that failed (any failure: Redis must never cause one).
    pub failed: u64,
    /// Writes recorded.
    pub writes: u64,
    /// Reads recorded.
    pub reads: u64,
    /// Faults injected.
    pub faults: u64,
    /// Stale reads found.
    pub stale_reads: u64,
    /// Reads served from Redis.
    pub l2_hits: u64,
    /// Write-throughs that failed (and raised the fence).
    pub failed_write_throughs: u64,
    /// Fences raised (the epoch marked stale after a failed cache write).
    pub fences: u64,
    /// Ledger invariants violated (reconcile, totals).
    pub invariant_violations: u64,
    /// Human-readable details of any violation.
    pub details: Vec<String>,
}

impl CheckReport {
    /// Whether nothing was violated.
    #[must_use]
    pub const fn passed(&self) -> bool {
        self.failed == 0 && self.stale_reads == 0 && self.invariant_violations == 0
    }
}

struct Shared {
    instances: [App; 2],
    world: World,
    wallets: Vec<WalletId>,
    history: History,
    stop: AtomicBool,
    ops: AtomicU64,
    failed: AtomicU64,
    deposited: AtomicI64,
    paid: AtomicI64,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, what: &str, e: impl std::fmt::Display) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.len() < 10 {
            errors.push(format!("{what}: {e}"));
        }
    }
}

async fn writer(s: Arc<Shared>, seed: u64) {
    let mut i = seed;
    while !s.stop.load(Ordering::Relaxed) {
        i = i
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let app = &s.instances[(i >> 33) as usize % 2];
        let n = s.wallets.len();
        let (a, b) = ((i >> 20) as usize % n, (i >> 40) as usize % n);
        let w = s.wallets[a];
        let amount = 1 + (i >> 50) as i64 % 20;
        s.ops.fetch_add(1, Ordering::Relaxed);
        match (i >> 8) % 20 {
            0 => {
                let req = DepositRequest {
                    wallet_id: w,
                    amount: 500,
                    memo: None,
                    metadata: None,
                    idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
                };
                match app
                    .services
                    .deposit(&s.world.owner(), req, &s.world.owner_ctx())
                    .await
                {
                    Ok(out) => {
                        s.deposited.fetch_add(500, Ordering::Relaxed);
                        out.balances.iter().for_each(|b| {
                            s.history.write(Resource::Balance(b.wallet_id), b.version)
                        });
                    }
                    Err(e) => s.fail("deposit", e),
                }
            }
            1 => {
                let rules = PolicyRules {
                    daily_limit: Some(
                        Money::new(1_000_000_000 + (i % 1000) as i64).unwrap_or_default(),
                    ),
                    ..Default::default()
                };
                match app
                    .services
                    .set_policy(&s.world.owner(), w, rules, &s.world.owner_ctx())
                    .await
                {
                    Ok(p) => s.history.write(Resource::Policy(w), p.version),
                    Err(e) => s.fail("set policy", e),
                }
            }
            2 | 3 => {
                let req = TransferRequest {
                    to_wallet_id: None,
                    destination: Some("merchant-7".into()),
                    ..World::transfer_request(w, w, amount)
                };
                match app
                    .services
                    .transfer(&s.world.agent(), req, &s.world.agent_ctx())
                    .await
                {
                    Ok(out) => {
                        if out.transaction.status == TransactionStatus::Completed {
                            s.paid.fetch_add(amount, Ordering::Relaxed);
                        }
                        out.balances.iter().for_each(|b| {
                            s.history.write(Resource::Balance(b.wallet_id), b.version)
                        });
                    }
                    Err(e) => s.fail("payment", e),
                }
            }
            _ if a != b => match app
                .services
                .transfer(
                    &s.world.agent(),
                    World::transfer_request(w, s.wallets[b], amount),
                    &s.world.agent_ctx(),
                )
                .await
            {
                Ok(out) => out
                    .balances
                    .iter()
                    .for_each(|b| s.history.write(Resource::Balance(b.wallet_id), b.version)),
                Err(e) => s.fail("transfer", e),
            },
            _ => {}
        }
    }
}

async fn reader(s: Arc<Shared>, seed: u64) {
    let mut i = seed;
    while !s.stop.load(Ordering::Relaxed) {
        i = i
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let which = (i >> 33) as usize % 2;
        let app = &s.instances[which];
        let label = if which == 0 {
            "instance-a"
        } else {
            "instance-b"
        };
        let w = s.wallets[(i >> 20) as usize % s.wallets.len()];
        s.ops.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        if (i >> 10).is_multiple_of(4) {
            match app.services.get_policy(&s.world.agent(), w).await {
                Ok(p) => s.history.read(Resource::Policy(w), start, p.version, label),
                Err(e) => s.fail("read policy", e),
            }
        } else {
            match app.services.balance(&s.world.agent(), w).await {
                Ok(b) => s
                    .history
                    .read(Resource::Balance(w), start, b.version, label),
                Err(e) => s.fail("read balance", e),
            }
        }
    }
}

async fn instance(
    db: &waiaas_testkit::TestDb,
    redis: &RedisServer,
    prefix: &str,
) -> anyhow::Result<App> {
    let mut settings = crate::env::settings(db, Some(&redis.url()), 8);
    settings.redis.key_prefix = prefix.to_owned();
    settings.cache.lease_ms = 1_000;
    waiaas_app::build(&settings).await
}

/// Runs the checker.
///
/// # Errors
/// When the environment cannot be set up (PostgreSQL, `redis-server`).
pub async fn run(opts: CheckOptions) -> anyhow::Result<CheckReport> {
    let db = waiaas_testkit::TestDb::with_pool(4).await;
    let mut redis = RedisServer::start().await?;
    let prefix = unique_prefix();
    let instances = [
        instance(&db, &redis, &prefix).await?,
        instance(&db, &redis, &prefix).await?,
    ];
    let world = Fixture::world(&instances[0].services).await;
    let mut wallets = Vec::new();
    for _ in 0..opts.wallets {
        wallets.push(world.wallet("USD", 100_000).await.id);
    }
    let shared = Arc::new(Shared {
        instances,
        world,
        wallets,
        history: History::new(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        deposited: AtomicI64::new(100_000 * opts.wallets as i64),
        paid: AtomicI64::new(0),
        errors: std::sync::Mutex::new(Vec::new()),
    });
    let mut tasks = Vec::new();
    for t in 0..opts.writers {
        tasks.push(tokio::spawn(writer(shared.clone(), 17 + t as u64)));
    }
    for t in 0..opts.readers {
        tasks.push(tokio::spawn(reader(shared.clone(), 1_001 + t as u64)));
    }

    // The faults, spread over the run: kill/restart, pause, pub/sub cut, in a cycle.
    let started = Instant::now();
    let step = opts.duration / 8;
    let mut faults = 0;
    let say = |m: &str| {
        if !opts.quiet {
            eprintln!("[{:>5.1}s] {m}", started.elapsed().as_secs_f64());
        }
    };
    let mut cycle = 0;
    while started.elapsed() + step < opts.duration {
        tokio::time::sleep(step).await;
        match cycle % 3 {
            0 => {
                say("killing Redis");
                redis.kill();
                tokio::time::sleep(step).await;
                redis.restart().await?;
                say("Redis restarted");
            }
            1 => {
                say("pausing Redis (CLIENT PAUSE)");
                redis.pause(step.min(Duration::from_millis(1_500))).await?;
            }
            _ => {
                say("cutting the event bus (CLIENT KILL TYPE pubsub)");
                let _ = raw_command(redis.port(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
            }
        }
        faults += 1;
        cycle += 1;
    }
    let rest = opts.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    // After recovery, one more read of everything through both instances.
    for (k, app) in shared.instances.iter().enumerate() {
        let label = if k == 0 { "instance-a" } else { "instance-b" };
        for w in &shared.wallets {
            let start = Instant::now();
            match app.services.balance(&shared.world.agent(), *w).await {
                Ok(b) => shared
                    .history
                    .read(Resource::Balance(*w), start, b.version, label),
                Err(e) => shared.fail("read after recovery", e),
            }
        }
    }

    let history = shared.history.check();
    let mut report = CheckReport {
        operations: shared.ops.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        writes: history.writes as u64,
        reads: history.reads as u64,
        faults,
        stale_reads: history.stale_count as u64,
        ..CheckReport::default()
    };
    for app in &shared.instances {
        if let Some(c) = &app.cache {
            use waiaas_cache::CacheStats as S;
            report.l2_hits += S::get(&c.stats.l2_hits);
            report.failed_write_throughs += S::get(&c.stats.write_failures);
            report.fences += S::get(&c.stats.fences);
        }
    }
    report.details.extend(
        shared
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned(),
    );
    report
        .details
        .extend(history.stale.iter().map(|s| format!("stale read: {s:?}")));

    let reconcile = waiaas_postgres::reconcile(&db.db).await?;
    if !reconcile.is_consistent() {
        report.invariant_violations += 1;
        report.details.push(reconcile.to_string());
    }
    let mut total = 0_i64;
    for w in &shared.wallets {
        total += shared.instances[0]
            .services
            .balance(&shared.world.owner(), *w)
            .await?
            .balance
            .minor_units();
    }
    let expected = shared.deposited.load(Ordering::Relaxed) - shared.paid.load(Ordering::Relaxed);
    if total != expected {
        report.invariant_violations += 1;
        report.details.push(format!(
            "balances sum to {total}, deposits minus payments is {expected}"
        ));
    }
    for app in &shared.instances {
        app.shutdown().await;
    }
    Ok(report)
}
