//! What the checker's clients do: money-moving requests with idempotency keys, retried with
//! the same key until they have a real answer (and sometimes abandoned half-way, as a client
//! that disconnects or a request that times out is); policy changes, notifications read,
//! sessions opened and revoked; and reads of everything, recorded for the checks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use waiaas_app::App;
use waiaas_domain::errors::{AccessError, AgentError, AuthError, PostingError, SetPolicyError};
use waiaas_domain::ports::PostingOutcome;
use waiaas_domain::services::{CaptureRequest, DepositRequest, HoldRequest, TransferRequest};
use waiaas_domain::{
    AuditContext, Fault, Money, PolicyRules, Principal, TransactionId, TransactionStatus, WalletId,
};
use waiaas_testkit::{History, Resource};

use super::env::{BLOCKED, Shared};

/// A small deterministic generator per task.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) const fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 17
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How the HTTP API would answer an error.
#[derive(Debug)]
pub(super) enum Answer {
    /// A 4xx: the request was refused and did nothing.
    Refused(String),
    /// A 503 with this code: retry.
    Unavailable(&'static str),
    /// A 500: a bug, or a fault the service failed to name.
    Bug(String),
}

fn unknown(e: &anyhow::Error) -> Answer {
    match Fault::of(e) {
        Some(f) => Answer::Unavailable(f.code()),
        None => Answer::Bug(format!("{e:#}")),
    }
}

pub(super) trait Classify {
    fn answer(&self) -> Answer;
}

impl Classify for PostingError {
    fn answer(&self) -> Answer {
        match self {
            Self::Unknown(e) => unknown(e),
            other => Answer::Refused(other.to_string()),
        }
    }
}

impl Classify for AccessError {
    fn answer(&self) -> Answer {
        match self {
            Self::Unknown(e) => unknown(e),
            other => Answer::Refused(other.to_string()),
        }
    }
}

impl Classify for SetPolicyError {
    fn answer(&self) -> Answer {
        match self {
            Self::Unknown(e) => unknown(e),
            other => Answer::Refused(other.to_string()),
        }
    }
}

impl Classify for AuthError {
    fn answer(&self) -> Answer {
        match self {
            Self::Unknown(e) => unknown(e),
            Self::Unauthenticated => Answer::Refused("unauthenticated".into()),
        }
    }
}

impl Classify for AgentError {
    fn answer(&self) -> Answer {
        match self {
            Self::Unknown(e) => unknown(e),
            other => Answer::Refused(other.to_string()),
        }
    }
}

impl Classify for waiaas_domain::RepoError {
    fn answer(&self) -> Answer {
        unknown(&self.0)
    }
}

/// Kinds of money movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Deposit,
    Transfer,
    Payment,
    /// A hold for a payment; the ledger keeps it under its key.
    Hold,
    /// The capture of a hold (a payment of `amount`).
    Capture,
}

/// The final word on one money-moving request.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    Acked {
        id: TransactionId,
        status: TransactionStatus,
    },
    Refused(String),
    Unresolved,
}

/// One money-moving request, as its client saw it.
#[derive(Debug, Clone)]
pub(super) struct Op {
    pub key: String,
    pub kind: Kind,
    pub wallet: WalletId,
    pub to: Option<WalletId>,
    pub destination: Option<String>,
    pub amount: i64,
    /// A hold's lifetime, or the hold a capture spends.
    pub hold: HoldPart,
    /// The mandate a payment names.
    pub mandate: Option<waiaas_domain::MandateId>,
    pub outcome: Outcome,
}

/// What only holds and captures carry.
#[derive(Debug, Clone, Copy, Default)]
pub(super) enum HoldPart {
    #[default]
    None,
    /// A hold living this many seconds.
    Lifetime(i64),
    /// A capture of this hold.
    Of(TransactionId),
}

/// Counters of the run.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// 503 answers by code.
    pub codes: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    pub ops: AtomicU64,
    pub failed: AtomicU64,
    pub unavailable: AtomicU64,
    pub dropped: AtomicU64,
    pub retried: AtomicU64,
    pub replays: AtomicU64,
}

/// Everything the clients share.
pub(super) struct Run {
    pub env: Shared,
    pub history: History,
    pub stats: Stats,
    pub ledger: Mutex<Vec<Op>>,
    pub stop: AtomicBool,
    pub errors: Mutex<Vec<String>>,
    pub revoked: Mutex<Vec<String>>,
    /// How long a client keeps retrying one request.
    pub patience: Duration,
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Run {
    pub(super) fn fail(&self, what: &str, e: impl std::fmt::Display) {
        add(&self.stats.failed);
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.len() < 20 {
            errors.push(format!("{what}: {e}"));
        }
    }

    fn unavailable(&self, code: &'static str) {
        add(&self.stats.unavailable);
        *self
            .stats
            .codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(code)
            .or_default() += 1;
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn owner(&self) -> Principal {
        Principal::Owner {
            owner_id: self.env.owner,
        }
    }

    fn agent(&self) -> Principal {
        Principal::Agent {
            agent_id: self.env.agent,
            owner_id: self.env.owner,
        }
    }

    /// An answer, or `None` for a request abandoned half-way: a quarter of the requests are
    /// given a random 0–25 ms to finish, as a client that disconnects or a request that
    /// times out.
    async fn attempt<T>(&self, rng: &mut Rng, fut: impl Future<Output = T>) -> Option<T> {
        if rng.below(4) == 0 {
            let limit = Duration::from_millis(rng.below(25));
            match tokio::time::timeout(limit, fut).await {
                Ok(v) => Some(v),
                Err(_) => {
                    add(&self.stats.dropped);
                    None
                }
            }
        } else {
            Some(fut.await)
        }
    }

    /// Handles an error answer; `true` when the request should be tried again.
    fn retry_after(&self, what: &str, a: &Answer) -> bool {
        match a {
            Answer::Refused(_) => false,
            Answer::Unavailable(code) => {
                self.unavailable(code);
                true
            }
            Answer::Bug(e) => {
                self.fail(&format!("{what} answered 500"), e);
                true
            }
        }
    }

    fn record_posting(&self, out: &PostingOutcome) {
        for b in &out.balances {
            self.history.write_value(
                Resource::Balance(b.wallet_id),
                b.version,
                Some(format!("{}/{}", b.balance, b.held)),
            );
            self.history
                .write(Resource::Summary(b.wallet_id), b.version);
        }
        if let Some((owner, version)) = out.notified {
            self.history.write(Resource::Unread(owner), version);
        }
    }

    /// Posts one money movement, retrying with the same key until it has a real answer;
    /// returns that answer.
    pub(super) async fn post(&self, rng: &mut Rng, mut op: Op, instance: usize) -> Outcome {
        add(&self.stats.ops);
        let deadline = Instant::now() + self.patience;
        let mut tries = 0;
        op.outcome = loop {
            let app = self.env.instance(instance + tries);
            let answer = self.attempt(rng, self.send(&app, &op)).await;
            match answer {
                Some(Ok(out)) => {
                    self.record_posting(&out);
                    if out.replayed && tries > 0 {
                        add(&self.stats.replays);
                    }
                    break Outcome::Acked {
                        id: out.transaction.id,
                        status: out.transaction.status,
                    };
                }
                Some(Err(e)) => {
                    let a = e.answer();
                    if !self.retry_after("a posting", &a) {
                        break Outcome::Refused(format!("{a:?}"));
                    }
                }
                None => {}
            }
            if Instant::now() > deadline {
                break Outcome::Unresolved;
            }
            tries += 1;
            add(&self.stats.retried);
            tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
        };
        let outcome = op.outcome.clone();
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(op);
        outcome
    }

    async fn send(&self, app: &App, op: &Op) -> Result<PostingOutcome, PostingError> {
        let audit = AuditContext::system();
        match op.kind {
            Kind::Deposit => {
                let req = DepositRequest {
                    wallet_id: op.wallet,
                    amount: op.amount,
                    memo: None,
                    metadata: None,
                    idempotency_key: Some(op.key.clone()),
                };
                app.services.deposit(&self.owner(), req, &audit).await
            }
            Kind::Transfer | Kind::Payment => {
                let req = TransferRequest {
                    from_wallet_id: op.wallet,
                    to_wallet_id: op.to,
                    destination: op.destination.clone(),
                    amount: op.amount,
                    memo: None,
                    metadata: None,
                    idempotency_key: Some(op.key.clone()),
                    mandate_id: op.mandate,
                };
                app.services.transfer(&self.agent(), req, &audit).await
            }
            Kind::Hold => {
                let req = HoldRequest {
                    spend: TransferRequest {
                        from_wallet_id: op.wallet,
                        to_wallet_id: op.to,
                        destination: op.destination.clone(),
                        amount: op.amount,
                        memo: None,
                        metadata: None,
                        idempotency_key: Some(op.key.clone()),
                        mandate_id: None,
                    },
                    expires_in_s: match op.hold {
                        HoldPart::Lifetime(s) => Some(s),
                        _ => None,
                    },
                };
                app.services.create_hold(&self.agent(), req, &audit).await
            }
            Kind::Capture => {
                let HoldPart::Of(hold_id) = op.hold else {
                    return Err(PostingError::Forbidden("a capture names its hold"));
                };
                let req = CaptureRequest {
                    hold_id,
                    amount: Some(op.amount),
                    idempotency_key: Some(op.key.clone()),
                };
                app.services.capture_hold(&self.agent(), req, &audit).await
            }
        }
    }

    /// Places a hold that lives one to three seconds; then captures part of it, voids it,
    /// or leaves it to the instances' sweepers, which race each other to release it.
    async fn hold_then(&self, rng: &mut Rng, op: Op, instance: usize) {
        let amount = op.amount;
        let Outcome::Acked {
            id,
            status: TransactionStatus::Held,
        } = self.post(rng, op.clone(), instance).await
        else {
            return;
        };
        match rng.below(3) {
            0 => {
                let part =
                    1 + i64::try_from(rng.below(u64::try_from(amount).unwrap_or(1))).unwrap_or(0);
                let capture = Op {
                    key: uuid::Uuid::new_v4().to_string(),
                    kind: Kind::Capture,
                    amount: part,
                    hold: HoldPart::Of(id),
                    outcome: Outcome::Unresolved,
                    ..op
                };
                self.post(rng, capture, instance).await;
            }
            1 => self.void(rng, id).await,
            _ => {}
        }
    }

    /// Voids a hold, retrying until it is answered (a void is idempotent).
    async fn void(&self, rng: &mut Rng, id: TransactionId) {
        add(&self.stats.ops);
        let deadline = Instant::now() + self.patience;
        loop {
            let app = self
                .env
                .instance(usize::try_from(rng.below(2)).unwrap_or(0));
            let (owner, audit) = (self.owner(), AuditContext::system());
            match self
                .attempt(rng, app.services.void_hold(&owner, id, &audit))
                .await
            {
                Some(Ok(out)) => {
                    self.record_posting(&out);
                    return;
                }
                Some(Err(e)) if !self.retry_after("a void", &e.answer()) => {
                    self.fail("a void was refused", format!("{:?}", e.answer()));
                    return;
                }
                _ => {}
            }
            if Instant::now() > deadline {
                self.fail("a void", "never acknowledged");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
        }
    }

    /// Replaces a wallet's policy, retrying until it is acknowledged.
    async fn set_policy(&self, rng: &mut Rng, w: WalletId) {
        add(&self.stats.ops);
        let limit = 1_000_000_000 + i64::try_from(rng.below(1000)).unwrap_or(0);
        let rules = PolicyRules {
            daily_limit: Money::new(limit).ok(),
            blocked_destinations: waiaas_domain::Counterparty::parse(BLOCKED)
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let deadline = Instant::now() + self.patience;
        loop {
            let app = self
                .env
                .instance(usize::try_from(rng.below(2)).unwrap_or(0));
            let (owner, audit) = (self.owner(), AuditContext::system());
            let put = app.services.set_policy(&owner, w, rules.clone(), &audit);
            match self.attempt(rng, put).await {
                Some(Ok(p)) => {
                    self.history.write_value(
                        Resource::Policy(w),
                        p.version,
                        Some(limit.to_string()),
                    );
                    return;
                }
                Some(Err(e)) if !self.retry_after("a policy change", &e.answer()) => {
                    self.fail("a policy change was refused", format!("{:?}", e.answer()));
                    return;
                }
                _ => {}
            }
            if Instant::now() > deadline {
                self.fail("a policy change", "never acknowledged");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
        }
    }

    /// Marks the newest unread notification read.
    async fn mark_read(&self, rng: &mut Rng) {
        add(&self.stats.ops);
        let app = self
            .env
            .instance(usize::try_from(rng.below(2)).unwrap_or(0));
        let page = match app
            .services
            .notifications(&self.owner(), Some(20), None)
            .await
        {
            Ok((page, _)) => page,
            Err(e) => {
                self.retry_after("listing notifications", &e.answer());
                return;
            }
        };
        let Some(n) = page.items.iter().find(|n| n.read_at.is_none()) else {
            return;
        };
        let deadline = Instant::now() + self.patience;
        loop {
            let app = self
                .env
                .instance(usize::try_from(rng.below(2)).unwrap_or(0));
            let (owner, audit) = (self.owner(), AuditContext::system());
            let mark = app.services.mark_notification_read(&owner, n.id, &audit);
            match self.attempt(rng, mark).await {
                Some(Ok((_, count))) => {
                    self.history.write_value(
                        Resource::Unread(self.env.owner),
                        count.version,
                        Some(count.count.to_string()),
                    );
                    return;
                }
                Some(Err(e)) if !self.retry_after("marking read", &e.answer()) => return,
                _ => {}
            }
            if Instant::now() > deadline {
                self.fail("marking a notification read", "never acknowledged");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
        }
    }

    /// A writer: deposits, transfers, payments (some to the blocked destination), policy
    /// changes and notifications read.
    pub(super) async fn writer(&self, seed: u64) {
        let mut rng = Rng::new(seed);
        let wallets = &self.env.wallets;
        while !self.stopped() {
            let n = wallets.len() as u64;
            let w = wallets[usize::try_from(rng.below(n)).unwrap_or(0)];
            let other = wallets[usize::try_from(rng.below(n)).unwrap_or(0)];
            let amount = 1 + i64::try_from(rng.below(20)).unwrap_or(0);
            let instance = usize::try_from(rng.below(2)).unwrap_or(0);
            let op = |kind, to, destination: Option<&str>, amount| Op {
                key: uuid::Uuid::new_v4().to_string(),
                kind,
                wallet: w,
                to,
                destination: destination.map(str::to_owned),
                amount,
                hold: HoldPart::None,
                mandate: None,
                outcome: Outcome::Unresolved,
            };
            match rng.below(20) {
                0 => {
                    self.post(&mut rng, op(Kind::Deposit, None, None, 500), instance)
                        .await;
                }
                1 => self.set_policy(&mut rng, w).await,
                2 => self.mark_read(&mut rng).await,
                3 => {
                    let blocked = op(Kind::Payment, None, Some(BLOCKED), amount);
                    self.post(&mut rng, blocked, instance).await;
                }
                4 | 5 => {
                    // Every other payment names the wallet's mandate.
                    let at = self.env.wallets.iter().position(|x| *x == w);
                    let paid = Op {
                        mandate: at
                            .filter(|_| rng.below(2) == 0)
                            .map(|i| self.env.mandates[i]),
                        ..op(Kind::Payment, None, Some("merchant-7"), amount)
                    };
                    self.post(&mut rng, paid, instance).await;
                }
                6 | 7 => {
                    let lifetime = 1 + i64::try_from(rng.below(3)).unwrap_or(0);
                    let held = Op {
                        hold: HoldPart::Lifetime(lifetime),
                        ..op(Kind::Hold, None, Some("merchant-7"), amount)
                    };
                    self.hold_then(&mut rng, held, instance).await;
                }
                _ if w != other => {
                    let moved = op(Kind::Transfer, Some(other), None, amount);
                    self.post(&mut rng, moved, instance).await;
                }
                _ => {}
            }
        }
    }

    /// A reader of balances, policies, summaries, the unread count, the owner's home and revoked
    /// credentials.
    pub(super) async fn reader(&self, seed: u64) {
        let mut rng = Rng::new(seed);
        while !self.stopped() {
            let which = usize::try_from(rng.below(2)).unwrap_or(0);
            let label = if which == 0 {
                "instance-a"
            } else {
                "instance-b"
            };
            let app = self.env.instance(which);
            let n = self.env.wallets.len() as u64;
            let w = self.env.wallets[usize::try_from(rng.below(n)).unwrap_or(0)];
            add(&self.stats.ops);
            self.read_one(&app, rng.below(9), w, label).await;
        }
    }

    pub(super) async fn read_one(&self, app: &App, what: u64, w: WalletId, label: &'static str) {
        let start = Instant::now();
        let agent = self.agent();
        match what {
            0..=2 => match app.services.balance(&agent, w).await {
                Ok(b) => self.history.read_value(
                    Resource::Balance(w),
                    start,
                    b.version,
                    Some(format!("{}/{}", b.balance, b.held)),
                    label,
                ),
                Err(e) => self.read_failed("a balance read", &e.answer()),
            },
            3 => match app.services.get_policy(&agent, w).await {
                Ok(p) => self.history.read_value(
                    Resource::Policy(w),
                    start,
                    p.version,
                    p.rules.daily_limit.map(|l| l.to_string()),
                    label,
                ),
                Err(e) => self.read_failed("a policy read", &e.answer()),
            },
            4 => match app.services.summary(&agent, w).await {
                Ok(s) => self.history.read_value(
                    Resource::Summary(w),
                    start,
                    s.version,
                    Some(format!("{}/{}", s.today.spent, s.today.count)),
                    label,
                ),
                Err(e) => self.read_failed("a summary read", &e.answer()),
            },
            5 => match app
                .services
                .notifications(&self.owner(), Some(1), None)
                .await
            {
                Ok((_, count)) => self.history.read_value(
                    Resource::Unread(self.env.owner),
                    start,
                    count.version,
                    Some(count.count.to_string()),
                    label,
                ),
                Err(e) => self.read_failed("an unread count read", &e.answer()),
            },
            // The owner's home: every wallet's balance in it is a read of that balance, held
            // to the same rule (never older than a write acknowledged before it started).
            6 => match app.services.home(&self.owner()).await {
                Ok(home) => {
                    for view in home.agents.iter().flat_map(|a| &a.wallets) {
                        let wallet = &view.wallet;
                        self.history.read_value(
                            Resource::Balance(wallet.id),
                            start,
                            wallet.version,
                            Some(format!("{}/{}", wallet.balance, wallet.held)),
                            if label == "instance-a" {
                                "instance-a home"
                            } else {
                                "instance-b home"
                            },
                        );
                    }
                }
                Err(e) => self.read_failed("a home read", &e.answer()),
            },
            _ => {
                let token = {
                    let revoked = self
                        .revoked
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    revoked.last().cloned()
                };
                if let Some(token) = token {
                    self.login(app, &token).await;
                }
            }
        }
    }

    fn read_failed(&self, what: &str, a: &Answer) {
        match a {
            Answer::Unavailable(code) => self.unavailable(code),
            Answer::Refused(r) => self.fail(&format!("{what} was refused"), r),
            Answer::Bug(e) => self.fail(&format!("{what} answered 500"), e),
        }
    }

    /// Authenticates with `token`, recording whether it worked.
    async fn login(&self, app: &App, token: &str) -> bool {
        let start = Instant::now();
        match app.services.authenticate(token).await {
            Ok(_) => {
                self.history.login(token, start, true);
                true
            }
            Err(e) => {
                if let Answer::Bug(b) = e.answer() {
                    self.fail("an authentication answered 500", b);
                }
                self.history.login(token, start, false);
                false
            }
        }
    }

    /// Issues an agent key that expires in a second, opens a session with it, uses both,
    /// and once the key has expired tries both again through every instance: an expiry ends
    /// a credential as a revocation does, and is checked the same way.
    async fn expire_a_key(&self, rng: &mut Rng) {
        let app = self
            .env
            .instance(usize::try_from(rng.below(2)).unwrap_or(0));
        let issued = app
            .services
            .create_expiring_agent_key(
                self.env.owner,
                self.env.agent,
                Some(Duration::from_secs(1)),
                &AuditContext::system(),
            )
            .await;
        let (key, expires_at) = match issued {
            Ok((_, secret, Some(at))) => (secret.expose().to_owned(), at),
            Ok((_, _, None)) => {
                self.fail("an expiring key", "was issued without an expiry");
                return;
            }
            Err(e) => {
                if let Answer::Bug(b) = e.answer() {
                    self.fail("issuing an expiring key answered 500", b);
                }
                return;
            }
        };
        let mut credentials = vec![key.clone()];
        if let Ok((_, t)) = app
            .services
            .create_session(&self.agent(), &key, &AuditContext::system())
            .await
        {
            credentials.push(t.expose().to_owned());
        }
        for credential in &credentials {
            self.login(&app, credential).await;
        }
        // The instances read the same clock as this process.
        let left = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(left + Duration::from_millis(5)).await;
        for credential in credentials {
            self.history.revoked(&credential);
            for i in 0..3 {
                self.login(&self.env.instance(i), &credential).await;
            }
            self.revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(credential);
        }
    }

    /// Makes an agent with a key and a session opened with it, uses both through every
    /// instance (each may cache them as valid), then deletes the agent or revokes just the key
    /// through one, and once that is acknowledged tries both through every instance: they are
    /// refused at once everywhere.
    async fn delete_an_agent(&self, rng: &mut Rng) {
        let app = self
            .env
            .instance(usize::try_from(rng.below(2)).unwrap_or(0));
        let ctx = AuditContext::system();
        let made = app
            .services
            .create_agent(self.env.owner, "short-lived", &ctx)
            .await;
        let agent = match made {
            Ok(a) => a,
            Err(e) => {
                if let Answer::Bug(b) = e.answer() {
                    self.fail("creating an agent answered 500", b);
                }
                return;
            }
        };
        let (key_id, key) = match app
            .services
            .create_agent_key(self.env.owner, agent.id, &ctx)
            .await
        {
            Ok((id, secret)) => (id, secret.expose().to_owned()),
            Err(e) => {
                if let Answer::Bug(b) = e.answer() {
                    self.fail("issuing a key answered 500", b);
                }
                return;
            }
        };
        let principal = Principal::Agent {
            agent_id: agent.id,
            owner_id: self.env.owner,
        };
        let mut credentials = vec![key.clone()];
        if let Ok((_, t)) = app.services.create_session(&principal, &key, &ctx).await {
            credentials.push(t.expose().to_owned());
        }
        for credential in &credentials {
            for i in 0..3 {
                self.login(&self.env.instance(i), credential).await;
            }
        }
        // Not abandoned half-way: a retry after a failure that still committed finds the
        // agent gone (or the key revoked) only once the first attempt (detached) has
        // finished its cache step.
        let whole_agent = rng.below(2) == 0;
        let deadline = Instant::now() + self.patience;
        loop {
            let app = self
                .env
                .instance(usize::try_from(rng.below(2)).unwrap_or(0));
            let done = if whole_agent {
                app.services
                    .delete_agent(self.env.owner, agent.id, &ctx)
                    .await
            } else {
                app.services
                    .revoke_agent_key(self.env.owner, agent.id, key_id, &ctx)
                    .await
                    .map(|_| ())
            };
            match done {
                Ok(()) | Err(AgentError::NotFound(_)) => break,
                Err(e) => {
                    let _ = self.retry_after("a key revocation", &e.answer());
                }
            }
            if Instant::now() > deadline {
                self.fail("a key revocation", "never acknowledged");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
        }
        for credential in credentials {
            self.history.revoked(&credential);
            for i in 0..3 {
                self.login(&self.env.instance(i), &credential).await;
            }
            self.revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(credential);
        }
    }

    /// Opens sessions, uses them, revokes them (sometimes abandoning the revocation
    /// half-way, then retrying it), and tries them again; every fourth round, lets an
    /// expiring key and its session run out instead, and every eighth deletes an agent (or
    /// revokes one key) whose key and session every instance has seen.
    pub(super) async fn revoker(&self, seed: u64) {
        let mut rng = Rng::new(seed);
        while !self.stopped() {
            add(&self.stats.ops);
            match rng.below(8) {
                0 | 1 => {
                    self.expire_a_key(&mut rng).await;
                    continue;
                }
                2 => {
                    self.delete_an_agent(&mut rng).await;
                    continue;
                }
                _ => {}
            }
            let app = self
                .env
                .instance(usize::try_from(rng.below(2)).unwrap_or(0));
            let opened = app
                .services
                .create_session(&self.agent(), &self.env.agent_key, &AuditContext::system())
                .await;
            let token = match opened {
                Ok((_, t)) => t.expose().to_owned(),
                Err(e) => {
                    if let Answer::Bug(b) = e.answer() {
                        self.fail("opening a session answered 500", b);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            for i in 0..3 {
                self.login(&self.env.instance(i), &token).await;
            }
            let deadline = Instant::now() + self.patience;
            loop {
                let app = self
                    .env
                    .instance(usize::try_from(rng.below(2)).unwrap_or(0));
                let audit = AuditContext::system();
                let revoke = app.services.revoke_session(&token, &audit);
                match self.attempt(&mut rng, revoke).await {
                    Some(Ok(_)) => {
                        self.history.revoked(&token);
                        break;
                    }
                    Some(Err(e)) => {
                        self.retry_after("a revocation", &e.answer());
                    }
                    None => {}
                }
                if Instant::now() > deadline {
                    self.fail("a revocation", "never acknowledged");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10 + rng.below(40))).await;
            }
            for i in 0..3 {
                self.login(&self.env.instance(i), &token).await;
            }
            self.revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(token);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
