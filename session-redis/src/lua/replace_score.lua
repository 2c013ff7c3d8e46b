-- replace_score: move one expiry index entry from the score the caller saw to another, only if
-- it still has that score (nobody moved it meanwhile). Used after a native create that found
-- an earlier session's entry under its id (store/native.rs).
-- KEYS: expiry index. ARGV: storage id, expected score, new score. Returns 1 if moved, else 0.
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
