-- fill(KEYS[1]; ARGV: epoch, version, tombstone '1'|'0', data, ttl ms, fill token)
-- Stores a value read from the database after a miss, only if the key still holds the fill
-- token handed out at that miss: nothing was written, filled or removed since (an evicted
-- or deleted key has lost its token, so an old value can never come back over a newer one
-- that was evicted). The value was read after the token was handed out, so it is at least
-- as new as whatever the key held then: it lands when its version is newer, or the same
-- version over a tombstone, or the same version of a newer epoch; the entry keeps the
-- newer of the two epochs.
-- Returns {1} when stored, {0, e, v, t, d} (the stored entry, if any) when rejected.
local key = KEYS[1]
local e, v, t, d, ttl, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local s = stored(key)
if redis.call('HGET', key, 'f') ~= token then
  if s then return {0, s[1], s[2], s[3], s[4]} end
  return {0, false, false, false, false}
end
if s then
  local de, dv = cmp(e, s[1]), cmp(v, s[2])
  local newer = dv > 0 or (dv == 0 and (s[3] == '1' or de > 0))
  if not newer then return {0, s[1], s[2], s[3], s[4]} end
  if de < 0 then e = s[1] end
end
store(key, e, v, t, d, ttl)
return {1}
