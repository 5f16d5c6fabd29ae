//! The Lua scripts of this crate, run by `EVALSHA` and reloaded on `NOSCRIPT`.

use fred::bytes_utils::Str;
use fred::interfaces::ClientLike;
use fred::types::scripts::Script;
use fred::types::{ClusterHash, CustomCommand, FromValue, Value};
use fred::util::redis_keyslot;

use crate::error::RedisError;

/// One Lua script touching a single key (so it runs on Redis Cluster).
#[derive(Debug)]
pub(crate) struct LuaScript {
    name: &'static str,
    script: Script,
}

impl LuaScript {
    pub(crate) fn new(name: &'static str, lua: &'static str) -> Self {
        Self {
            name,
            script: Script::from_lua(lua),
        }
    }

    /// Runs the script on `key`. A server that does not know it yet (first use, or restarted)
    /// answers `NOSCRIPT`; it then gets the body once by `EVAL`, which also caches it there,
    /// so a script costs one extra round trip per server lifetime. Both go out as custom
    /// commands because fred's `WithOptions` (which carries the fail-fast options) has no Lua
    /// interface, and its `evalsha_with_reload` would `SCRIPT LOAD` on every cluster node.
    pub(crate) async fn run<R, C>(
        &self,
        client: &C,
        key: String,
        args: Vec<Value>,
    ) -> Result<R, RedisError>
    where
        R: FromValue,
        C: ClientLike,
    {
        // fred routes a custom command by its first string argument (here the script)
        // unless it is given the hash slot itself.
        let slot = ClusterHash::Custom(redis_keyslot(key.as_bytes()));
        let call = |command: &'static str, script: Str| {
            let mut all = Vec::with_capacity(args.len() + 3);
            all.extend([
                Value::from(script),
                Value::from(1),
                Value::from(key.as_str()),
            ]);
            all.extend(args.iter().cloned());
            let command = CustomCommand::new_static(command, slot.clone(), false);
            client.custom::<R, Value>(command, all)
        };
        match call("EVALSHA", self.script.sha1().clone()).await {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                tracing::debug!(script = self.name, "Loading a Lua script into Redis");
                let lua = self.script.lua().cloned().unwrap_or_default();
                Ok(call("EVAL", lua).await?)
            }
            other => Ok(other?),
        }
    }
}

/// The scripts, hashed once per [`Redis`](crate::Redis).
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) lookup: LuaScript,
    pub(crate) fill: LuaScript,
    pub(crate) write: LuaScript,
    pub(crate) gcra: LuaScript,
    pub(crate) lock_release: LuaScript,
    pub(crate) lock_extend: LuaScript,
    pub(crate) presence: LuaScript,
    pub(crate) presence_read: LuaScript,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            lookup: LuaScript::new("lookup", include_str!("lua/lookup.lua")),
            fill: LuaScript::new(
                "fill",
                concat!(
                    include_str!("lua/compare.lua"),
                    include_str!("lua/fill.lua")
                ),
            ),
            write: LuaScript::new(
                "write",
                concat!(
                    include_str!("lua/compare.lua"),
                    include_str!("lua/write.lua")
                ),
            ),
            gcra: LuaScript::new("gcra", include_str!("lua/gcra.lua")),
            lock_release: LuaScript::new("lock_release", include_str!("lua/lock_release.lua")),
            lock_extend: LuaScript::new("lock_extend", include_str!("lua/lock_extend.lua")),
            presence: LuaScript::new("presence", include_str!("lua/presence.lua")),
            presence_read: LuaScript::new("presence_read", include_str!("lua/presence_read.lua")),
        }
    }
}
