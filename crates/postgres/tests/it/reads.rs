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
            .list_transactions(
                &world.agent(),
                a,
                &waiaas_domain::TxFilter::default(),
                Some(4),
                cursor,
            )
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

#[tokio::test]
async fn transactions_are_found_again_by_metadata_status_kind_and_time_for_a_wallet_and_an_owner() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let a = world.wallet("USD", 1_000).await.id;
    let b = world.wallet("USD", 0).await.id;
    let before = chrono::Utc::now();
    // Three payments tagged with order ids; one of them held for approval.
    world
        .set_rules(
            a,
            PolicyRules {
                approval_above: Some(Money::new(50).unwrap()),
                ..Default::default()
            },
        )
        .await;
    let mut ids = Vec::new();
    for (i, amount) in [(1, 10), (2, 20), (3, 60)] {
        let mut req = waiaas_testkit::World::transfer_request(a, b, amount);
        req.metadata =
            Some(serde_json::json!({"order_id": format!("A-{i}"), "shop": "acme", "n": i}));
        let out = services
            .transfer(&world.agent(), req, &world.agent_ctx())
            .await
            .unwrap();
        ids.push(out.transaction.id);
    }
    let filter = |f: waiaas_domain::TxFilter| f;
    let list = |f: waiaas_domain::TxFilter| {
        let services = services.clone();
        let principal = world.agent();
        async move {
            services
                .list_transactions(&principal, a, &f, Some(50), None)
                .await
                .unwrap()
                .items
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let meta = |pairs: &[(&str, &str)]| waiaas_domain::TxFilter {
        metadata: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    assert_eq!(list(meta(&[("order_id", "A-2")])).await, vec![ids[1]]);
    assert_eq!(
        list(meta(&[("shop", "acme")])).await,
        vec![ids[2], ids[1], ids[0]],
        "newest first"
    );
    assert_eq!(
        list(meta(&[("shop", "acme"), ("order_id", "A-1")])).await,
        vec![ids[0]]
    );
    // Values are matched as strings: the number 1 is not the string "1".
    assert!(list(meta(&[("n", "1")])).await.is_empty());
    assert!(list(meta(&[("order_id", "A-9")])).await.is_empty());
    let pending = filter(waiaas_domain::TxFilter {
        status: Some(waiaas_domain::TransactionStatus::PendingApproval),
        ..Default::default()
    });
    assert_eq!(list(pending).await, vec![ids[2]]);
    let deposits = waiaas_domain::TxFilter {
        kind: Some(waiaas_domain::TransactionKind::Deposit),
        ..Default::default()
    };
    assert_eq!(list(deposits).await.len(), 1, "the wallet's one deposit");
    let since = waiaas_domain::TxFilter {
        from: Some(before),
        kind: Some(waiaas_domain::TransactionKind::Transfer),
        ..Default::default()
    };
    assert_eq!(list(since).await.len(), 3);
    let until = waiaas_domain::TxFilter {
        to: Some(before),
        kind: Some(waiaas_domain::TransactionKind::Transfer),
        ..Default::default()
    };
    assert!(list(until).await.is_empty());

    // The owner finds it across its wallets; another owner does not; an agent may not ask.
    let found = services
        .owner_transactions(&world.owner(), &meta(&[("order_id", "A-3")]), None, None)
        .await
        .unwrap();
    assert_eq!(
        found.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    let all = services
        .owner_transactions(&world.owner(), &Default::default(), Some(2), None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let rest = services
        .owner_transactions(
            &world.owner(),
            &Default::default(),
            Some(50),
            all.next_cursor,
        )
        .await
        .unwrap();
    assert_eq!(
        all.items.len() + rest.items.len(),
        4,
        "the deposit and three transfers"
    );
    let other = Fixture::world(&services).await;
    assert!(
        services
            .owner_transactions(&other.owner(), &meta(&[("shop", "acme")]), None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        services
            .owner_transactions(&world.agent(), &Default::default(), None, None)
            .await,
        Err(waiaas_domain::errors::AccessError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_metadata_filter_is_served_by_the_gin_index() {
    let db = TestDb::new().await;
    let services = services(&db.postgres());
    let world = Fixture::world(&services).await;
    let w = world.wallet("USD", 0).await;
    // Enough rows that a sequential scan is not the cheap way.
    db.db
        .execute_unprepared(&format!(
            "INSERT INTO transactions (id, kind, status, asset, amount, to_wallet_id, owner_id, \
             metadata, initiator_type, initiator_id, created_at, updated_at, posted_at) \
             SELECT gen_random_uuid(), 'deposit', 'completed', 'USD', 1, '{w}', '{o}', \
             jsonb_build_object('order_id', 'o-' || g), 'owner', '{o}', now(), now(), now() \
             FROM generate_series(1, 20000) g; ANALYZE transactions",
            w = w.id,
            o = w.owner_id,
        ))
        .await
        .unwrap();
    // The very query the service runs, for an owner and for a wallet, with its parameters.
    let filter = waiaas_domain::TxFilter {
        metadata: vec![("order_id".to_owned(), "o-77".to_owned())],
        ..Default::default()
    };
    for (scope, subject) in [
        (
            waiaas_postgres::TxScope::Owner(w.owner_id),
            *w.owner_id.as_uuid(),
        ),
        (waiaas_postgres::TxScope::Wallet(w.id), *w.id.as_uuid()),
    ] {
        let (sql, filters) = waiaas_postgres::transaction_page_sql(scope, &filter);
        let mut values: Vec<sea_orm::Value> = vec![
            subject.into(),
            chrono::DateTime::<chrono::Utc>::MAX_UTC.into(),
            uuid::Uuid::max().into(),
            51_i64.into(),
        ];
        values.extend(filters);
        let plan = db
            .db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                format!("EXPLAIN {sql}"),
                values,
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            plan.contains("transactions_metadata_gin"),
            "{scope:?}: {plan}"
        );
    }
}
