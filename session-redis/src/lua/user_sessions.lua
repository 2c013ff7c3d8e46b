-- list_user's and cleanup's check of a user's index entries, for the entries of one slot:
-- which of these sessions are live and name user `u`. KEYS: expiry index, then the session
-- keys. ARGV: now, u, then the storage ids (in KEYS order).
-- Returns a flat array: sid, created, idle timeout, expiry, absolute expiry, ... for each
-- live session of u. Entries not returned are gone, expired, unreadable or someone else's.
local now, u = tonumber(ARGV[1]), ARGV[2]

local out = {}
for i = 2, #KEYS do
  local key, sid = KEYS[i], ARGV[i + 1]
  local kind, m = read_head(key)
  if kind == 'meta' and m.u == u and is_live(kind, m, now) then
    out[#out + 1] = sid
    out[#out + 1] = m.c
    out[#out + 1] = m.t
    out[#out + 1] = expiry_of(key, KEYS[1], sid, now, m.t, m)
    out[#out + 1] = m.a
  end
end
return out
