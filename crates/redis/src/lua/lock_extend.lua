-- lock_extend(KEYS[1]; ARGV: token, ttl ms) -> 1 when the caller held the lock and extended it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
