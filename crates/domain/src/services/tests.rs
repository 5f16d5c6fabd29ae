//! Service tests over mocked ports: validation and access rules, and that nothing reaches a
//! repository when the input is refused (a mock with no expectation panics if called).

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::errors::{AccessError, CreateWalletError, PostingError, SetPolicyError};
use crate::ids::{AgentId, OwnerId, WalletId};
use crate::model::{
    AuditContext, Budget, Principal, Session, Transaction, TransactionKind, TransactionStatus,
    WalletOwnership,
};
use crate::money::{Money, MoneyError};
use crate::ports::*;
use crate::values::AssetCode;

#[derive(Default)]
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
}

impl Mocks {
    fn services(self) -> Services {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .returning(|| Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap());
        Services::new(
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
        )
    }
}

struct World {
    owner: OwnerId,
    agent: AgentId,
    usd: WalletId,
    usd2: WalletId,
    eur: WalletId,
    foreign: WalletId,
}

impl World {
    fn new() -> Self {
        Self {
            owner: OwnerId::new(),
            agent: AgentId::new(),
            usd: WalletId::new(),
            usd2: WalletId::new(),
            eur: WalletId::new(),
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

    /// Ownership lookups: the agent holds `usd`, `usd2` and `eur`; `foreign` is another
    /// tenant's USD wallet.
    fn wallets(&self) -> MockWalletRepository {
        let mut m = MockWalletRepository::new();
        let table = [
            (self.usd, self.agent, self.owner, "USD"),
            (self.usd2, self.agent, self.owner, "USD"),
            (self.eur, self.agent, self.owner, "EUR"),
            (self.foreign, AgentId::new(), OwnerId::new(), "USD"),
        ];
        m.expect_ownership().returning(move |id| {
            Ok(table.iter().find(|t| t.0 == id).map(|t| WalletOwnership {
                wallet_id: t.0,
                agent_id: t.1,
                owner_id: t.2,
                asset: AssetCode::parse(t.3).unwrap(),
            }))
        });
        m
    }

    fn transfer(&self, amount: i64) -> TransferRequest {
        TransferRequest {
            from_wallet_id: self.usd,
            to_wallet_id: Some(self.usd2),
            destination: None,
            amount,
            memo: None,
            metadata: None,
            idempotency_key: Some("k-1".into()),
            mandate_id: None,
        }
    }
}

fn ctx() -> AuditContext {
    AuditContext::system()
}

#[tokio::test]
async fn zero_negative_amounts_are_refused_before_any_port_is_called() {
    let w = World::new();
    let s = Mocks::default().services();
    for (amount, expected) in [(0, MoneyError::Zero), (-10, MoneyError::Negative(-10))] {
        let err = s
            .transfer(&w.agent(), w.transfer(amount), &ctx())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PostingError::InvalidAmount(e) if e == expected),
            "{amount}"
        );
    }
}

#[tokio::test]
async fn a_transfer_to_the_same_wallet_is_refused() {
    let w = World::new();
    let s = Mocks::default().services();
    let req = TransferRequest {
        to_wallet_id: Some(w.usd),
        ..w.transfer(5)
    };
    assert!(matches!(
        s.transfer(&w.agent(), req, &ctx()).await,
        Err(PostingError::SameWallet)
    ));
}

#[tokio::test]
async fn a_transfer_needs_exactly_one_target() {
    let w = World::new();
    let s = Mocks::default().services();
    let both = TransferRequest {
        destination: Some("shop".into()),
        ..w.transfer(5)
    };
    assert!(matches!(
        s.transfer(&w.agent(), both, &ctx()).await,
        Err(PostingError::AmbiguousTarget)
    ));
    let neither = TransferRequest {
        to_wallet_id: None,
        ..w.transfer(5)
    };
    assert!(matches!(
        s.transfer(&w.agent(), neither, &ctx()).await,
        Err(PostingError::AmbiguousTarget)
    ));
}

#[tokio::test]
async fn an_agent_cannot_spend_from_a_wallet_it_does_not_hold() {
    let w = World::new();
    let s = Mocks {
        wallets: w.wallets(),
        ..Default::default()
    }
    .services();
    let req = TransferRequest {
        from_wallet_id: w.foreign,
        ..w.transfer(5)
    };
    assert!(
        matches!(s.transfer(&w.agent(), req, &ctx()).await, Err(PostingError::NotHolder(id)) if id == w.foreign)
    );
}

#[tokio::test]
async fn a_transfer_into_another_assets_wallet_is_refused() {
    let w = World::new();
    let s = Mocks {
        wallets: w.wallets(),
        ..Default::default()
    }
    .services();
    let req = TransferRequest {
        to_wallet_id: Some(w.eur),
        ..w.transfer(5)
    };
    let err = s.transfer(&w.agent(), req, &ctx()).await.unwrap_err();
    assert!(
        matches!(err, PostingError::AssetMismatch { ref from, ref to } if from.as_str() == "USD" && to.as_str() == "EUR")
    );
}

#[tokio::test]
async fn a_transfer_to_an_unknown_wallet_is_not_found() {
    let w = World::new();
    let s = Mocks {
        wallets: w.wallets(),
        ..Default::default()
    }
    .services();
    let ghost = WalletId::new();
    let req = TransferRequest {
        to_wallet_id: Some(ghost),
        ..w.transfer(5)
    };
    assert!(
        matches!(s.transfer(&w.agent(), req, &ctx()).await, Err(PostingError::WalletNotFound(id)) if id == ghost)
    );
}

#[tokio::test]
async fn owners_do_not_spend_and_agents_do_not_deposit() {
    let w = World::new();
    let s = Mocks::default().services();
    assert!(matches!(
        s.transfer(&w.owner(), w.transfer(5), &ctx()).await,
        Err(PostingError::Forbidden(_))
    ));
    let dep = DepositRequest {
        wallet_id: w.usd,
        amount: 5,
        memo: None,
        metadata: None,
        idempotency_key: None,
    };
    assert!(matches!(
        s.deposit(&w.agent(), dep, &ctx()).await,
        Err(PostingError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_deposit_into_another_owners_wallet_is_not_found() {
    let w = World::new();
    let s = Mocks {
        wallets: w.wallets(),
        ..Default::default()
    }
    .services();
    let dep = DepositRequest {
        wallet_id: w.foreign,
        amount: 5,
        memo: None,
        metadata: None,
        idempotency_key: Some("dep-1".into()),
    };
    assert!(matches!(
        s.deposit(&w.owner(), dep, &ctx()).await,
        Err(PostingError::WalletNotFound(_))
    ));
}

#[tokio::test]
async fn metadata_must_be_a_small_object() {
    let w = World::new();
    let s = Mocks::default().services();
    let list = TransferRequest {
        metadata: Some(serde_json::json!([1, 2])),
        ..w.transfer(5)
    };
    assert!(matches!(
        s.transfer(&w.agent(), list, &ctx()).await,
        Err(PostingError::InvalidMetadata)
    ));
    let huge = TransferRequest {
        metadata: Some(serde_json::json!({"x": "y".repeat(5000)})),
        ..w.transfer(5)
    };
    assert!(matches!(
        s.transfer(&w.agent(), huge, &ctx()).await,
        Err(PostingError::InvalidMetadata)
    ));
    for nul in [
        serde_json::json!({"note": "a\u{0}b"}),
        serde_json::json!({"a\u{0}": 1}),
        serde_json::json!({"deep": [{"x": ["\u{0}"]}]}),
    ] {
        let req = TransferRequest {
            metadata: Some(nul.clone()),
            ..w.transfer(5)
        };
        assert!(
            matches!(
                s.transfer(&w.agent(), req, &ctx()).await,
                Err(PostingError::InvalidMetadata)
            ),
            "{nul}"
        );
    }
}

#[tokio::test]
async fn money_moves_only_with_an_idempotency_key() {
    let w = World::new();
    let s = Mocks::default().services();
    let keyless = TransferRequest {
        idempotency_key: None,
        ..w.transfer(5)
    };
    assert!(matches!(
        s.transfer(&w.agent(), keyless, &ctx()).await,
        Err(PostingError::MissingIdempotencyKey)
    ));
    let deposit = DepositRequest {
        wallet_id: w.usd,
        amount: 5,
        memo: None,
        metadata: None,
        idempotency_key: None,
    };
    assert!(matches!(
        s.deposit(&w.owner(), deposit, &ctx()).await,
        Err(PostingError::MissingIdempotencyKey)
    ));
}

fn completed(usd: WalletId, usd2: WalletId, agent: AgentId, cmd: &SpendCommand) -> PostingOutcome {
    PostingOutcome {
        transaction: Transaction {
            id: cmd.transaction_id,
            kind: TransactionKind::Transfer,
            status: TransactionStatus::Completed,
            asset: AssetCode::parse("USD").unwrap(),
            amount: cmd.amount,
            from_wallet_id: Some(usd),
            to_wallet_id: Some(usd2),
            destination: None,
            memo: None,
            metadata: serde_json::json!({}),
            initiated_by: crate::model::Actor::Agent(agent),
            idempotency_key: None,
            rule: None,
            reason: None,
            budget: Budget::default(),
            decision: None,
            hold: Default::default(),
            level: None,
            approval_deadline: None,
            mandate_id: None,
            created_at: cmd.now,
            updated_at: cmd.now,
        },
        replayed: false,
        balances: vec![],
        notified: None,
    }
}

#[tokio::test]
async fn a_valid_transfer_is_posted_once_and_wakes_the_relay() {
    let w = World::new();
    let (agent, usd, usd2) = (w.agent, w.usd, w.usd2);
    let mut transactions = MockTransactionRepository::new();
    transactions
        .expect_post_spend()
        .times(1)
        .withf(move |c| {
            c.from_wallet_id == usd
                && c.agent_id == agent
                && c.amount == Money::new(5).unwrap()
                && c.idempotency.is_some()
        })
        .returning(move |c| Ok(completed(usd, usd2, agent, c)));
    // The relay is woken once: the events were committed with the posting.
    let mut feed = MockEventFeed::new();
    feed.expect_committed().times(1).return_const(());
    let s = Mocks {
        wallets: w.wallets(),
        transactions,
        feed,
        ..Default::default()
    }
    .services();
    let out = s.transfer(&w.agent(), w.transfer(5), &ctx()).await.unwrap();
    assert_eq!(out.transaction.status, TransactionStatus::Completed);
}

#[test]
fn the_idempotency_fingerprint_changes_with_the_request() {
    let key = || crate::values::IdempotencyKey::parse("k").unwrap();
    let a = Idempotency::bind(key(), &("spend", 5));
    let b = Idempotency::bind(key(), &("spend", 5));
    let c = Idempotency::bind(key(), &("spend", 6));
    assert_eq!(a, b);
    assert_ne!(a.request_hash, c.request_hash);
}

#[tokio::test]
async fn an_unknown_asset_is_refused_when_opening_a_wallet() {
    let w = World::new();
    let mut agents = MockAgentRepository::new();
    let (agent_id, owner_id) = (w.agent, w.owner);
    agents.expect_get().returning(move |_| {
        Ok(Some(crate::model::Agent {
            id: agent_id,
            owner_id,
            name: crate::values::Name::parse("bot").unwrap(),
            status: crate::model::AgentStatus::Active,
            version: 1,
            created_at: Utc::now(),
        }))
    });
    let mut wallets = MockWalletRepository::new();
    wallets.expect_asset().returning(|_| Ok(None));
    let s = Mocks {
        agents,
        wallets,
        ..Default::default()
    }
    .services();
    let err = s
        .create_wallet(&w.owner(), w.agent, "XYZ", None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, CreateWalletError::UnknownAsset(ref a) if a.as_str() == "XYZ"));
    let err = s
        .create_wallet(&w.owner(), w.agent, "usd", None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, CreateWalletError::Invalid(_)));
}

#[tokio::test]
async fn an_agent_cannot_change_its_own_policy() {
    let w = World::new();
    let s = Mocks {
        wallets: w.wallets(),
        ..Default::default()
    }
    .services();
    let err = s
        .set_policy(&w.agent(), w.usd, crate::PolicyRules::default(), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SetPolicyError::Forbidden));
    let err = s
        .set_policy(&w.owner(), w.foreign, crate::PolicyRules::default(), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SetPolicyError::NotFound));
}

#[tokio::test]
async fn another_tenants_wallet_reads_as_not_found() {
    let w = World::new();
    let s = Mocks {
        wallets: w.wallets(),
        ..Default::default()
    }
    .services();
    assert!(matches!(
        s.balance(&w.owner(), w.foreign).await,
        Err(AccessError::NotFound)
    ));
    assert!(matches!(
        s.balance(&w.agent(), w.foreign).await,
        Err(AccessError::NotFound)
    ));
}

#[tokio::test]
async fn revoked_and_expired_sessions_do_not_authenticate() {
    let w = World::new();
    let principal = w.agent();
    let mut sessions = MockSessionRepository::new();
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    sessions.expect_find_session().returning(move |hash| {
        let is = |t: &str| *hash == crate::model::Secret::from_client(t).hash();
        let (expires_at, revoked_at) = if is("wst_revoked") {
            (now + chrono::Duration::hours(1), Some(now))
        } else if is("wst_expired") {
            (now - chrono::Duration::seconds(1), None)
        } else {
            (now + chrono::Duration::hours(1), None)
        };
        Ok(Some(Session {
            id: crate::ids::SessionId::new(),
            token_hash: hash.clone(),
            principal,
            expires_at,
            revoked_at,
            version: 1,
        }))
    });
    let s = Mocks {
        sessions,
        ..Default::default()
    }
    .services();
    assert!(s.authenticate("wst_revoked").await.is_err());
    assert!(s.authenticate("wst_expired").await.is_err());
    assert!(s.authenticate("bogus").await.is_err());
    let (p, kind) = s.authenticate("wst_good").await.unwrap();
    assert_eq!(p, principal);
    assert_eq!(kind, crate::CredentialKind::Session);
}
