-- delete: remove the key (whatever it holds, corrupt values included) and its index entries.
-- KEYS: session key, expiry index. ARGV: now, sid, prefix. Returns 1 if a live session went.
local now, sid, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local kind, m = read_head(KEYS[1])
local u = ''
if kind == 'meta' then u = m.u end
if kind ~= 'none' then redis.call('DEL', KEYS[1]) end
unindex(prefix, KEYS[2], sid, u)
if is_live(kind, m, now) then return 1 end
return 0
