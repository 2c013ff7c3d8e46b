-- save: compare-and-set on the content hash. KEYS: session key, expiry index.
-- ARGV: now, expected version, sid, prefix, data tail (see compose), user hex, then the new
-- metadata as digits the caller computed from the session's lifetime (which the version check
-- proves current): created, idle timeout, idle expiry, absolute expiry ('0': none), expiry
-- (the index score), and a fresh write counter for a value that has none (foreign).
-- Returns {OK, writes} | {GONE} | {STALE} | {CORRUPT}; the caller hashes the new bytes.
local now, expected, sid, prefix, tail, u = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
-- Deleted, rotated away or expired: a save never brings it back.
if not is_live(kind, m, now) then return {GONE} end
if version_of(v) ~= expected then return {STALE} end

local w, old_u = ARGV[12], ''
if kind == 'meta' then w, old_u = fmt(m.w + 1), m.u end
local score = ARGV[11]
store_s(KEYS[1], compose_s(ARGV[7], ARGV[8], ARGV[9], ARGV[10], w, u, tail), prefix, KEYS[2],
        sid, old_u, u, score, tonumber(score) - now + TTL_GRACE_MS)
return {OK, w}
