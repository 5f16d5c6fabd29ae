-- lock_release(KEYS[1]; ARGV: token) -> 1 when the caller held the lock and released it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
