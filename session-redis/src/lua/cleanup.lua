-- cleanup, one batch of expiry index entries due by `now`. KEYS: expiry index.
-- ARGV: now, prefix, batch size. Returns {removed, repaired, entries looked at}.
-- Expired sessions are deleted with their index entries; entries whose key is gone, unreadable
-- or no longer ours are dropped; entries of live sessions get their true expiry back.
local now, prefix, batch = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local removed, repaired = 0, 0
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, batch)
for _, sid in ipairs(due) do
  local key = prefix .. sid
  local kind, v, m = read_session(key)
  if kind == 'meta' and is_live(kind, m, now) then
    redis.call('ZADD', KEYS[1], fmt(expires_at(m.e, m.a)), sid)
    repaired = repaired + 1
  elseif kind == 'meta' then
    redis.call('DEL', key)
    unindex(prefix, KEYS[1], sid, m.u)
    removed = removed + 1
  else
    redis.call('ZREM', KEYS[1], sid)
    repaired = repaired + 1
  end
end
return {removed, repaired, #due}
