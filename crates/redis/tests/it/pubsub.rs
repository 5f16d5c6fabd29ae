//! The event bus: delivery per channel and prefix, and recovery after a server restart.

use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use waiaas_domain::ports::EventBus;
use waiaas_testkit::RedisServer;

use crate::support::{connect, eventually, shared, standalone};

async fn next(stream: &mut BoxStream<'static, Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn a_message_reaches_the_subscribers_of_its_channel_only() {
    let (redis, cfg) = shared().await;
    let mut other_prefix = cfg.clone();
    other_prefix.key_prefix = waiaas_testkit::unique_prefix();
    let stranger = connect(&other_prefix).await;

    let mut a = redis.subscribe("cache:invalidate").await.unwrap();
    let mut a_again = redis.subscribe("cache:invalidate").await.unwrap();
    let mut b = redis.subscribe("wallet:events").await.unwrap();
    let mut strange = stranger.subscribe("cache:invalidate").await.unwrap();

    redis
        .publish("cache:invalidate", b"k1".to_vec())
        .await
        .unwrap();
    redis
        .publish("wallet:events", b"marker".to_vec())
        .await
        .unwrap();
    stranger
        .publish("cache:invalidate", b"stranger".to_vec())
        .await
        .unwrap();

    assert_eq!(next(&mut a).await, b"k1");
    assert_eq!(next(&mut a_again).await, b"k1");
    // Had b received the other channel's message, it would come before the marker.
    assert_eq!(next(&mut b).await, b"marker");
    assert_eq!(next(&mut strange).await, b"stranger");
    // And a did not get the stranger's message (same channel name, other prefix).
    redis
        .publish("cache:invalidate", b"k2".to_vec())
        .await
        .unwrap();
    assert_eq!(next(&mut a).await, b"k2");
}

#[tokio::test]
async fn after_a_server_restart_the_subscription_resumes_with_a_new_generation() {
    let mut server = RedisServer::start().await.unwrap();
    let redis = connect(&standalone(&server.url())).await;
    let before = redis.status();
    assert!(before.connected);
    assert!(before.generation >= 1);
    let mut events = redis.subscribe("wallet:events").await.unwrap();
    redis
        .publish("wallet:events", b"before".to_vec())
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, b"before");

    server.kill();
    eventually(Duration::from_secs(5), "the bus to notice", || async {
        (!redis.status().connected).then_some(())
    })
    .await;
    assert!(
        redis
            .publish("wallet:events", b"lost".to_vec())
            .await
            .is_err()
    );

    server.restart().await.unwrap();
    let after = eventually(Duration::from_secs(10), "the bus to come back", || async {
        let status = redis.status();
        status.connected.then_some(status)
    })
    .await;
    assert!(
        after.generation > before.generation,
        "{before:?} then {after:?}"
    );
    eventually(
        Duration::from_secs(10),
        "publishing to work again",
        || async { redis.publish("wallet:events", b"after".to_vec()).await.ok() },
    )
    .await;
    assert_eq!(next(&mut events).await, b"after");
}

#[tokio::test]
async fn subscribing_while_the_bus_is_down_fails_at_once() {
    let mut server = RedisServer::start().await.unwrap();
    let redis = connect(&standalone(&server.url())).await;
    server.kill();
    eventually(Duration::from_secs(5), "the bus to notice", || async {
        (!redis.status().connected).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    assert!(redis.subscribe("wallet:events").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "hung for {:?}",
        started.elapsed()
    );
}
