-- cleanup's pruning of one user index. KEYS: the user index. ARGV: now, then storage ids
-- the caller found gone or someone else's. Removes each only if its score (the expiry it was
-- indexed with) is still `now` or earlier: an entry written since for a new write has a later
-- score and stays. Returns how many were removed.
local now, removed = tonumber(ARGV[1]), 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
