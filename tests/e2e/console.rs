//! The owner console in a real browser (headless Chromium through chromedriver), and the
//! home snapshot it is built on.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use waiaas_testkit::TestDb;
use waiaas_tests::browser::Browser;
use waiaas_tests::{Options, TestApp};

/// Where the screenshots go: `docs/img` when `WAIAAS_UPDATE_SCREENSHOTS=1` (how the ones in
/// the README were taken), else a temporary directory.
fn screenshot_dir() -> std::path::PathBuf {
    if std::env::var("WAIAAS_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img")
    } else {
        std::env::temp_dir()
    }
}

async fn policy(app: &TestApp, owner_key: &str, wallet: &str, rules: Value) {
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/wallets/{wallet}/policy"),
            Some(owner_key),
            Some(rules),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// An owner (id, key) with an agent (id, key) holding two USD wallets: `from`, with `deposit`
/// and the policy `rules`, and an empty `to`.
struct Setup {
    owner_id: String,
    owner_key: String,
    agent_id: String,
    agent_key: String,
    from: String,
    to: String,
}

async fn setup(app: &TestApp, owner: &str, agent: &str, deposit: i64, rules: Value) -> Setup {
    let (owner_id, owner_key) = app.owner(owner).await;
    let (agent_id, agent_key) = app.agent(&owner_key, agent).await;
    let from = app.wallet(&owner_key, &agent_id, "USD", deposit).await;
    let to = app.wallet(&owner_key, &agent_id, "USD", 0).await;
    policy(app, &owner_key, &from, rules).await;
    Setup {
        owner_id,
        owner_key,
        agent_id,
        agent_key,
        from,
        to,
    }
}

/// Fails when the page shows something a rendering bug writes.
fn rendered_cleanly(text: &str) {
    for bad in ["[object", "undefined", "NaN", "null"] {
        assert!(!text.contains(bad), "the page shows `{bad}`:\n{text}");
    }
}

/// Opens the console at `base`, signs in with `key` from the keyboard (typed, then Enter)
/// and waits for the home page.
async fn sign_in(browser: &Browser, base: &str, key: &str) {
    browser.goto(&format!("{base}/console")).await;
    browser
        .wait_for_element("#api-key", Duration::from_secs(10))
        .await;
    browser
        .type_into("#api-key", &format!("{key}\u{E007}"))
        .await;
    browser
        .wait_for_element("#no-pending", Duration::from_secs(10))
        .await;
}

/// Fails on any console error the page logged (a failed request, an uncaught exception).
async fn no_console_errors(browser: &Browser, when: &str) {
    let severe: Vec<_> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors {when}: {severe:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_signs_in_sees_a_transfer_wait_for_approval_live_and_approves_it() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let Setup {
        owner_key,
        agent_key,
        from,
        to,
        ..
    } = setup(
        &app,
        "Acme Robotics",
        "shopping bot",
        250_000,
        json!({ "approval_above": 50_000, "daily_limit": 200_000 }),
    )
    .await;
    let r = app.transfer(&agent_key, &from, &to, 12_500, "first").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let browser = Browser::start(1280, 1000).await;
    sign_in(&browser, &app.base, &owner_key).await;
    let text = browser.text().await;
    rendered_cleanly(&text);
    assert!(text.contains("shopping bot"), "{text}");
    assert!(
        text.contains("2,375.00 USD"),
        "the balance after 125.00 moved: {text}"
    );
    // The key is not kept; only the session token is, in this tab's storage.
    let stored = browser
        .eval(
            "return [sessionStorage.getItem('waiaas.session'), localStorage.length, document.cookie];",
            json!([]),
        )
        .await;
    assert!(
        stored[0].as_str().is_some_and(|t| t.starts_with("wst_")),
        "{stored}"
    );
    assert_eq!(
        (stored[1].clone(), stored[2].clone()),
        (json!(0), json!(""))
    );
    // Every input has a label.
    let unlabelled = browser
        .eval(
            "return [...document.querySelectorAll('input')].filter(i => !i.labels || !i.labels.length).map(i => i.id);",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]), "inputs without a label");

    // The page stays loaded from here on: a marker set now must survive.
    browser.eval("window.__stayed = true;", json!([])).await;
    browser
        .wait_for(
            "the wallet's live stream",
            "return document.getElementById('live').classList.contains('on');",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    let r = app.transfer(&agent_key, &from, &to, 60_000, "big").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.str("status"), "pending_approval");
    let tx = r.str("id");
    let approve = format!("#approve-{tx}");
    browser
        .wait_for_element(&approve, Duration::from_secs(15))
        .await;
    assert_eq!(
        browser
            .eval("return window.__stayed === true;", json!([]))
            .await,
        json!(true),
        "the pending approval appeared without a reload"
    );
    let card = browser
        .eval(
            "return document.querySelector(`[data-transaction='${arguments[0]}']`).innerText;",
            json!([tx]),
        )
        .await;
    let card = card.as_str().unwrap_or_default();
    rendered_cleanly(&browser.text().await);
    assert!(card.contains("600.00 USD"), "{card}");
    assert!(
        card.contains("approval_above"),
        "the rule that asked: {card}"
    );
    browser.eval("window.scrollTo(0, 0);", json!([])).await;
    std::fs::write(
        screenshot_dir().join("console-approval.png"),
        browser.screenshot().await,
    )
    .unwrap();

    browser.click(&approve).await;
    // Approved: the card goes and the balance changes, without a reload.
    browser
        .wait_for(
            "the approved transfer's balance",
            "const cell = document.querySelector(`[data-wallet='${arguments[0]}'] [data-field='balance']`);\
             return document.querySelector(arguments[1]) === null && cell !== null && cell.innerText === '1,775.00 USD';",
            json!([from, approve]),
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        browser
            .eval("return window.__stayed === true;", json!([]))
            .await,
        json!(true)
    );
    let got = app.get(&format!("/v1/transactions/{tx}"), &owner_key).await;
    assert_eq!(got.str("status"), "completed", "{:?}", got.body);
    browser.eval("window.scrollTo(0, 0);", json!([])).await;
    std::fs::write(
        screenshot_dir().join("console-home.png"),
        browser.screenshot().await,
    )
    .unwrap();
    no_console_errors(&browser, "on the home page").await;

    // A wallet's page: its chart, policy form, and an error from the API shown in the form.
    browser
        .goto(&format!("{}/console#/wallet/{from}", app.base))
        .await;
    browser
        .wait_for_element("svg.chart rect", Duration::from_secs(10))
        .await;
    rendered_cleanly(&browser.text().await);
    no_console_errors(&browser, "on the wallet page").await;
    browser
        .eval(
            "document.getElementById('p-timeout').value = '0';",
            json!([]),
        )
        .await;
    browser
        .click("form[aria-label='Wallet policy'] button[type=submit]")
        .await;
    browser
        .wait_for(
            "the API's refusal in the policy form",
            "const e = document.querySelector(\"form[aria-label='Wallet policy'] .error\");\
             return e !== null && /\\(invalid_[a-z_]+\\)$/.test(e.innerText);",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    // The browser logs the refused request itself; nothing else may be logged.
    let logged: Vec<_> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, message)| {
            level == "SEVERE" && !(message.contains("/policy") && message.contains("400"))
        })
        .collect();
    assert!(
        logged.is_empty(),
        "console errors on the policy form: {logged:#?}"
    );

    // At phone width nothing scrolls sideways but the tables inside their own boxes.
    browser.goto(&format!("{}/console#/", app.base)).await;
    browser.resize(390, 844).await;
    browser
        .wait_for_element("#no-pending", Duration::from_secs(10))
        .await;
    let overflow = browser
        .eval(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 0),
        "the page scrolls sideways at phone width by {overflow}px"
    );
    no_console_errors(&browser, "at phone width").await;

    // Signing out ends the session on the server too.
    let token = browser
        .eval(
            "return sessionStorage.getItem('waiaas.session');",
            json!([]),
        )
        .await;
    browser.click("#signout").await;
    browser
        .wait_for_element("#signin:not([hidden])", Duration::from_secs(10))
        .await;
    let token = token.as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/v1/home", &token).await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session still works: {:?}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.quit().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agents_key_cannot_open_the_console() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let (_, owner_key) = app.owner("Acme").await;
    let (_, agent_key) = app.agent(&owner_key, "bot").await;
    let browser = Browser::start(1024, 768).await;
    browser.goto(&format!("{}/console", app.base)).await;
    browser
        .wait_for_element("#api-key", Duration::from_secs(10))
        .await;
    browser.type_into("#api-key", &agent_key).await;
    browser.click("#signin-form button[type=submit]").await;
    browser
        .wait_for(
            "the refusal",
            "return document.getElementById('signin-error').innerText.includes('owner');",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    let stored = browser
        .eval(
            "return sessionStorage.getItem('waiaas.session');",
            json!([]),
        )
        .await;
    assert_eq!(stored, Value::Null, "no session kept for an agent");
    browser.quit().await;
    app.stop().await;
}

async fn redis_cli(args: &[&str]) -> String {
    let url = std::env::var("WAIAAS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let out = tokio::process::Command::new("redis-cli")
        .args(["-u", url.as_str()])
        .args(args)
        .output()
        .await
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_home_snapshot_is_served_from_redis_only_while_nothing_under_it_changed() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let Setup {
        owner_id,
        owner_key,
        agent_id,
        agent_key,
        from,
        to,
    } = setup(
        &app,
        "Acme",
        "shopping bot",
        100_000,
        json!({ "approval_above": 5_000, "daily_limit": 50_000 }),
    )
    .await;
    let budget = |body: Value| {
        let app = &app;
        let owner_key = owner_key.clone();
        let agent_id = agent_id.clone();
        async move {
            let r = app
                .call(
                    Method::PUT,
                    &format!("/v1/agents/{agent_id}/budget"),
                    Some(&owner_key),
                    Some(body),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    };
    budget(json!({ "USD": { "daily_limit": 30_000 } })).await;
    let r = app.transfer(&agent_key, &from, &to, 1_000, "one").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.status, StatusCode::OK, "{:?}", home.body);
    let agent = &home.body["agents"][0];
    assert_eq!(agent["name"], "shopping bot");
    assert_eq!(agent["budgets"][0]["spent_today"], 1_000);
    assert_eq!(agent["budgets"][0]["daily_remaining"], 29_000);
    let wallet = &agent["wallets"][0];
    assert_eq!(
        (
            wallet["id"].as_str(),
            &wallet["balance"],
            &wallet["today"]["spent"]
        ),
        (Some(from.as_str()), &json!(99_000), &json!(1_000))
    );
    // The budget left is the summary's, computed the same way.
    let summary = app
        .get(&format!("/v1/wallets/{from}/summary"), &owner_key)
        .await;
    assert_eq!(wallet["budget"], summary.body["budget"], "{:?}", home.body);
    assert_eq!(home.body["pending_total"], 0);

    // Cached under its key, with a TTL.
    let key = format!("{}widgets:home:owner:{owner_id}", app.key_prefix);
    let ttl: i64 = redis_cli(&["PTTL", &key]).await.parse().unwrap();
    assert!((1..=60_000).contains(&ttl), "PTTL {ttl}");
    // Served from there while nothing changed: a copy edited in Redis is what comes back.
    let data = redis_cli(&["HGET", &key, "d"]).await;
    assert!(data.contains("shopping bot"), "{data}");
    let edited = data.replace("shopping bot", "edited in redis");
    assert_eq!(redis_cli(&["HSET", &key, "d", &edited]).await, "0");
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.body["agents"][0]["name"], "edited in redis");

    // Every change under it is seen by the next read, with no cache step needed.
    let r = app.transfer(&agent_key, &from, &to, 6_000, "two").await;
    assert_eq!(r.str("status"), "pending_approval", "{:?}", r.body);
    let pending = r.str("id");
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.body["agents"][0]["name"], "shopping bot");
    assert_eq!(home.body["pending_total"], 1);
    assert_eq!(home.body["pending"][0]["id"], pending.as_str());
    assert_eq!(home.body["pending"][0]["rule"], "approval_above");

    let r = app
        .post(
            &format!("/v1/transactions/{pending}/approve"),
            &owner_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.body["pending_total"], 0);
    assert_eq!(home.body["agents"][0]["wallets"][0]["balance"], 93_000);
    assert_eq!(home.body["agents"][0]["budgets"][0]["spent_today"], 7_000);

    budget(json!({ "USD": { "daily_limit": 40_000 } })).await;
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(
        home.body["agents"][0]["budgets"][0]["daily_remaining"],
        33_000
    );

    policy(&app, &owner_key, &from, json!({ "daily_limit": 10_000 })).await;
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(
        home.body["agents"][0]["wallets"][0]["budget"]["daily_remaining"],
        3_000
    );

    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{agent_id}"),
            Some(&owner_key),
            Some(json!({ "status": "suspended" })),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.body["agents"][0]["status"], "suspended");

    // Deleted agents leave the home with their wallets.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/agents/{agent_id}"),
            Some(&owner_key),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let home = app.get("/v1/home", &owner_key).await;
    assert_eq!(home.body["agents"], json!([]), "{:?}", home.body);

    // Agents have no home.
    let (_, other_key) = app.agent(&owner_key, "other").await;
    let r = app.get("/v1/home", &other_key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_catches_up_on_what_happened_while_its_connection_was_down() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let Setup {
        owner_key,
        agent_key,
        from,
        to,
        ..
    } = setup(
        &app,
        "Acme",
        "bot",
        10_000,
        json!({ "approval_above": 1_000 }),
    )
    .await;
    // The browser reaches the service through a proxy the test can cut.
    let target: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let proxy = waiaas_testkit::TcpProxy::start(target).await.unwrap();
    let browser = Browser::start(1024, 900).await;
    sign_in(
        &browser,
        &format!("http://127.0.0.1:{}", proxy.port()),
        &owner_key,
    )
    .await;
    let live = "return document.getElementById('live').classList.contains('on');";
    browser
        .wait_for("the live streams", live, json!([]), Duration::from_secs(10))
        .await;
    browser.eval("window.__stayed = true;", json!([])).await;

    // The connection drops; meanwhile a transfer waits for approval.
    proxy.set_down(true);
    browser
        .wait_for(
            "the console to notice the drop",
            "return !document.getElementById('live').classList.contains('on');",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    let r = app
        .transfer(&agent_key, &from, &to, 2_000, "while-down")
        .await;
    assert_eq!(r.str("status"), "pending_approval", "{:?}", r.body);
    let tx = r.str("id");
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set_down(false);

    // Back: it reconnects by itself and shows it, without a reload.
    browser
        .wait_for_element(&format!("#approve-{tx}"), Duration::from_secs(30))
        .await;
    browser
        .wait_for(
            "the live streams again",
            live,
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        browser
            .eval("return window.__stayed === true;", json!([]))
            .await,
        json!(true)
    );
    rendered_cleanly(&browser.text().await);
    // Only the drop itself may have been logged (the browser reports the refused
    // connections); no script error.
    let logged: Vec<_> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, message)| level == "SEVERE" && !message.contains("net::ERR_"))
        .collect();
    assert!(
        logged.is_empty(),
        "console errors around the drop: {logged:#?}"
    );
    browser.quit().await;
    app.stop().await;
}

/// A live update does not re-render a form under the user's hands: what they typed survives
/// the update (red before: the wallet page was rebuilt 250 ms after the event, the field with
/// it), and the update comes once they submit.
#[tokio::test]
async fn a_live_update_keeps_what_the_owner_is_typing_into_a_form() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let Setup {
        owner_key,
        agent_key,
        from,
        to,
        ..
    } = setup(&app, "Acme", "bot", 10_000, json!({})).await;
    let browser = Browser::start(1024, 900).await;
    sign_in(&browser, &app.base, &owner_key).await;
    browser
        .goto(&format!("{}/console#/wallet/{from}", app.base))
        .await;
    browser
        .wait_for_element("#p-daily", Duration::from_secs(10))
        .await;
    browser
        .wait_for(
            "the wallet's live stream",
            "return document.getElementById('live').classList.contains('on');",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    browser.type_into("#p-daily", "7777").await;
    // The owner looks elsewhere on the page: the field has lost the focus, not its value.
    browser
        .eval("document.activeElement.blur();", json!([]))
        .await;

    // A transfer from the wallet: its event reaches the page while the owner types.
    let r = app
        .transfer(&agent_key, &from, &to, 2_500, "meanwhile")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let typed = browser
        .eval(
            "return document.getElementById('p-daily').value;",
            json!([]),
        )
        .await;
    assert_eq!(typed, json!("7777"), "what the owner typed was lost");

    // Saved, the page is rendered again: the policy as saved, the balance after the transfer.
    browser
        .click("form[aria-label='Wallet policy'] button[type=submit]")
        .await;
    browser
        .wait_for(
            "the saved policy and the balance after the transfer",
            "return document.getElementById('p-daily').defaultValue === '7777' \
             && document.getElementById('view').innerText.includes('75.00 USD');",
            json!([]),
            Duration::from_secs(10),
        )
        .await;
    let got = app
        .get(&format!("/v1/wallets/{from}/policy"), &owner_key)
        .await;
    assert_eq!(got.body["daily_limit"], json!(7777), "{:?}", got.body);
}
