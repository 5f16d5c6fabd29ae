//! Router tests: requests sent with `oneshot` through the fully layered router, over the
//! domain's services wired to mockall mocks. A mock with no expectation panics when called,
//! which the router answers with a 500, so a test also fails when an unexpected port is hit.

mod access;
mod errors;
mod logging;
mod money;
mod operations;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tower::ServiceExt;
use waiaas_domain::ports::*;
use waiaas_domain::{
    AgentId, ApiKey, ApiKeyId, AssetCode, Budget, Money, OwnerId, Ports, Principal, Secret,
    ServiceSettings, Services, Transaction, TransactionId, TransactionKind, TransactionStatus,
    WalletId, WalletOwnership,
};

use crate::{AppState, ComponentStatus, HealthCheck, HttpConfig, Readiness};

/// The owner's API key.
const OWNER_KEY: &str = "wak_owner";
/// The agent's API key.
const AGENT_KEY: &str = "wak_agent";
/// Another tenant's owner key.
const STRANGER_KEY: &str = "wak_stranger";

/// Who is who: an owner with one agent holding two USD wallets, and another tenant's wallet.
struct World {
    owner: OwnerId,
    agent: AgentId,
    wallet: WalletId,
    wallet2: WalletId,
    foreign: WalletId,
}

impl World {
    fn new() -> Self {
        Self {
            owner: OwnerId::new(),
            agent: AgentId::new(),
            wallet: WalletId::new(),
            wallet2: WalletId::new(),
            foreign: WalletId::new(),
        }
    }

    fn agent(&self) -> Principal {
        Principal::Agent {
            agent_id: self.agent,
            owner_id: self.owner,
        }
    }

    fn owner(&self) -> Principal {
        Principal::Owner {
            owner_id: self.owner,
        }
    }
}

/// The ports, to be given expectations before the router is built.
struct Mocks {
    owners: MockOwnerRepository,
    agents: MockAgentRepository,
    wallets: MockWalletRepository,
    policies: MockPolicyRepository,
    transactions: MockTransactionRepository,
    sessions: MockSessionRepository,
    audit: MockAuditLog,
    notifications: MockNotificationRepository,
    feed: MockEventFeed,
    webhooks: MockWebhookRepository,
    limiter: MockRateLimiter,
    readiness: Readiness,
    /// How long the readiness probe takes to answer.
    readiness_delay: Duration,
    config: HttpConfig,
}

impl Mocks {
    /// Mocks where the three API keys authenticate, the world's wallets have owners, the relay
    /// can be woken, and no rate limit applies.
    fn new(w: &World) -> Self {
        let mut sessions = MockSessionRepository::new();
        let keys = [
            (OWNER_KEY, w.owner()),
            (AGENT_KEY, w.agent()),
            (
                STRANGER_KEY,
                Principal::Owner {
                    owner_id: OwnerId::new(),
                },
            ),
        ]
        .map(|(k, p)| (Secret::from_client(k).hash(), p));
        sessions.expect_find_api_key().returning(move |hash| {
            Ok(keys.iter().find(|(h, _)| h == hash).map(|(_, p)| ApiKey {
                id: ApiKeyId::new(),
                principal: *p,
                created_at: now(),
                revoked_at: None,
                expires_at: None,
            }))
        });
        let mut wallets = MockWalletRepository::new();
        let table = [
            (w.wallet, w.agent, w.owner),
            (w.wallet2, w.agent, w.owner),
            (w.foreign, AgentId::new(), OwnerId::new()),
        ];
        wallets.expect_ownership().returning(move |id| {
            Ok(table.iter().find(|t| t.0 == id).map(|t| WalletOwnership {
                wallet_id: t.0,
                agent_id: t.1,
                owner_id: t.2,
                asset: AssetCode::parse("USD").unwrap(),
            }))
        });
        let mut feed = MockEventFeed::new();
        feed.expect_committed().return_const(());
        Self {
            owners: MockOwnerRepository::new(),
            agents: MockAgentRepository::new(),
            wallets,
            policies: MockPolicyRepository::new(),
            transactions: MockTransactionRepository::new(),
            sessions,
            audit: MockAuditLog::new(),
            notifications: MockNotificationRepository::new(),
            feed,
            webhooks: MockWebhookRepository::new(),
            limiter: MockRateLimiter::new(),
            readiness: Readiness {
                database: ComponentStatus::Up,
                redis: ComponentStatus::Up,
            },
            readiness_delay: Duration::ZERO,
            config: HttpConfig {
                body_limit_bytes: 1024,
                request_timeout: Duration::from_secs(5),
                bootstrap_token: Some("boot-secret".into()),
                rate: None,
                auth_failure_rate: None,
                trusted_proxies: crate::TrustedProxies::default(),
                metrics: crate::MetricsAccess::Open,
            },
        }
    }

    fn app(self) -> Router {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let services = Services::new(
            Ports {
                owners: Arc::new(self.owners),
                agents: Arc::new(self.agents),
                wallets: Arc::new(self.wallets),
                policies: Arc::new(self.policies),
                transactions: Arc::new(self.transactions),
                sessions: Arc::new(self.sessions),
                audit: Arc::new(self.audit),
                notifications: Arc::new(self.notifications),
                feed: Arc::new(self.feed),
                webhooks: Arc::new(self.webhooks),
                clock: Arc::new(clock),
            },
            ServiceSettings::default(),
        );
        crate::router(AppState {
            services,
            rate_limiter: Arc::new(self.limiter),
            health: Arc::new(FixedHealth(self.readiness, self.readiness_delay)),
            metrics: Arc::new(|| "# TYPE waiaas_up gauge\nwaiaas_up 1\n".to_owned()),
            config: self.config,
            streams: crate::Streams::new(crate::StreamLimits::default(), None),
            consistency: None,
        })
    }
}

/// A readiness probe with a fixed answer, given after a fixed delay.
struct FixedHealth(Readiness, Duration);

#[async_trait]
impl HealthCheck for FixedHealth {
    async fn readiness(&self) -> Readiness {
        tokio::time::sleep(self.1).await;
        self.0.clone()
    }
}

/// The fixed time of every test.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

/// A transaction out of `from` as the posting port would return it.
fn spend(from: WalletId, to: WalletId, amount: i64, status: TransactionStatus) -> Transaction {
    Transaction {
        id: TransactionId::new(),
        kind: TransactionKind::Transfer,
        status,
        asset: AssetCode::parse("USD").unwrap(),
        amount: Money::new(amount).unwrap(),
        from_wallet_id: Some(from),
        to_wallet_id: Some(to),
        destination: None,
        memo: None,
        metadata: serde_json::json!({}),
        initiated_by: waiaas_domain::Actor::System,
        idempotency_key: None,
        rule: None,
        reason: None,
        budget: Budget::default(),
        decision: None,
        hold: Default::default(),
        level: None,
        approval_deadline: None,
        mandate_id: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// A request with an optional bearer credential and an optional JSON body.
fn request(method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// Sends one request and returns the status, the headers and the body as JSON (`Null` when
/// the body is empty, a string when it is not JSON).
async fn send(app: Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (parts.status, parts.headers, value)
}

/// The error code of an error body.
fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
