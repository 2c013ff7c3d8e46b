-- put, in every mode. KEYS: session key, expiry index, and on one server the index of the
-- user the data names (none under a per-slot layout).
-- ARGV: mode ('create' | 'upsert' | 'iflive' | 'ifversion'), now, sid, (unused), data tail (see
-- compose), user tag, given idle timeout ms ('0': none given), then the metadata a session
-- gets where no live one is, as digits the caller computed: created, idle timeout, idle
-- expiry, absolute expiry ('0': none), writes; then '1' when that metadata is a lifetime the
-- caller gave (stored as it is, over a live session too) else '0', and the expected version
-- ('ifversion'), then `indexed`: the user tag whose index already holds this storage id
-- ('' if the caller wrote none), then, after a native create that found the key taken and
-- added an expiry index entry where there was none (see store/native.rs), that entry's score:
-- a create that does not write removes the entry again (unless someone moved it meanwhile).
-- Only a write over a live session without a given lifetime composes metadata here (it keeps
-- the stored creation and absolute expiry), so the common paths format a single number on the
-- server. The idle expiry never passes the absolute one (Lifetime's rule in session-core).
-- Returns {OK, created, idle timeout, idle expiry, absolute expiry, writes} (digit strings) |
-- {TAKEN} | {GONE} | {STALE} | {CORRUPT} | {UNINDEXED} (the session would newly name user
-- `u`: the caller adds the id to u's index and calls again with `indexed` = u).
-- The caller rebuilds the bytes to hash them.
local mode, now, sid, prefix, tail, u, given_t = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

-- The native create's index entry, removed where it is still the one that create added.
local function undo_speculation()
  local added = ARGV[16]
  if not added or added == '' then return end
  local current = redis.call('ZSCORE', KEYS[2], sid)
  if current and tonumber(current) == tonumber(added) then redis.call('ZREM', KEYS[2], sid) end
end

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then
  undo_speculation()
  return {CORRUPT}
end
local live = is_live(kind, m, now)
if live and mode == 'create' then
  undo_speculation()
  return {TAKEN}
end
-- Deleted, rotated away or expired: a conditional put never brings it back.
if not live and (mode == 'iflive' or mode == 'ifversion') then return {GONE} end
if mode == 'ifversion' and version_of(v) ~= ARGV[14] then return {STALE} end
-- On one server the caller passes u's index as KEYS[3] and the entry is written here, in the
-- same step; elsewhere (Cluster: another slot) the caller writes it first.
local index_user = needs_user_entry(kind, m, u, ARGV[15])
if index_user and not KEYS[3] then return {UNINDEXED} end

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

local score = expires_at_s(e, a)
if index_user then
  redis.call('ZADD', KEYS[3], score, sid)
  redis.call('PERSIST', KEYS[3])
end
store_s(KEYS[1], compose_s(c, t, a, w, u, tail), KEYS[2], sid, score, tonumber(score) - now)
return {OK, c, t, e, a, w}
