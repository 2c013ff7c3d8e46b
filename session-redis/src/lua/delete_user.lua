-- delete_user for the sessions of one slot: "log out everywhere". KEYS: expiry index, then
-- session keys. ARGV: now, u, then the storage ids (in KEYS order). Deletes every session
-- that names user `u` (a session whose user changed since it was indexed is someone else's
-- now: left alone). Index entries in u's index stay until cleanup prunes them (see keys.rs).
-- Returns how many live sessions were deleted.
local now, u = tonumber(ARGV[1]), ARGV[2]

local n = 0
for i = 2, #KEYS do
  local key, sid = KEYS[i], ARGV[i + 1]
  local kind, m = read_head(key)
  if kind == 'meta' and m.u == u then
    if is_live(kind, m, now) then n = n + 1 end
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], sid)
  end
end
return n
