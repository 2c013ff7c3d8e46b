-- insert / set / import. KEYS: session key, expiry index.
-- ARGV: mode, now, sid, prefix, data tail (see compose), user hex, idle timeout ms (0 = the session's own, else
-- the default), default idle timeout ms, absolute lifetime ms (0 = none); import adds
-- created ms, idle expiry ms, absolute expiry ms (0 = none).
-- Returns {OK, created, idle timeout, idle expiry, absolute expiry, writes} | {TAKEN} |
-- {CORRUPT} | {EXPIRED}. The caller rebuilds the bytes to hash them (no SHA-1 here).
local mode, now, sid, prefix, tail, u = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local given_t, default_t, abs = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
local live = is_live(kind, m, now)
if live and mode ~= 'set' then return {TAKEN} end

local c, t, e, a
if mode == 'import' then
  c, t, e, a = tonumber(ARGV[10]), given_t, tonumber(ARGV[11]), tonumber(ARGV[12])
  if now >= expires_at(e, a) then return {EXPIRED} end
elseif live then
  -- set over a live session keeps its creation and absolute expiry
  if kind == 'meta' then c, t, a = m.c, m.t, m.a else c, t, a = foreign_created(m, now), default_t, 0 end
  if given_t > 0 then t = given_t end
  e = now + t
else
  c = now
  t = given_t > 0 and given_t or default_t
  e = now + t
  a = abs > 0 and now + abs or 0
end

local w, old_u = nil, ''
if kind == 'meta' then w, old_u = m.w + 1, m.u else w = fresh_w() end
local value = compose(c, t, e, a, w, u, tail)
store(KEYS[1], value, prefix, KEYS[2], sid, old_u, u, expires_at(e, a), now)
return {OK, c, t, e, a, w}
