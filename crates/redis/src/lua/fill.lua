-- fill(KEYS[1]; ARGV: epoch, version, tombstone '1'|'0', data, ttl ms)
-- Stores a value read from the database unless something at least as new is there.
-- Returns {1} when stored, {0, e, v, t, d} (the stored entry) when rejected.
local key = KEYS[1]
local e, v, t, d, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local s = stored(key)
if s then
  local de, dv = cmp(e, s[1]), cmp(v, s[2])
  local newer = (de == 0 and (dv > 0 or (dv == 0 and s[3] == '1'))) or (de > 0 and dv >= 0)
  if not newer then return {0, s[1], s[2], s[3], s[4]} end
end
store(key, e, v, t, d, ttl)
return {1}
