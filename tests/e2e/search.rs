//! Finding a payment again: a wallet's and an owner's transactions filtered by metadata,
//! status, kind and time over HTTP, and every malformed filter a 400 with a reason.

use reqwest::{Method, StatusCode};
use serde_json::json;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, Reply, TestApp};

fn ids(r: &Reply) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {:?}", r.body))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_agent_and_its_owner_find_a_payment_by_its_tags() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, agent_key) = app.agent(&owner, "buyer").await;
    let w = app.wallet(&owner, &agent, "USD", 1_000).await;
    let mut paid = Vec::new();
    for (order, shop) in [("A-1", "acme"), ("A-2", "acme"), ("B-1", "other")] {
        let r = app
            .call(
                Method::POST,
                &format!("/v1/wallets/{w}/transfers"),
                Some(&agent_key),
                Some(json!({
                    "amount": 10,
                    "destination": "merchant",
                    "metadata": { "order_id": order, "shop": shop }
                })),
                Some(order),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        paid.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let list = |query: &str| {
        let path = format!("/v1/wallets/{w}/transactions?{query}");
        let key = agent_key.clone();
        let app = &app;
        async move { app.get(&path, &key).await }
    };
    let r = list("metadata.order_id=A-2").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r), vec![paid[1].clone()]);
    let r = list("metadata.shop=acme&kind=payment&status=completed").await;
    assert_eq!(ids(&r), vec![paid[1].clone(), paid[0].clone()]);
    let r = list("kind=deposit").await;
    assert_eq!(ids(&r).len(), 1, "the funding deposit");
    let r = list("from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z").await;
    assert!(ids(&r).is_empty());
    // Pages keep the filter: one item per page, the cursor carries on.
    let first = list("metadata.shop=acme&limit=1").await;
    assert_eq!(ids(&first), vec![paid[1].clone()]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&format!("metadata.shop=acme&limit=1&cursor={cursor}")).await;
    assert_eq!(ids(&second), vec![paid[0].clone()]);
    assert!(second.body["next_cursor"].is_null());

    // The owner finds it across its wallets; the agent may not list across wallets.
    let r = app
        .get("/v1/transactions?metadata.order_id=B-1", &owner)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(ids(&r), vec![paid[2].clone()]);
    let r = app.get("/v1/transactions", &agent_key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another owner finds nothing of it.
    let (_, stranger) = app.owner("Other").await;
    let r = app
        .get("/v1/transactions?metadata.shop=acme", &stranger)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(ids(&r).is_empty());

    // Malformed filters: a 400 that says what is wrong, never a 500.
    for (query, code) in [
        ("status=done", "invalid_query"),
        ("kind=refund", "invalid_query"),
        ("from=yesterday", "invalid_query"),
        ("limit=-1", "invalid_query"),
        ("kind=payment&kind=deposit", "invalid_query"),
        ("colour=red", "invalid_query"),
        ("metadata.=x", "invalid_query"),
        ("metadata.order_id=a%00b", "invalid_query"),
        ("cursor=garbage", "invalid_cursor"),
    ] {
        let r = list(query).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{query}: {:?}",
            r.body
        );
    }
    let many: Vec<String> = (0..11).map(|i| format!("metadata.k{i}=v")).collect();
    let r = list(&many.join("&")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    app.stop().await;
}
