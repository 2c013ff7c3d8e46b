-- delete: remove the key (whatever it holds, corrupt values included) and its expiry index
-- entry. A user index entry stays until cleanup prunes it (see keys.rs: removing it here
-- could race with a write that indexed the same id again).
-- KEYS: session key, expiry index. ARGV: now, sid. Returns 1 if a live session went.
local now, sid = tonumber(ARGV[1]), ARGV[2]

local kind, m = read_head(KEYS[1])
if kind ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], sid)
if is_live(kind, m, now) then return 1 end
return 0
