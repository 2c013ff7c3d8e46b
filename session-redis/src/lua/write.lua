-- put, in every mode. KEYS: session key, expiry index.
-- ARGV: mode ('create' | 'upsert' | 'iflive' | 'ifversion'), now, sid, prefix, data tail (see
-- compose), user tag, given idle timeout ms ('0': none given), then the metadata a session
-- gets where no live one is, as digits the caller computed: created, idle timeout, idle
-- expiry, absolute expiry ('0': none), writes; then '1' when that metadata is a lifetime the
-- caller gave (stored as it is, over a live session too) else '0', and the expected version
-- ('ifversion').
-- Only a write over a live session without a given lifetime composes metadata here (it keeps
-- the stored creation and absolute expiry), so the common paths format a single number on the
-- server. The idle expiry never passes the absolute one (Lifetime's rule in session-core).
-- Returns {OK, created, idle timeout, idle expiry, absolute expiry, writes} (digit strings) |
-- {TAKEN} | {GONE} | {STALE} | {CORRUPT}. The caller rebuilds the bytes to hash them.
local mode, now, sid, prefix, tail, u, given_t = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
local live = is_live(kind, m, now)
if live and mode == 'create' then return {TAKEN} end
-- Deleted, rotated away or expired: a conditional put never brings it back.
if not live and (mode == 'iflive' or mode == 'ifversion') then return {GONE} end
if mode == 'ifversion' and version_of(v) ~= ARGV[14] then return {STALE} end

-- Fresh: the caller's metadata. Its write counter is new (microseconds, strictly increasing
-- per process), so a session deleted and created again with the same data never repeats its
-- bytes and a stale save cannot pass the content-hash version check.
local c, t, e, a, w = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
if live and ARGV[13] ~= '1' then
  -- over a live session: keep its creation and absolute expiry (and, for ours, its own idle
  -- timeout unless one is given)
  if kind == 'meta' then
    c, a, w = m.cs, m.as, fmt(m.w + 1)
    if given_t == '0' then t = m.ts end
  else
    c, a = fmt(foreign_created(m, now)), '0'
  end
  local idle = now + tonumber(t)
  if a ~= '0' and tonumber(a) < idle then idle = tonumber(a) end
  e = fmt(idle)
end

local old_u = ''
if kind == 'meta' then old_u = m.u end
local score = expires_at_s(e, a)
store_s(KEYS[1], compose_s(c, t, a, w, u, tail), prefix, KEYS[2], sid, old_u, u, score,
        tonumber(score) - now)
return {OK, c, t, e, a, w}
