//! Agent API keys that expire: they work until `expires_at`, then are a 401, as are the
//! sessions opened with them; a lifetime out of bounds or a body that is not JSON is refused.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use waiaas_testkit::TestDb;
use waiaas_tests::{Options, TestApp};

#[tokio::test]
async fn an_expiring_key_and_its_sessions_stop_working_when_it_expires() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner) = app.owner("Acme").await;
    let (agent, _) = app.agent(&owner, "buyer").await;
    let keys = format!("/v1/agents/{agent}/keys");

    // Without a body the key never expires.
    let r = app
        .call(Method::POST, &keys, Some(&owner), None, None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["expires_at"].is_null());
    let forever = r.body["api_key"].as_str().unwrap().to_owned();

    // A whole number in any spelling, as everywhere in the API.
    let r = app
        .post(&keys, &owner, json!({ "expires_in_s": 3.0 }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.body["api_key"].as_str().unwrap().to_owned();
    let expires_at: chrono::DateTime<chrono::Utc> =
        r.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.get("/v1/wallets", &key).await.status, StatusCode::OK);
    let s = app
        .call(Method::POST, "/v1/sessions", Some(&key), None, None)
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{:?}", s.body);
    let session_ends: chrono::DateTime<chrono::Utc> =
        s.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        session_ends <= expires_at,
        "{session_ends} after {expires_at}"
    );
    let session = s.body["token"].as_str().unwrap().to_owned();

    // Once the key has expired: it and its session are a 401; the other key works.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get("/v1/wallets", &key).await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        chrono::Utc::now() >= expires_at,
        "refused before it expired"
    );
    assert_eq!(
        app.get("/v1/wallets", &session).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::POST, "/v1/sessions", Some(&key), None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v1/wallets", &forever).await.status,
        StatusCode::OK
    );

    // A JSON `null` body, like none, asks for a key that never expires.
    let r = app.post(&keys, &owner, serde_json::Value::Null).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["expires_at"].is_null());

    // Bad lifetimes and bodies: a 4xx with a reason.
    for body in [
        json!({ "expires_in_s": 0 }),
        json!({ "expires_in_s": 315_360_001_u64 }),
        json!({ "expires_in_s": -1 }),
        json!({ "expires_in_s": 1, "scope": "all" }),
    ] {
        let r = app.post(&keys, &owner, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
    }
    let raw = reqwest::Client::new()
        .post(format!("{}{keys}", app.base))
        .bearer_auth(&owner)
        .body(r#"{"expires_in_s": 60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "a body without a content type is not ignored"
    );
    app.stop().await;
}

/// API keys are cached like sessions: a balance read whose key and balance are in Redis needs
/// no database (it answers with PostgreSQL cut off), and deleting the agent writes the keys'
/// revocation through before it is acknowledged, so another instance refuses the key at once
/// although it had it cached as valid; so does an expired key, cached or not.
#[tokio::test]
async fn a_cached_key_needs_no_database_and_its_revocation_is_immediate_on_every_instance() {
    let db = TestDb::new().await;
    let (proxy, url) = waiaas_tests::proxied_database(&db).await;
    let shared = Options {
        key_prefix: Some(waiaas_testkit::unique_prefix()),
        ..Options::default()
    };
    let behind_proxy = TestApp::spawn_with(TestApp::settings_for(&url, &shared)).await;
    let direct = TestApp::spawn(&db, shared).await;
    let (_, owner) = direct.owner("Acme").await;
    let (agent, key) = direct.agent(&owner, "buyer").await;
    let wallet = direct.wallet(&owner, &agent, "USD", 500).await;
    let balance = format!("/v1/wallets/{wallet}/balance");
    for app in [&behind_proxy, &direct] {
        let r = app.get(&balance, &key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    // PostgreSQL out of reach of one instance: its cached read still answers.
    proxy.set_down(true);
    let r = behind_proxy.get(&balance, &key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["balance"], 500);
    proxy.set_down(false);

    // Deleted on the other instance: refused here at once, though cached here as valid.
    let deleted = direct
        .call(
            Method::DELETE,
            &format!("/v1/agents/{agent}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let r = behind_proxy.get(&balance, &key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);

    // An expiring key, cached while valid, is refused once it expires.
    let (other, _) = direct.agent(&owner, "seller").await;
    let short = direct
        .post(
            &format!("/v1/agents/{other}/keys"),
            &owner,
            json!({ "expires_in_s": 2 }),
        )
        .await;
    let short = short.str("api_key");
    let mine = direct.wallet(&owner, &other, "USD", 0).await;
    let r = behind_proxy
        .get(&format!("/v1/wallets/{mine}/balance"), &short)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = behind_proxy
        .get(&format!("/v1/wallets/{mine}/balance"), &short)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    behind_proxy.stop().await;
    direct.stop().await;
}

/// Two instances on one database and one Redis key prefix (they share the cache).
async fn two_instances(db: &TestDb) -> (TestApp, TestApp) {
    let shared = Options {
        key_prefix: Some(waiaas_testkit::unique_prefix()),
        ..Options::default()
    };
    (
        TestApp::spawn(db, shared.clone()).await,
        TestApp::spawn(db, shared).await,
    )
}

/// One agent key revoked on its own: the instance that had it cached refuses it at once, as
/// it does the sessions opened with it; the agent's other key keeps working; the list shows
/// each key's state; a repeat is a 204; another tenant's key, an unknown key and an agent
/// asking are refused.
#[tokio::test]
async fn one_key_is_revoked_with_its_sessions_and_the_others_keep_working() {
    let db = TestDb::new().await;
    let (a, b) = two_instances(&db).await;
    let (_, owner) = a.owner("Acme").await;
    let (agent, leaked) = a.agent(&owner, "buyer").await;
    let keys = format!("/v1/agents/{agent}/keys");
    let spare = a.post(&keys, &owner, json!({})).await;
    assert_eq!(spare.status, StatusCode::CREATED);
    let (spare_id, spare) = (spare.str("id"), spare.str("api_key"));
    let wallet = a.wallet(&owner, &agent, "USD", 100).await;
    let balance = format!("/v1/wallets/{wallet}/balance");
    let session = a
        .post("/v1/sessions", &leaked, json!({}))
        .await
        .str("token");
    for credential in [&leaked, &session, &spare] {
        let r = a.get(&balance, credential).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let listed = a.get(&keys, &owner).await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = listed.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|k| k["status"] == "active" && k.get("api_key").is_none())
    );
    let leaked_id = items
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .find(|id| *id != spare_id)
        .unwrap();

    // Refused: an agent, another tenant, an unknown key.
    let path = format!("{keys}/{leaked_id}");
    let r = a
        .call(Method::DELETE, &path, Some(&spare), None, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (_, stranger) = a.owner("Other").await;
    let r = a
        .call(Method::DELETE, &path, Some(&stranger), None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = a
        .call(
            Method::DELETE,
            &format!("{keys}/{}", uuid::Uuid::new_v4()),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");

    // Revoked through the other instance: refused here at once, with its session.
    let r = b
        .call(Method::DELETE, &path, Some(&owner), None, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    for credential in [&leaked, &session] {
        let r = a.get(&balance, credential).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    let r = a.get(&balance, &spare).await;
    assert_eq!(r.status, StatusCode::OK, "the other key still works");
    let again = a
        .call(Method::DELETE, &path, Some(&owner), None, None)
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let listed = a.get(&keys, &owner).await;
    let revoked = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == leaked_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    // A new session cannot be opened with it either.
    let r = a.post("/v1/sessions", &leaked, json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    a.stop().await;
    b.stop().await;
}

/// An owner rotates its key: issues a second one, revokes the first (refused at once by an
/// instance that had it cached, with the session opened with it), and cannot revoke its last
/// working key.
#[tokio::test]
async fn an_owner_rotates_its_key_and_cannot_revoke_its_last_one() {
    let db = TestDb::new().await;
    let (a, b) = two_instances(&db).await;
    let (_, old) = a.owner("Acme").await;
    let (_, agent_key) = a.agent(&old, "buyer").await;
    let session = a.post("/v1/sessions", &old, json!({})).await.str("token");
    for credential in [&old, &session] {
        assert_eq!(b.get("/v1/agents", credential).await.status, StatusCode::OK);
    }
    let issued = a
        .call(Method::POST, "/v1/owners/me/keys", Some(&old), None, None)
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
    let (new_id, new) = (issued.str("id"), issued.str("api_key"));
    let listed = a.get("/v1/owners/me/keys", &new).await;
    let items = listed.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    let old_id = items
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .find(|id| *id != new_id)
        .unwrap();

    // Agents have no say; an unknown key is a 404.
    let r = a.get("/v1/owners/me/keys", &agent_key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = a
        .call(
            Method::DELETE,
            &format!("/v1/owners/me/keys/{}", uuid::Uuid::new_v4()),
            Some(&new),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = a
        .call(
            Method::DELETE,
            &format!("/v1/owners/me/keys/{old_id}"),
            Some(&new),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    for credential in [&old, &session] {
        assert_eq!(
            b.get("/v1/agents", credential).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(b.get("/v1/agents", &new).await.status, StatusCode::OK);
    let r = b
        .call(
            Method::DELETE,
            &format!("/v1/owners/me/keys/{new_id}"),
            Some(&new),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "last_key");
    assert_eq!(b.get("/v1/agents", &new).await.status, StatusCode::OK);
    a.stop().await;
    b.stop().await;
}
