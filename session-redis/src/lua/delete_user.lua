-- delete_user: "log out everywhere", atomically. KEYS: user index, expiry index.
-- ARGV: now, prefix, user tag. Returns how many live sessions were deleted.
local now, prefix, u = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local n = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = prefix .. sid
  local kind, m = read_head(key)
  -- A session whose user changed since it was indexed is someone else's now: leave it.
  if kind == 'meta' and m.u == u then
    if is_live(kind, m, now) then n = n + 1 end
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], sid)
  end
end
redis.call('DEL', KEYS[1])
return n
