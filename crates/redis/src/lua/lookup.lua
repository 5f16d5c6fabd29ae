-- lookup(KEYS[1]; ARGV: epoch, candidate token, token ttl ms, miss '1'|'0')
-- A hit is a value (not a tombstone) of the reader's epoch: returns {1, e, v, t, d}.
-- Anything else is a miss: the key's fill token is handed out (the one there, or the
-- candidate, stored in field 'f'; a key created for it lives the token TTL) and
-- {0, token, e, v, t, d} returned. Writes, fills and removals of the key end the token.
local key = KEYS[1]
local s = redis.call('HMGET', key, 'e', 'v', 't', 'd', 'f')
if ARGV[4] ~= '1' and s[1] and s[2] and s[1] == ARGV[1] and s[3] == '0' then
  return {1, s[1], s[2], s[3], s[4]}
end
local token = s[5]
if not token then
  token = ARGV[2]
  local existed = redis.call('EXISTS', key) == 1
  redis.call('HSET', key, 'f', token)
  if not existed then
    redis.call('PEXPIRE', key, ARGV[3])
  end
end
return {0, token, s[1], s[2], s[3], s[4]}
