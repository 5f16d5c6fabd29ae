//! Helpers: connecting with a test prefix, entries, polling with a deadline, and a plain
//! fred client to look at what the adapters stored.

use std::time::Duration;

use fred::prelude::{Builder, Client, ClientLike, Config, KeysInterface, ServerConfig};
use waiaas_domain::ports::{CacheEntry, CacheError, CacheStore, WriteOutcome};
use waiaas_redis::{Redis, RedisConfig, RedisMode};
use waiaas_testkit::{test_redis_url, unique_prefix};

/// A configuration for `mode` with a fresh prefix and timeouts generous enough for a busy
/// machine (these are hang checks, not performance checks).
pub fn config(mode: RedisMode) -> RedisConfig {
    RedisConfig {
        mode,
        password: None,
        key_prefix: unique_prefix(),
        command_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(1),
        reconnect_max_delay: Duration::from_millis(200),
        tls: None,
    }
}

pub fn standalone(url: &str) -> RedisConfig {
    config(RedisMode::Standalone {
        url: url.to_owned(),
    })
}

/// Connects and waits until both connections are up.
pub async fn connect(cfg: &RedisConfig) -> Redis {
    let redis = Redis::connect(cfg).await.expect("a valid configuration");
    assert!(
        redis.wait_connected(Duration::from_secs(10)).await,
        "Redis did not connect"
    );
    redis
}

/// The shared test server, with a prefix of its own.
pub async fn shared() -> (Redis, RedisConfig) {
    let cfg = standalone(&test_redis_url());
    (connect(&cfg).await, cfg)
}

pub fn entry(epoch: i64, version: i64, value: Option<&[u8]>) -> CacheEntry {
    CacheEntry {
        epoch,
        version,
        value: value.map(<[u8]>::to_vec),
    }
}

/// The fill token a reader of `epoch` gets at a miss of `key`.
pub async fn token(redis: &Redis, key: &str, epoch: i64) -> String {
    let candidate = uuid::Uuid::new_v4().simple().to_string();
    redis
        .lookup(key, epoch, true, &candidate, Duration::from_secs(30))
        .await
        .unwrap()
        .fill_token
        .expect("a miss hands out a fill token")
}

/// A fill as a reader makes it: a lookup that misses (handing out the key's fill token),
/// then the fill with that token.
pub async fn fill(
    redis: &Redis,
    key: &str,
    e: &CacheEntry,
    ttl: Duration,
) -> Result<WriteOutcome, CacheError> {
    let token = token(redis, key, e.epoch).await;
    redis.fill(key, e, ttl, &token).await
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain client that reads what the adapters wrote, keys given with their prefix.
pub struct Inspector(Client);

impl Inspector {
    pub async fn new(cfg: &RedisConfig) -> Self {
        let config = match &cfg.mode {
            RedisMode::Standalone { url } => Config::from_url(url).unwrap(),
            RedisMode::Cluster { nodes } => Config {
                server: ServerConfig::new_clustered(
                    nodes
                        .iter()
                        .map(|n| {
                            let (host, port) = n.rsplit_once(':').unwrap();
                            (host.to_owned(), port.parse().unwrap())
                        })
                        .collect(),
                ),
                ..Config::default()
            },
            RedisMode::Sentinel { .. } => panic!("no sentinel in tests"),
        };
        let client = Builder::from_config(config).build().unwrap();
        client.init().await.unwrap();
        Self(client)
    }

    /// The key's remaining TTL in ms (-1: none, -2: no key).
    pub async fn pttl(&self, key: &str) -> i64 {
        self.0.pttl(key).await.unwrap()
    }

    pub async fn exists(&self, key: &str) -> bool {
        self.0.exists::<i64, _>(key).await.unwrap() == 1
    }

    /// Deletes a key, as an operator (or an eviction) would.
    pub async fn del(&self, key: &str) {
        let _: i64 = self.0.del(key).await.unwrap();
    }
}
