-- list_user: the user's live sessions; drops entries of sessions that are gone, expired,
-- unreadable or now belong to someone else. KEYS: user index, expiry index.
-- ARGV: now, prefix, user tag.
-- Returns a flat array: sid, created, idle timeout, idle expiry, absolute expiry, ...
local now, prefix, u = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = prefix .. sid
  local kind, m = read_head(key)
  if kind == 'meta' and m.u == u and is_live(kind, m, now) then
    out[#out + 1] = sid
    out[#out + 1] = m.c
    out[#out + 1] = m.t
    out[#out + 1] = expiry_of(key, KEYS[2], sid, now, m.t)
    out[#out + 1] = m.a
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
return out
