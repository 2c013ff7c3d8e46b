-- refresh: slide the idle expiry by rewriting only the metadata prefix; the data bytes are
-- copied as they are (re-encoding them here would change numbers). KEYS: session key, expiry
-- index. ARGV: now, sid, prefix. Returns {OK} | {GONE} | {CORRUPT} | {FOREIGN}.
local now, sid, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
if kind == 'foreign' then return {FOREIGN} end
if not is_live(kind, m, now) then return {GONE} end

local e = now + m.t
local value = meta_prefix_s(m.cs, m.ts, fmt(e), m.as, fmt(m.w + 1), m.u) .. string.sub(v, m.rest)
store(KEYS[1], value, prefix, KEYS[2], sid, m.u, m.u, expires_at(e, m.a), now)
return {OK}
