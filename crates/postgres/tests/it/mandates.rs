//! Mandates against a real PostgreSQL: a use is counted in the spend's commit under the
//! mandate's lock, so 50 uses at once of a mandate allowing 10 give exactly 10; a mandate
//! pre-approves but never lifts a hard limit.

use std::sync::Arc;

use chrono::{Duration, Utc};
use waiaas_domain::model::{MandateRefusal, MandateStatus, TransactionStatus};
use waiaas_domain::services::{MandateRequest, TransferRequest};
use waiaas_domain::{Money, PolicyRules, PostingError};
use waiaas_testkit::{Fixture, TestDb, World, services};

fn money(v: i64) -> Money {
    Money::new(v).unwrap()
}

fn pay(from: waiaas_domain::WalletId, amount: i64, m: waiaas_domain::MandateId) -> TransferRequest {
    TransferRequest {
        to_wallet_id: None,
        destination: Some("cloud-gpu".into()),
        mandate_id: Some(m),
        ..World::transfer_request(from, from, amount)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_uses_at_once_of_a_mandate_for_ten_give_exactly_ten() {
    let db = TestDb::with_pool(16).await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 10_000).await.id;
    // Every payment would need the owner's approval without the mandate.
    world
        .set_rules(
            a,
            PolicyRules {
                approval_above: Some(money(1)),
                ..PolicyRules::default()
            },
        )
        .await;
    let m = services
        .create_mandate(
            &world.owner(),
            MandateRequest {
                wallet_id: a,
                max_amount: 50,
                total_amount: Some(1_000),
                max_uses: Some(10),
                to_wallet_id: None,
                destination: Some("cloud-gpu".into()),
                expires_at: Utc::now() + Duration::hours(1),
            },
            &world.owner_ctx(),
        )
        .await
        .unwrap();
    let world = Arc::new(world);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let world = world.clone();
            tokio::spawn(async move {
                world
                    .services
                    .transfer(&world.agent(), pay(a, 20, m.id), &world.agent_ctx())
                    .await
            })
        })
        .collect();
    let (mut ok, mut exceeded) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(out) => {
                assert_eq!(out.transaction.status, TransactionStatus::Completed);
                assert_eq!(out.transaction.mandate_id, Some(m.id));
                ok += 1;
            }
            Err(PostingError::Mandate(MandateRefusal::Exceeded(why))) => {
                assert!(why.contains("max_uses"), "{why}");
                exceeded += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, exceeded), (10, 40));
    let after = services.get_mandate(&world.owner(), m.id).await.unwrap();
    assert_eq!((after.uses_left, after.remaining), (0, Some(money(800))));
    assert_eq!(after.status_at(Utc::now()), MandateStatus::Exhausted);
    let report = waiaas_postgres::reconcile(&db.db).await.unwrap();
    assert!(report.is_consistent(), "{report}");
}

#[tokio::test]
async fn a_mandate_pre_approves_but_never_lifts_a_hard_limit() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    world
        .set_rules(
            a,
            PolicyRules {
                approval_above: Some(money(10)),
                daily_limit: Some(money(100)),
                ..PolicyRules::default()
            },
        )
        .await;
    let issue = |max_uses| MandateRequest {
        wallet_id: a,
        max_amount: 80,
        total_amount: None,
        max_uses: Some(max_uses),
        to_wallet_id: None,
        destination: None,
        expires_at: Utc::now() + Duration::hours(1),
    };
    let m = services
        .create_mandate(&world.owner(), issue(5), &world.owner_ctx())
        .await
        .unwrap();
    let agent = world.agent();
    let ctx = world.agent_ctx();
    // Above the approval threshold, within the mandate: completed at once.
    let out = services
        .transfer(&agent, pay(a, 60, m.id), &ctx)
        .await
        .unwrap();
    assert_eq!(out.transaction.status, TransactionStatus::Completed);
    // The daily limit still applies: denied, and the mandate's use is not counted.
    let out = services
        .transfer(&agent, pay(a, 50, m.id), &ctx)
        .await
        .unwrap();
    assert_eq!(out.transaction.status, TransactionStatus::Denied);
    assert_eq!(
        services.get_mandate(&agent, m.id).await.unwrap().uses_left,
        4
    );
    // Above its amount per use: refused, nothing recorded.
    let e = services
        .transfer(&agent, pay(a, 81, m.id), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PostingError::Mandate(MandateRefusal::Exceeded(_))),
        "{e}"
    );
    // Another wallet's mandate is no mandate here.
    let b = world.wallet("USD", 1_000).await.id;
    let e = services
        .transfer(&agent, pay(b, 5, m.id), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PostingError::Mandate(MandateRefusal::NotFound)),
        "{e}"
    );
    // Revoked: refused from then on; revoking again answers it as it is.
    let r = services
        .revoke_mandate(&world.owner(), m.id, &world.owner_ctx())
        .await
        .unwrap();
    assert!(r.revoked_at.is_some());
    let again = services
        .revoke_mandate(&world.owner(), m.id, &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!(again.revoked_at, r.revoked_at);
    let e = services
        .transfer(&agent, pay(a, 5, m.id), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PostingError::Mandate(MandateRefusal::Revoked)),
        "{e}"
    );
    // A hold under a mandate: held at once, and the use is counted.
    let m2 = services
        .create_mandate(&world.owner(), issue(1), &world.owner_ctx())
        .await
        .unwrap();
    world
        .set_rules(
            a,
            PolicyRules {
                approval_above: Some(money(10)),
                ..PolicyRules::default()
            },
        )
        .await;
    let held = services
        .create_hold(
            &agent,
            waiaas_domain::services::HoldRequest {
                spend: pay(a, 70, m2.id),
                expires_in_s: None,
            },
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(held.transaction.status, TransactionStatus::Held);
    assert_eq!(
        services.get_mandate(&agent, m2.id).await.unwrap().uses_left,
        0
    );
    assert_eq!(
        services.list_mandates(&agent, a, None).await.unwrap().len(),
        2
    );
}
