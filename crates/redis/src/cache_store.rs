//! The cache port over Redis: versioned entries as hashes, conditional writes in Lua, and
//! namespace scans.

use std::time::Duration;

use async_trait::async_trait;
use fred::clients::{Client, WithOptions};
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::{ClusterHash, CustomCommand, Key, Value};
use futures::{StreamExt as _, TryStreamExt as _};
use waiaas_domain::ports::{CacheEntry, CacheError, CacheStore, Lookup, WriteOutcome};

use crate::client::Redis;
use crate::error::RedisError;
use crate::script::LuaScript;

/// How many keys one `SCAN` page asks for.
const SCAN_COUNT: u32 = 1000;
/// How many `UNLINK`s (one per cluster hash slot) run at once.
const UNLINK_CONCURRENCY: usize = 32;

/// The TTL in milliseconds, refusing zero: no key without a TTL can ever be written.
pub(crate) fn ttl_millis(ttl: Duration) -> Result<u64, RedisError> {
    if ttl.is_zero() {
        return Err(RedisError::Invalid(
            "a zero TTL was refused: no key without a TTL".to_owned(),
        ));
    }
    // A sub-millisecond TTL still expires (PEXPIRE 0 would delete the key at once).
    Ok(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// `HMGET` fields, or a script's rejected-entry reply, as an entry; `None` when absent.
fn parse_entry(fields: Vec<Value>) -> Result<Option<CacheEntry>, RedisError> {
    let mut fields = fields.into_iter();
    let (Some(e), Some(v), Some(t), d) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(RedisError::Command(
            "a cache entry reply is too short".to_owned(),
        ));
    };
    if e.is_null() || v.is_null() {
        return Ok(None);
    }
    let number = |value: &Value, field: &str| {
        value.as_i64().ok_or_else(|| {
            RedisError::Command(format!("cache entry field `{field}` is not an integer"))
        })
    };
    let tombstone = t.as_str().is_some_and(|t| t == "1");
    let value = if tombstone {
        None
    } else {
        Some(d.and_then(Value::into_owned_bytes).unwrap_or_default())
    };
    Ok(Some(CacheEntry {
        epoch: number(&e, "e")?,
        version: number(&v, "v")?,
        value,
    }))
}

impl Redis {
    /// Runs the fill or write script for one entry (a fill presents its token).
    async fn conditional_write(
        &self,
        script: &LuaScript,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
        token: Option<&str>,
    ) -> Result<WriteOutcome, RedisError> {
        let ttl = ttl_millis(ttl)?;
        let (tombstone, data) = match &entry.value {
            Some(bytes) => ("0", bytes.clone()),
            None => ("1", Vec::new()),
        };
        let mut args = vec![
            Value::from(entry.epoch.to_string()),
            Value::from(entry.version.to_string()),
            Value::from(tombstone),
            Value::try_from(data).map_err(RedisError::from)?,
            Value::from(ttl.to_string()),
        ];
        if let Some(token) = token {
            args.push(Value::from(token));
        }
        let reply: Vec<Value> = script.run(&self.inner.cmd, self.key(key), args).await?;
        let mut reply = reply.into_iter();
        match reply.next().and_then(|flag| flag.as_i64()) {
            Some(1) => Ok(WriteOutcome::Stored),
            Some(0) => Ok(WriteOutcome::Rejected {
                current: parse_entry(reply.collect())?,
            }),
            _ => Err(RedisError::Command(
                "unexpected cache script reply".to_owned(),
            )),
        }
    }

    /// Removes keys (already prefixed): one `UNLINK` per cluster hash slot, or per batch on a
    /// single server. Returns how many existed.
    async fn unlink_all(&self, keys: Vec<Key>) -> Result<u64, RedisError> {
        let groups: Vec<Vec<Key>> = if self.inner.client.is_clustered() {
            fred::util::group_by_hash_slot(keys)?
                .into_values()
                .map(Vec::from)
                .collect()
        } else {
            keys.chunks(SCAN_COUNT as usize)
                .map(<[Key]>::to_vec)
                .collect()
        };
        futures::stream::iter(groups)
            .map(|group| async move { self.inner.cmd.unlink::<u64, _>(group).await })
            .buffer_unordered(UNLINK_CONCURRENCY)
            .map_err(RedisError::from)
            .try_fold(0, |sum, n| async move { Ok(sum + n) })
            .await
    }

    /// Scans one server's keys matching `pattern`, unlinking them when `delete`.
    async fn scan_node(
        &self,
        node: &WithOptions<Client>,
        pattern: &str,
        delete: bool,
    ) -> Result<u64, RedisError> {
        let mut cursor = "0".to_owned();
        let mut found = 0;
        loop {
            let page: Vec<Value> = node
                .scan_page(cursor, pattern.to_owned(), Some(SCAN_COUNT), None)
                .await?;
            let mut page = page.into_iter();
            let (Some(next), Some(keys)) = (page.next(), page.next()) else {
                return Err(RedisError::Command("unexpected SCAN reply".to_owned()));
            };
            let keys: Vec<Key> = keys
                .into_array()
                .into_iter()
                .filter_map(|k| k.into_owned_bytes().map(|b| Key::from(b.as_slice())))
                .collect();
            found += if delete && !keys.is_empty() {
                self.unlink_all(keys).await?
            } else {
                keys.len() as u64
            };
            cursor = next.as_string().unwrap_or_default();
            if cursor == "0" || cursor.is_empty() {
                return Ok(found);
            }
        }
    }
}

/// Escapes the glob characters of a literal (the key prefix) for `SCAN MATCH`.
fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl CacheStore for Redis {
    #[tracing::instrument(level = "trace", skip(self))]
    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        let hmget = CustomCommand::new_static("HMGET", ClusterHash::FirstKey, false);
        let args = vec![
            self.key(key),
            "e".into(),
            "v".into(),
            "t".into(),
            "d".into(),
        ];
        let fields: Vec<Value> = self
            .inner
            .cmd
            .custom(hmget, args)
            .await
            .map_err(RedisError::from)?;
        Ok(parse_entry(fields)?)
    }

    #[tracing::instrument(level = "trace", skip(self, candidate))]
    async fn lookup(
        &self,
        key: &str,
        epoch: i64,
        miss: bool,
        candidate: &str,
        token_ttl: Duration,
    ) -> Result<Lookup, CacheError> {
        let args = vec![
            Value::from(epoch.to_string()),
            Value::from(candidate),
            Value::from(ttl_millis(token_ttl)?.to_string()),
            Value::from(if miss { "1" } else { "0" }),
        ];
        let reply: Vec<Value> = self
            .inner
            .scripts
            .lookup
            .run(&self.inner.cmd, self.key(key), args)
            .await?;
        let mut reply = reply.into_iter();
        let lookup = match reply.next().and_then(|flag| flag.as_i64()) {
            Some(1) => Lookup {
                entry: parse_entry(reply.collect())?,
                fill_token: None,
            },
            Some(0) => {
                let token = reply
                    .next()
                    .and_then(|t| t.as_string())
                    .ok_or_else(|| RedisError::Command("a miss without a fill token".to_owned()))?;
                let mut fields: Vec<Value> = reply.collect();
                fields.resize(4, Value::Null);
                Lookup {
                    entry: parse_entry(fields)?,
                    fill_token: Some(token),
                }
            }
            _ => {
                return Err(
                    RedisError::Command("unexpected lookup script reply".to_owned()).into(),
                );
            }
        };
        Ok(lookup)
    }

    #[tracing::instrument(level = "trace", skip(self, entry, token), fields(version = entry.version))]
    async fn fill(
        &self,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
        token: &str,
    ) -> Result<WriteOutcome, CacheError> {
        let script = &self.inner.scripts.fill;
        Ok(self
            .conditional_write(script, key, entry, ttl, Some(token))
            .await?)
    }

    #[tracing::instrument(level = "trace", skip(self, entry), fields(version = entry.version))]
    async fn write(
        &self,
        key: &str,
        entry: &CacheEntry,
        ttl: Duration,
    ) -> Result<WriteOutcome, CacheError> {
        let script = &self.inner.scripts.write;
        Ok(self
            .conditional_write(script, key, entry, ttl, None)
            .await?)
    }

    #[tracing::instrument(level = "trace", skip(self, keys), fields(keys = keys.len()))]
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys = keys.iter().map(|k| Key::from(self.key(k))).collect();
        self.unlink_all(keys).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn scan(&self, pattern: &str, delete: bool) -> Result<u64, CacheError> {
        let pattern = format!("{}{pattern}", escape_glob(&self.inner.prefix));
        let found = match self.primaries()? {
            None => self.scan_node(&self.inner.cmd, &pattern, delete).await?,
            Some(nodes) => {
                let mut found = 0;
                for node in nodes {
                    found += self
                        .scan_node(&self.on_node(node), &pattern, delete)
                        .await?;
                }
                found
            }
        };
        Ok(found)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(Redis::ping(self).await?)
    }

    async fn server_id(&self) -> Result<Option<String>, CacheError> {
        Ok(Some(self.run_id().await?))
    }
}
