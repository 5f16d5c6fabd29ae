-- presence(KEYS[1]: the agent's presence hash; ARGV: stream id, 'open' | 'close', ttl ms,
-- keep ms) -> 1. The hash holds one field per open stream (its expiry, server time in ms) and
-- `seen` (when a stream was last seen open). Opening or refreshing a stream sets its expiry;
-- closing removes it; both drop streams whose expiry passed (an instance that died) and
-- remember now as `seen`. The hash lives `keep` ms after the last change.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] ~= 'seen' and tonumber(fields[i + 1]) <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if ARGV[2] == 'open' then
  redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[3]))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[1], 'seen', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
