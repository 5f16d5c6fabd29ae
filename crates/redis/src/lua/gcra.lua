-- gcra(KEYS[1]; ARGV: emission interval in whole microseconds, burst)
-- Generic cell rate algorithm. The key holds the theoretical arrival time (TAT) in
-- milliseconds (three decimals) and lives until that time. Time comes from the server, so
-- every instance shares one clock (Redis 7 replicates script effects, so TIME is allowed).
-- All arithmetic is on whole microseconds (exact in Lua's doubles until the year 2255).
-- Returns {allowed 1|0, remaining, retry after in microseconds}.
local key = KEYS[1]
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tolerance = emission * burst

local tat = now
local held = tonumber(redis.call('GET', key) or '')
if held then
  local t = math.floor(held * 1000 + 0.5)
  if t > now then tat = t end
end

local new_tat = tat + emission
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now)}
end

local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', key, string.format('%.3f', new_tat / 1000), 'PX', ttl_ms)
local remaining = math.floor((tolerance - (new_tat - now)) / emission)
return {1, remaining, 0}
