//! Coordination locks for jobs: `SET NX PX` with a random token, released and extended by
//! compare-and-act Lua scripts so only the owner can.

use std::time::Duration;

use async_trait::async_trait;
use fred::interfaces::KeysInterface;
use fred::types::{Expiration, SetOptions, Value};
use waiaas_domain::ports::{LockError, LockLease, LockManager};

use crate::cache_store::ttl_millis;
use crate::client::Redis;
use crate::error::RedisError;

impl Redis {
    fn lock_key(&self, resource: &str) -> String {
        self.key(&format!("lock:{resource}"))
    }

    fn lock_ttl(ttl: Duration) -> Result<i64, RedisError> {
        Ok(i64::try_from(ttl_millis(ttl)?).unwrap_or(i64::MAX))
    }
}

#[async_trait]
impl LockManager for Redis {
    /// Takes `lock:<resource>` for `ttl` (never zero) with a random 128-bit token.
    #[tracing::instrument(level = "debug", skip(self))]
    async fn acquire(&self, resource: &str, ttl: Duration) -> Result<Option<LockLease>, LockError> {
        let ttl = Self::lock_ttl(ttl)?;
        let token = format!("{:032x}", rand::random::<u128>());
        let set: Option<String> = self
            .inner
            .cmd
            .set(
                self.lock_key(resource),
                token.as_str(),
                Some(Expiration::PX(ttl)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(RedisError::from)?;
        Ok(set.map(|_| LockLease {
            resource: resource.to_owned(),
            token,
        }))
    }

    #[tracing::instrument(level = "debug", skip(self, lease), fields(resource = %lease.resource))]
    async fn extend(&self, lease: &LockLease, ttl: Duration) -> Result<bool, LockError> {
        let ttl = Self::lock_ttl(ttl)?;
        let args = vec![Value::from(lease.token.as_str()), Value::from(ttl)];
        let extended: i64 = self
            .inner
            .scripts
            .lock_extend
            .run(&self.inner.cmd, self.lock_key(&lease.resource), args)
            .await?;
        Ok(extended == 1)
    }

    #[tracing::instrument(level = "debug", skip(self, lease), fields(resource = %lease.resource))]
    async fn release(&self, lease: &LockLease) -> Result<bool, LockError> {
        let args = vec![Value::from(lease.token.as_str())];
        let released: i64 = self
            .inner
            .scripts
            .lock_release
            .run(&self.inner.cmd, self.lock_key(&lease.resource), args)
            .await?;
        Ok(released == 1)
    }
}
