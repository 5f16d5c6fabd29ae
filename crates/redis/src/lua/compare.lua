-- Versions and epochs are i64 sent as canonical decimal strings (no '+', no leading zeros,
-- never "-0"). They are compared as strings, because Lua's numbers are doubles and would
-- lose precision above 2^53.
local function cmp(a, b)
  local neg_a, neg_b = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if neg_a ~= neg_b then
    if neg_a then return -1 else return 1 end
  end
  local x, y = a, b
  if neg_a then x, y = string.sub(b, 2), string.sub(a, 2) end
  if #x ~= #y then
    if #x < #y then return -1 else return 1 end
  end
  if x == y then return 0 end
  if x < y then return -1 else return 1 end
end

-- The stored entry as {e, v, t, d}, or nil when there is none (or it is malformed).
local function stored(key)
  local s = redis.call('HMGET', key, 'e', 'v', 't', 'd')
  if not s[1] or not s[2] then return nil end
  return s
end

-- Replaces the whole entry and sets its TTL.
local function store(key, e, v, t, d, ttl)
  redis.call('DEL', key)
  if t == '1' then
    redis.call('HSET', key, 'e', e, 'v', v, 't', '1')
  else
    redis.call('HSET', key, 'e', e, 'v', v, 't', '0', 'd', d)
  end
  redis.call('PEXPIRE', key, ttl)
end

