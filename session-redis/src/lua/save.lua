-- save: compare-and-set on the content hash. KEYS: session key, expiry index.
-- ARGV: now, expected version, sid, prefix, data tail (see compose), user hex, created, idle timeout, absolute
-- expiry (0 = none); the lifetime is the caller's, which the version check proves current.
-- Returns {OK, writes} | {GONE} | {STALE} | {CORRUPT}; the caller hashes the new bytes.
local now, expected, sid, prefix, tail, u = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local c, t, a = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
-- Deleted, rotated away or expired: a save never brings it back.
if not is_live(kind, m, now) then return {GONE} end
if version_of(v) ~= expected then return {STALE} end

local w, old_u = nil, ''
if kind == 'meta' then w, old_u = m.w + 1, m.u else w = fresh_w() end
local e = now + t
local value = compose(c, t, e, a, w, u, tail)
store(KEYS[1], value, prefix, KEYS[2], sid, old_u, u, expires_at(e, a), now)
return {OK, w}
