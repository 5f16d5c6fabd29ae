//! Presence of agents: one hash per agent (`presence:streams:agent:<uuid>`) holding, per open stream, when
//! it stops counting unless refreshed, and when a stream was last seen open. Written and read
//! by Lua scripts on one key, with the server's clock, so instances' clocks do not matter.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fred::types::Value;
use waiaas_domain::ports::{AgentPresence, Presence};
use waiaas_domain::{AgentId, RepoError};

use crate::cache_store::ttl_millis;
use crate::client::Redis;

/// How long an agent's last sighting is remembered after its last stream closed.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3_600);

impl Redis {
    fn presence_key(&self, agent: AgentId) -> String {
        self.key(&format!("presence:streams:agent:{agent}"))
    }

    async fn presence_change(
        &self,
        agent: AgentId,
        stream: uuid::Uuid,
        what: &'static str,
        ttl: Duration,
    ) -> Result<(), RepoError> {
        let args = vec![
            Value::from(stream.to_string()),
            Value::from(what),
            Value::from(i64::try_from(ttl_millis(ttl).map_err(repo)?).unwrap_or(i64::MAX)),
            Value::from(i64::try_from(KEEP.as_millis()).unwrap_or(i64::MAX)),
        ];
        let _: i64 = self
            .inner
            .scripts
            .presence
            .run(&self.inner.cmd, self.presence_key(agent), args)
            .await
            .map_err(repo)?;
        Ok(())
    }
}

fn repo(e: crate::RedisError) -> RepoError {
    RepoError(anyhow::Error::new(e).context("presence"))
}

#[async_trait]
impl Presence for Redis {
    async fn open(
        &self,
        agent: AgentId,
        stream: uuid::Uuid,
        ttl: Duration,
    ) -> Result<(), RepoError> {
        self.presence_change(agent, stream, "open", ttl).await
    }

    async fn close(&self, agent: AgentId, stream: uuid::Uuid) -> Result<(), RepoError> {
        self.presence_change(agent, stream, "close", Duration::from_millis(1))
            .await
    }

    async fn presence(&self, agents: &[AgentId]) -> Result<Vec<AgentPresence>, RepoError> {
        let reads = agents.iter().map(|a| async move {
            let (online, seen): (i64, i64) = self
                .inner
                .scripts
                .presence_read
                .run(&self.inner.cmd, self.presence_key(*a), Vec::new())
                .await
                .map_err(repo)?;
            Ok::<_, RepoError>(AgentPresence {
                online: online == 1,
                last_seen_at: (seen >= 0)
                    .then(|| DateTime::<Utc>::from_timestamp_millis(seen))
                    .flatten(),
            })
        });
        futures::future::try_join_all(reads).await
    }
}
