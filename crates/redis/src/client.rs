//! The connection: the fred clients shared by every adapter, and the server-level commands.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient, WithOptions};
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface};
use fred::types::config::{Options, Server};
use fred::types::{Builder, InfoKind};
use tokio::sync::watch;

use crate::bus::{self, BusState};
use crate::config::{RedisConfig, describe, fred_settings};
use crate::error::RedisError;
use crate::script::Scripts;

/// A connection to Redis (standalone, cluster or sentinel): one multiplexed client for
/// commands and one for pub/sub subscriptions. Cheap to clone. It implements the
/// [`CacheStore`](waiaas_domain::ports::CacheStore),
/// [`RateLimiter`](waiaas_domain::ports::RateLimiter),
/// [`LockManager`](waiaas_domain::ports::LockManager) and
/// [`EventBus`](waiaas_domain::ports::EventBus) ports.
#[derive(Clone)]
pub struct Redis {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    /// The client with the per-command options that make every call fail fast.
    pub(crate) cmd: WithOptions<Client>,
    pub(crate) options: Options,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) bus: Arc<BusState>,
    pub(crate) scripts: Scripts,
    pub(crate) prefix: String,
    target: String,
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    /// Stops the reconnection loops of a connection nobody can use any more.
    fn drop(&mut self) {
        let quit = *self.shutdown.borrow();
        if let (false, Ok(runtime)) = (quit, tokio::runtime::Handle::try_current()) {
            let (client, subscriber) = (self.client.clone(), self.subscriber.clone());
            runtime.spawn(async move {
                let _ = tokio::join!(subscriber.quit(), client.quit());
            });
        }
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("target", &self.inner.target)
            .field("key_prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Starts connecting to Redis in the background and returns as soon as the first attempt
    /// has succeeded or failed (at most `connect_timeout`). It never fails because Redis is
    /// down: until it is up every call fails fast, and the clients reconnect forever with an
    /// exponential backoff capped at `reconnect_max_delay`.
    ///
    /// # Errors
    /// When the configuration is invalid (a bad URL or node address).
    pub async fn connect(cfg: &RedisConfig) -> anyhow::Result<Self> {
        let settings = fred_settings(cfg)?;
        let mut builder = Builder::from_config(settings.config);
        builder
            .set_performance_config(settings.performance)
            .set_connection_config(settings.connection)
            .set_policy(settings.policy);
        let client = builder.build()?;
        let subscriber = builder.build_subscriber_client()?;
        let options = Options {
            // Fail at once while disconnected instead of queueing until reconnected.
            fail_fast: true,
            timeout: Some(cfg.command_timeout),
            max_attempts: Some(1),
            ..Options::default()
        };
        let target = describe(&cfg.mode);
        let (shutdown, stop) = watch::channel(false);
        let bus = Arc::new(BusState::default());

        // Event receivers are taken before connecting so that no event is missed.
        bus::watch_client(&client, target.clone(), stop.clone());
        bus::watch_subscriber(&subscriber, Arc::clone(&bus), stop);
        tokio::join!(
            first_attempt(&client, cfg.connect_timeout),
            first_attempt(&subscriber, cfg.connect_timeout),
        );
        if !client.is_connected() {
            tracing::warn!(
                redis = %target,
                "Redis is not reachable yet: running without it until it is"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                cmd: client.with_options(&options),
                client,
                options,
                subscriber,
                bus,
                scripts: Scripts::new(),
                prefix: cfg.key_prefix.clone(),
                target,
                shutdown,
            }),
        })
    }
}

/// Starts a client's connection task and waits for the outcome of its first attempt.
async fn first_attempt<C: ClientLike + EventInterface>(client: &C, limit: Duration) {
    let mut errors = client.error_rx();
    // The task runs until `quit`; its handle is not needed.
    drop(client.connect());
    tokio::select! {
        _ = client.wait_for_connect() => {}
        _ = errors.recv() => {}
        () = tokio::time::sleep(limit) => {}
    }
}

impl Redis {
    /// The key (or channel) as stored: this service's prefix, then `key`.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// The client with fail-fast options, aimed at one node.
    pub(crate) fn on_node(&self, server: Server) -> WithOptions<Client> {
        let options = Options {
            cluster_node: Some(server),
            ..self.inner.options.clone()
        };
        self.inner.client.with_options(&options)
    }

    /// The nodes to visit for a whole-keyspace command: every primary of a cluster, or
    /// `None` for the one server otherwise.
    pub(crate) fn primaries(&self) -> Result<Option<Vec<Server>>, RedisError> {
        if !self.inner.client.is_clustered() {
            return Ok(None);
        }
        let nodes = self
            .inner
            .client
            .cached_cluster_state()
            .map(|state| state.unique_primary_nodes())
            .unwrap_or_default();
        if nodes.is_empty() {
            return Err(RedisError::Unavailable("cluster state unknown".to_owned()));
        }
        Ok(Some(nodes))
    }

    /// Whether the command connection is up right now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.inner.client.is_connected()
    }

    /// Waits until both connections are up, for at most `limit`; says whether they are.
    /// Not needed in production (calls fail fast meanwhile); useful at start-up and in tests.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.is_connected() && self.inner.subscriber.is_connected() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Checks that Redis answers (every primary of a cluster).
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when it does not.
    pub async fn ping(&self) -> Result<(), RedisError> {
        match self.primaries()? {
            None => self.inner.cmd.ping::<()>(None).await?,
            Some(nodes) => {
                for node in nodes {
                    self.on_node(node).ping::<()>(None).await?;
                }
            }
        }
        Ok(())
    }

    /// The identity of the server process (`run_id` from `INFO server`), which changes when
    /// it restarts. On a cluster, every primary's, sorted and joined, so that a restart of
    /// any of them changes it.
    ///
    /// # Errors
    /// `Timeout` or `Unavailable` when Redis cannot answer; `Command` when `INFO` holds no
    /// `run_id`.
    pub async fn run_id(&self) -> Result<String, RedisError> {
        match self.primaries()? {
            None => parse_run_id(
                &self
                    .inner
                    .cmd
                    .info::<String>(Some(InfoKind::Server))
                    .await?,
            ),
            Some(nodes) => {
                let mut ids = Vec::with_capacity(nodes.len());
                for node in nodes {
                    let client = self.on_node(node.clone());
                    let info: String = client.info(Some(InfoKind::Server)).await?;
                    ids.push(format!("{node}={}", parse_run_id(&info)?));
                }
                ids.sort();
                Ok(ids.join(","))
            }
        }
    }

    /// Closes both connections and stops reconnecting. Later calls fail.
    ///
    /// # Errors
    /// When Redis could not be told (the connections are closed anyway).
    pub async fn quit(&self) -> Result<(), RedisError> {
        let _ = self.inner.shutdown.send(true);
        let (a, b) = tokio::join!(self.inner.subscriber.quit(), self.inner.client.quit());
        a?;
        b?;
        Ok(())
    }
}

fn parse_run_id(info: &str) -> Result<String, RedisError> {
    info.lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .map(|id| id.trim().to_owned())
        .ok_or_else(|| RedisError::Command("INFO server holds no run_id".to_owned()))
}
