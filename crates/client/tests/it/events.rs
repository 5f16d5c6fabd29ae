//! The typed event stream resumes: from a given event, and by itself after its connection
//! is cut.

use std::net::SocketAddr;
use std::time::Duration;

use waiaas_client::{Client, RetryPolicy};
use waiaas_testkit::{TcpProxy, TestDb};
use waiaas_tests::{Options, TestApp};

use crate::{World, about, next_event, pay};

#[tokio::test]
async fn a_stream_opened_after_an_event_starts_with_the_next_one() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 1_000).await;
    let one = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 10))
        .await
        .unwrap();
    let two = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 20))
        .await
        .unwrap();

    let mut all = Box::pin(w.agent.wallet_events(w.wallet.id, Some(0)));
    let first = next_event(&mut all, |e| about(e, "transaction.completed", one.id)).await;
    let second = next_event(&mut all, |e| about(e, "transaction.completed", two.id)).await;
    assert!(second.id > first.id);

    let mut resumed = Box::pin(w.agent.wallet_events(w.wallet.id, Some(first.id)));
    let next = next_event(&mut resumed, |_| true).await;
    assert_eq!(
        next, second,
        "the first event after `after`, read back whole"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stream_whose_connection_is_cut_reconnects_and_resumes_after_its_last_event() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db, Options::default()).await;
    let w = World::new(&app, 1_000).await;
    // The agent listens through a proxy that can cut its connections to the service.
    let address: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let proxy = TcpProxy::start(address).await.unwrap();
    let patient = RetryPolicy {
        max_attempts: 50,
        backoff: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
    };
    let key = w
        .owner
        .create_agent_key(w.agent_id, None)
        .await
        .unwrap()
        .api_key;
    let listener = Client::builder(format!("http://127.0.0.1:{}", proxy.port()), key)
        .retry(patient)
        .build()
        .unwrap();
    let mut events = Box::pin(listener.wallet_events(w.wallet.id, Some(0)));
    let before = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 10))
        .await
        .unwrap();
    let seen = next_event(&mut events, |e| {
        about(e, "transaction.completed", before.id)
    })
    .await;

    // The connection is cut and new ones refused while a transfer commits: no stream is
    // open when its event is placed, so only a resume from the last id can deliver it.
    proxy.set_down(true);
    let during = w
        .agent
        .transfer(w.wallet.id, &pay(w.payee.id, 20))
        .await
        .unwrap();
    proxy.set_down(false);

    let next = next_event(&mut events, |_| true).await;
    assert!(next.id > seen.id, "nothing seen before is repeated");
    assert!(about(&next, "transaction.completed", during.id), "{next:?}");
    app.stop().await;
}
