-- write(KEYS[1]; ARGV: epoch, version, tombstone '1'|'0', data, ttl ms)
-- Writes through a committed change when its version is above the stored one; the stored
-- epoch becomes the higher of the two. A value lands as a value only over a value: a write
-- that finds no entry (or only a fill token), or a tombstone, may be a late one whose newer
-- successor was written and then evicted, deleted or expired, so it lands as a tombstone
-- of its version, which no reader serves and the next reader's fill replaces.
-- Returns {1} when stored, {0, e, v, t, d} otherwise.
local key = KEYS[1]
local e, v, t, d, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local s = stored(key)
if s then
  if cmp(v, s[2]) <= 0 then return {0, s[1], s[2], s[3], s[4]} end
  if cmp(s[1], e) > 0 then e = s[1] end
end
if not s or s[3] == '1' then t = '1' end
store(key, e, v, t, d, ttl)
return {1}
