//! Reads: pagination, policies with their audit trail, summaries, sessions and revocation.

use sea_orm::ConnectionTrait as _;
use waiaas_domain::{AuditQuery, Money, PolicyRules, TxCursor};
use waiaas_testkit::{Fixture, TestDb, services};

#[tokio::test]
async fn a_wallets_history_pages_newest_first_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 1_000).await.id;
    for i in 0..13 {
        let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
        world.spend(from, to, 1 + i).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<TxCursor> = None;
    loop {
        let page = services
            .list_transactions(&world.agent(), a, Some(4), cursor)
            .await
            .unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|t| (t.created_at, t.id)));
        match page.next_cursor {
            Some(c) => cursor = Some(TxCursor::parse(&c.to_string()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 14, "13 transfers and the deposit");
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, no repeats");
}

#[tokio::test]
async fn setting_a_policy_bumps_its_version_and_audits_old_and_new_rules() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let w = world.wallet("USD", 0).await.id;
    let p0 = services.get_policy(&world.agent(), w).await.unwrap();
    assert_eq!(p0.version, 0);
    let first = PolicyRules {
        daily_limit: Some(Money::new(100).unwrap()),
        ..Default::default()
    };
    let second = PolicyRules {
        daily_limit: Some(Money::new(50).unwrap()),
        ..Default::default()
    };
    assert_eq!(world.set_rules(w, first).await.version, 1);
    let p2 = services
        .set_policy(&world.owner(), w, second.clone(), &world.owner_ctx())
        .await
        .unwrap();
    assert_eq!((p2.version, &p2.rules), (2, &second));
    let trail = services
        .audit_trail(
            &world.owner(),
            AuditQuery {
                owner_id: world.owner_id,
                resource_type: Some("wallet".into()),
                resource_id: Some(w.to_string()),
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    let sets: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "wallet.policy.set")
        .collect();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        sets[0].old_value,
        Some(serde_json::json!({"daily_limit": 100}))
    );
    assert_eq!(
        sets[0].new_value.as_ref().unwrap()["rules"],
        serde_json::json!({"daily_limit": 50})
    );
}

#[tokio::test]
async fn deleting_an_agent_revokes_its_keys_and_sessions_at_once() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let (_, key) = services
        .create_agent_key(world.owner_id, world.agent_id, &world.owner_ctx())
        .await
        .unwrap();
    let (principal, _) = services.authenticate(key.expose()).await.unwrap();
    assert_eq!(principal, world.agent());
    let (_, token) = services
        .create_session(&principal, key.expose(), &world.agent_ctx())
        .await
        .unwrap();
    assert!(services.authenticate(token.expose()).await.is_ok());

    services
        .delete_agent(world.owner_id, world.agent_id, &world.owner_ctx())
        .await
        .unwrap();
    assert!(
        services.authenticate(key.expose()).await.is_err(),
        "the key stops working"
    );
    assert!(
        services.authenticate(token.expose()).await.is_err(),
        "the session stops working"
    );
    assert!(
        services
            .get_agent(&world.owner(), world.agent_id)
            .await
            .is_err()
    );
    assert!(
        services
            .list_agents(world.owner_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_revoked_session_stops_working() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let (_, token) = services
        .create_session(&world.owner(), &world.owner_key, &world.owner_ctx())
        .await
        .unwrap();
    assert!(services.authenticate(token.expose()).await.is_ok());
    assert!(
        services
            .revoke_session(token.expose(), &world.owner_ctx())
            .await
            .unwrap()
    );
    assert!(services.authenticate(token.expose()).await.is_err());
}

#[tokio::test]
async fn a_session_cannot_be_born_after_its_agent_was_deleted() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let (_, key) = services
        .create_agent_key(world.owner_id, world.agent_id, &world.owner_ctx())
        .await
        .unwrap();
    // The request authenticated with the key…
    let (principal, _) = services.authenticate(key.expose()).await.unwrap();
    // …then the owner deleted the agent, before the session was stored.
    services
        .delete_agent(world.owner_id, world.agent_id, &world.owner_ctx())
        .await
        .unwrap();
    let born = services
        .create_session(&principal, key.expose(), &world.agent_ctx())
        .await;
    assert!(
        matches!(born, Err(waiaas_domain::AuthError::Unauthenticated)),
        "a session of a deleted agent was opened: {born:?}"
    );
    let sessions: i64 = db
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM sessions",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    assert_eq!(sessions, 0, "nothing was stored");
}
