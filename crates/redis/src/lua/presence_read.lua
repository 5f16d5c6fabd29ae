-- presence_read(KEYS[1]: the agent's presence hash) -> {online 0|1, seen ms or -1}: online
-- while a stream's expiry (server time) is still ahead.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local online = 0
local seen = -1
for i = 1, #fields, 2 do
  if fields[i] == 'seen' then
    seen = tonumber(fields[i + 1])
  elseif tonumber(fields[i + 1]) > now then
    online = 1
  end
end
return {online, seen}
