//! Who may do what: tenant isolation, roles, the bootstrap token and rate limits.

use std::time::Duration;

use axum::http::{StatusCode, header};
use serde_json::json;
use waiaas_domain::ports::{Rate, RateDecision, RateLimitError};

use super::*;

fn limited(m: &mut Mocks) {
    m.config.rate = Some(Rate {
        per_second: 1.0,
        burst: 1,
    });
}

#[tokio::test]
async fn another_tenants_wallet_is_a_404() {
    let w = World::new();
    for (token, uri) in [
        (OWNER_KEY, format!("/v1/wallets/{}", w.foreign)),
        (OWNER_KEY, format!("/v1/wallets/{}/balance", w.foreign)),
        (AGENT_KEY, format!("/v1/wallets/{}/policy", w.foreign)),
        (STRANGER_KEY, format!("/v1/wallets/{}/summary", w.wallet)),
        (STRANGER_KEY, format!("/v1/wallets/{}/events", w.wallet)),
    ] {
        let (status, _, body) = send(
            Mocks::new(&w).app(),
            request("GET", &uri, Some(token), None),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(code(&body), "not_found");
    }
}

#[tokio::test]
async fn an_agent_cannot_set_its_wallets_policy() {
    let w = World::new();
    let uri = format!("/v1/wallets/{}/policy", w.wallet);
    let body = json!({"daily_limit": 1000});
    let (status, _, body) = send(
        Mocks::new(&w).app(),
        request("PUT", &uri, Some(AGENT_KEY), Some(body)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "forbidden");
}

#[tokio::test]
async fn a_policy_with_a_negative_limit_or_a_bad_destination_is_a_400() {
    let w = World::new();
    let uri = format!("/v1/wallets/{}/policy", w.wallet);
    for body in [
        json!({"daily_limit": -1}),
        json!({"blocked_destinations": ["wallet:not-a-uuid"]}),
    ] {
        let req = request("PUT", &uri, Some(OWNER_KEY), Some(body.clone()));
        let (status, _, _) = send(Mocks::new(&w).app(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test]
async fn agents_cannot_manage_agents_nor_read_the_audit_trail() {
    let w = World::new();
    for (method, uri, body) in [
        ("POST", "/v1/agents".to_owned(), Some(json!({"name": "x"}))),
        ("DELETE", format!("/v1/agents/{}", w.agent), None),
        ("POST", format!("/v1/agents/{}/keys", w.agent), None),
        ("GET", "/v1/audit-logs".to_owned(), None),
        ("GET", "/v1/notifications".to_owned(), None),
    ] {
        let req = request(method, &uri, Some(AGENT_KEY), body);
        let (status, _, _) = send(Mocks::new(&w).app(), req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
}

#[tokio::test]
async fn a_rate_limited_caller_gets_a_429_with_retry_after_rounded_up() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    limited(&mut m);
    let subject = format!("agent:{}", w.agent);
    m.limiter
        .expect_check()
        .withf(move |s, _| s == subject)
        .returning(|_, _| {
            Ok(RateDecision {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(1200),
            })
        });
    let (status, headers, body) =
        send(m.app(), request("GET", "/v1/agents", Some(AGENT_KEY), None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(code(&body), "rate_limited");
}

#[tokio::test]
async fn a_failing_rate_limiter_lets_the_request_through() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    limited(&mut m);
    m.limiter
        .expect_check()
        .returning(|_, _| Err(RateLimitError("redis is down".into())));
    m.agents.expect_list().returning(|_| Ok(vec![]));
    let (status, _, body) =
        send(m.app(), request("GET", "/v1/agents", Some(OWNER_KEY), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"items": []}));
}

#[tokio::test]
async fn owner_registration_needs_the_bootstrap_token() {
    let w = World::new();
    let body = json!({"name": "Acme"});
    // No credential is a 401, as on every operation; a wrong one a 403.
    let req = request("POST", "/v1/owners", None, Some(body.clone()));
    let (status, _, answer) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&answer), "unauthenticated");
    for token in ["wrong", "boot-secre", OWNER_KEY] {
        let req = request("POST", "/v1/owners", Some(token), Some(body.clone()));
        let (status, _, body) = send(Mocks::new(&w).app(), req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}");
        assert_eq!(code(&body), "forbidden");
    }
    let mut m = Mocks::new(&w);
    m.owners
        .expect_create()
        .withf(|o, _, a| o.name.as_str() == "Acme" && a.actor == waiaas_domain::Actor::System)
        .returning(|_, _, _| Ok(()));
    let req = request(
        "POST",
        "/v1/owners",
        Some("boot-secret"),
        Some(body.clone()),
    );
    let (status, _, body) = send(m.app(), req).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["owner"]["name"], "Acme");
    assert!(body["api_key"].as_str().unwrap().starts_with("wak_"));
}

#[tokio::test]
async fn owner_registration_is_rate_limited_per_address() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    limited(&mut m);
    m.limiter
        .expect_check()
        .withf(|s, _| s.starts_with("ip:"))
        .returning(|_, _| {
            Ok(RateDecision {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_secs(3),
            })
        });
    let req = request(
        "POST",
        "/v1/owners",
        Some("boot-secret"),
        Some(json!({"name": "A"})),
    );
    let (status, headers, _) = send(m.app(), req).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "3");
}

#[tokio::test]
async fn a_session_token_cannot_open_a_session_and_an_api_key_cannot_end_one() {
    let w = World::new();
    let mut m = Mocks::new(&w);
    let principal = w.owner();
    m.sessions.expect_find_session().returning(move |hash| {
        Ok(Some(waiaas_domain::Session {
            id: waiaas_domain::SessionId::new(),
            token_hash: hash.clone(),
            principal,
            expires_at: now() + chrono::Duration::hours(1),
            revoked_at: None,
            version: 1,
        }))
    });
    let req = request("POST", "/v1/sessions", Some("wst_live"), None);
    let (status, _, _) = send(m.app(), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let req = request("DELETE", "/v1/sessions/current", Some(OWNER_KEY), None);
    let (status, _, _) = send(Mocks::new(&w).app(), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_authenticated_request_acts_for_its_callers_owner_and_an_anonymous_one_for_none() {
    use std::sync::{Arc, Mutex};
    use waiaas_domain::tenant::{self, Tenant};
    let w = World::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut m = Mocks::new(&w);
    let record = seen.clone();
    m.agents.expect_list().returning(move |_| {
        record.lock().unwrap().push(tenant::current());
        Ok(vec![])
    });
    let app = m.app();
    let (status, _, body) = send(
        app.clone(),
        request("GET", "/v1/agents", Some(OWNER_KEY), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = send(app, request("GET", "/v1/agents", None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The owner's request reached the port acting for the owner (row-level security then
    // shows that owner's rows only); the anonymous one reached nothing.
    assert_eq!(*seen.lock().unwrap(), vec![Tenant::Owner(w.owner)]);
    // Outside a request nothing is scoped.
    assert_eq!(tenant::current(), Tenant::System);
}
