//! Paying with a hold and a capture, and credentials that are sessions.

use waiaas_client::ErrorCode;
use waiaas_client::api::{HoldBody, HoldQuery};
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

use crate::World;

#[tokio::test]
async fn an_agent_pays_with_a_hold_and_a_capture_and_the_rest_is_released() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 10_000).await;
    let hold = HoldBody {
        amount: 3_000,
        to_wallet_id: None,
        destination: Some("ride-co".to_owned()),
        memo: Some("ride R-1".to_owned()),
        metadata: Some(serde_json::json!({"ride": "R-1"})),
        mandate_id: None,
        expires_in_s: Some(1_800),
    };
    let held = w.agent.create_hold(w.wallet.id, &hold).await.unwrap();
    assert_eq!((held.status.as_str(), held.amount), ("held", 3_000));
    let balance = w.agent.balance(w.wallet.id).await.unwrap();
    assert_eq!(
        (balance.balance, balance.held, balance.available),
        (10_000, 3_000, 7_000)
    );

    let payment = w.agent.capture(held.id, Some(2_140)).await.unwrap();
    assert_eq!(
        (payment.kind.as_str(), payment.status.as_str()),
        ("payment", "completed")
    );
    assert_eq!((payment.amount, payment.hold_id), (2_140, Some(held.id)));
    let balance = w.agent.balance(w.wallet.id).await.unwrap();
    assert_eq!(
        (balance.balance, balance.held, balance.available),
        (7_860, 0, 7_860)
    );
    let captured = w.owner.get_hold(held.id).await.unwrap();
    assert_eq!(
        (captured.status.as_str(), captured.captured),
        ("captured", 2_140)
    );
    let page = w
        .owner
        .list_holds(w.wallet.id, &HoldQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items, [captured]);

    // A captured hold cannot be voided: a typed 409 with the hold's status.
    let error = w.agent.void_hold(held.id).await.unwrap_err();
    assert_eq!(error.code(), Some(&ErrorCode::HoldNotOpen), "{error}");
    assert_eq!(error.detail("status").as_deref(), Some("captured"));
    // Another hold, voided: everything goes back.
    let second = w.agent.create_hold(w.wallet.id, &hold).await.unwrap();
    assert_eq!(w.owner.void_hold(second.id).await.unwrap().status, "voided");
    assert_eq!(w.agent.balance(w.wallet.id).await.unwrap().available, 7_860);
    app.stop().await;
}

#[tokio::test]
async fn a_session_opened_with_an_agents_key_works_until_it_is_ended() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 500).await;
    let session = w.agent.create_session().await.unwrap();
    assert!(session.token.starts_with("wst_"), "{}", session.token);
    let by_session = w.agent.with_token(session.token);
    assert_eq!(by_session.balance(w.wallet.id).await.unwrap().balance, 500);

    by_session.end_session().await.unwrap();
    let error = by_session.balance(w.wallet.id).await.unwrap_err();
    assert_eq!(error.code(), Some(&ErrorCode::Unauthenticated), "{error}");
    app.stop().await;
}
