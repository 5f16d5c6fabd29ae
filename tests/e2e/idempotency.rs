//! Idempotency over HTTP: a retried request gets the first answer.

use reqwest::StatusCode;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_identical_requests_at_once_post_once_and_answer_alike() {
    let db = TestDb::new().await;
    let app = std::sync::Arc::new(TestApp::spawn(&db, Options::default()).await);
    let (_, owner) = app.owner("o").await;
    let (agent, agent_key) = app.agent(&owner, "a").await;
    let from = app.wallet(&owner, &agent, "EUR", 1_000).await;
    let to = app.wallet(&owner, &agent, "EUR", 0).await;
    let calls = (0..20).map(|_| {
        let (app, agent_key, from, to) = (app.clone(), agent_key.clone(), from.clone(), to.clone());
        tokio::spawn(async move {
            app.transfer(&agent_key, &from, &to, 75, "invoice-2026-11")
                .await
        })
    });
    let replies: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for r in &replies {
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body, replies[0].body);
    }
    let history = app
        .get(&format!("/v1/wallets/{to}/transactions"), &owner)
        .await;
    assert_eq!(history.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get(&format!("/v1/wallets/{to}/balance"), &owner)
            .await
            .body["balance"]
            .as_i64(),
        Some(75)
    );

    let conflict = app
        .transfer(&agent_key, &from, &to, 76, "invoice-2026-11")
        .await;
    assert_eq!(
        (conflict.status, conflict.code()),
        (StatusCode::CONFLICT, "idempotency_conflict".to_owned()),
        "{:?}",
        conflict.body
    );
}
