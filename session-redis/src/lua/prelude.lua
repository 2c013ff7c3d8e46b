-- Shared by every script (scripts.rs prepends it). `now` is the caller's clock (ms): it stamps
-- creation and expiry times; whether a session exists is Redis's call (see is_live).
-- Numbers go back to Redis through fmt(): Lua's default conversion would print 1.7e+12.

local OK, GONE, STALE, TAKEN, CORRUPT, FOREIGN, UNINDEXED = 1, 0, -1, -3, -2, -4, -5

-- The metadata member at the start of a value, with any JSON whitespace (the existing service
-- writes it back through json.dumps, which adds spaces). The last capture is the position
-- right after the member, where the data members continue.
-- The compact form this library writes is tried first: it matches several times faster.
-- Values from before layout v2 carry an idle expiry `e` after `t`: read, never written.
local META_COMPACT = '^{"__session__":{"c":(%d+),"t":(%d+),"a":(%d+),"w":(%d+),"u":"(%x*)"}()'
local META = '^%s*{%s*"__session__"%s*:%s*{%s*"c"%s*:%s*(%d+)%s*,%s*"t"%s*:%s*(%d+)%s*,%s*"a"%s*:%s*(%d+)%s*,%s*"w"%s*:%s*(%d+)%s*,%s*"u"%s*:%s*"(%x*)"%s*}()'
local META_V1 = '^%s*{%s*"__session__"%s*:%s*{%s*"c"%s*:%s*(%d+)%s*,%s*"t"%s*:%s*(%d+)%s*,%s*"e"%s*:%s*%d+%s*,%s*"a"%s*:%s*(%d+)%s*,%s*"w"%s*:%s*(%d+)%s*,%s*"u"%s*:%s*"(%x*)"%s*}()'

-- The metadata of value v as a table (numbers, plus their digits as stored: cs, ts, as, so a
-- rewrite keeps them without formatting them again), or nil.
local function match_meta(v)
  local legacy = false
  local c, t, a, w, u, rest = string.match(v, META_COMPACT)
  if not c then c, t, a, w, u, rest = string.match(v, META) end
  if not c then
    c, t, a, w, u, rest = string.match(v, META_V1)
    legacy = true
  end
  if not c then return nil end
  -- legacy: written before layout v2, its `u` the user id's hex rather than its tag
  return {c = tonumber(c), t = tonumber(t), a = tonumber(a), w = tonumber(w), u = u,
          rest = rest, cs = c, ts = t, as = a, legacy = legacy}
end

-- '%d' (Lua 5.1 formats it through a C long) is exact up to 2^53 and about twice as cheap
-- on the server as '%.0f'; the scripts format as few numbers as they can (see compose_s).
local function fmt(n)
  return string.format('%d', n)
end

-- kind is 'none', 'meta' (ours), 'foreign' (a JSON object without metadata) or 'corrupt'
-- (anything else, including a non-string key: GET's WRONGTYPE error comes back as a table).
local function read_session(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then return 'corrupt' end
  if not v then return 'none' end
  local m = match_meta(v)
  if m then return 'meta', v, m end
  if string.find(v, '^%s*{') then
    local ok, obj = pcall(cjson.decode, v)
    if ok and type(obj) == 'table' and obj['__session__'] == nil then return 'foreign', v, obj end
  end
  return 'corrupt', v
end

-- The metadata from the first bytes of a value, for operations that do not need the rest
-- (refresh, cleanup): kind 'none', 'meta' (m as read_session gives it), 'foreign' (starts like
-- a JSON object, without metadata: only its first bytes are checked) or 'corrupt'.
local HEAD_BYTES = 511
local function read_head(key)
  local h = redis.pcall('GETRANGE', key, 0, HEAD_BYTES)
  if type(h) == 'table' then return 'corrupt' end
  if h == '' then
    if redis.call('EXISTS', key) == 0 then return 'none' end
    return 'corrupt'
  end
  local m = match_meta(h)
  if m then return 'meta', m end
  -- Metadata longer than the head, or a member of that name out of place: judge it whole.
  if string.find(h, '"__session__"', 1, true) then
    local kind, v, m = read_session(key)
    return kind, m
  end
  if string.find(h, '^%s*{') then return 'foreign' end
  return 'corrupt'
end

local function expires_at(e, a)
  if a > 0 and a < e then return a end
  return e
end

-- codec.rs's foreign_created: the `created` float seconds, floored to ms, if usable.
local function foreign_created(obj, now)
  local s = obj and obj['created']
  if type(s) == 'number' then
    local ms = math.floor(s * 1000)
    if ms >= 0 and ms < 9007199254740992 then return ms end
  end
  return now
end

local function meta_prefix_s(c, t, a, w, u)
  return '{"__session__":{"c":' .. c .. ',"t":' .. t .. ',"a":' .. a .. ',"w":' .. w ..
         ',"u":"' .. u .. '"}'
end

-- codec.rs's encode: metadata first, then the data members. `tail` is the compact data
-- object without its opening brace (`}` when empty), so no copy of it is made here.
-- compose_s takes the numbers already as digit strings.
local function compose_s(c, t, a, w, u, tail)
  if tail == '}' then return meta_prefix_s(c, t, a, w, u) .. '}' end
  return meta_prefix_s(c, t, a, w, u) .. ',' .. tail
end

local function version_of(value)
  return string.sub(redis.sha1hex(value), 1, 16)
end

-- First write count of a new incarnation: the server's clock in microseconds. A session
-- deleted and created again with the same data in the same millisecond must not repeat its
-- bytes, or a stale save would pass the content-hash version check. (Not a liveness decision,
-- so Redis time is fine here.)
local function fresh_w()
  local now_us = redis.call('TIME')
  return tonumber(now_us[1]) * 1000000 + tonumber(now_us[2])
end

-- Liveness (layout v2): Redis's clock and the key's TTL decide, as for the existing service. A
-- session is live while its key exists and its absolute expiry (if any) has not passed; every
-- write sets the key's TTL to exactly the session's expiry (no grace), and the expiry index's
-- score records that expiry in the store's clock, so reads can report it to the millisecond.
local function is_live(kind, m, now)
  return kind == 'foreign' or (kind == 'meta' and (m.a == 0 or now < m.a))
end

-- The session's expiry in the store's clock, reported exactly as this store set it (the
-- score) unless the key's TTL says another writer moved it: more than EXPIRY_JITTER_MS later
-- (its EXPIRE or SETEX), or more than EXPIRY_SLACK_MS earlier. A key without a TTL reports
-- its score if that is still ahead, else now + the idle timeout. liveness.rs's
-- reported_expiry is the same rule (and says why the two margins).
local EXPIRY_SLACK_MS, EXPIRY_JITTER_MS = 10000, 1000
local function reported_expiry(pttl, score, now, t)
  if pttl == -1 then
    if score and score > now then return score end
    return now + t
  end
  local e = now + pttl
  if score and e <= score + EXPIRY_JITTER_MS and e >= score - EXPIRY_SLACK_MS then
    return score
  end
  return e
end

-- reported_expiry read from Redis: PTTL of the key and its expiry index score. For a value of
-- ours, m is its metadata: an entry scored before the session was created belongs to an
-- earlier session under the same id (a native create leaves it: store/native.rs), and the
-- session then ends where its creation put it (liveness.rs's current_score, the same rule).
local function expiry_of(key, expkey, sid, now, t, m)
  local score = redis.call('ZSCORE', expkey, sid)
  if score then score = tonumber(score) end
  if score and m and score < m.c then score = expires_at(m.c + m.t, m.a) end
  return reported_expiry(redis.call('PTTL', key), score, now, t)
end

-- Writes a value with its expiry as the key's TTL and indexes it in the expiry index (the
-- user index is the caller's: see write.lua). `score` is the expiry as digits, `ttl` the
-- key's time to live in ms (expiry - now).
-- The shortest TTL a write gives a key (liveness.rs MIN_KEY_TTL_MS): a session written with
-- moments left (an import or copy) keeps its key until the next operation can see it.
local MIN_KEY_TTL_MS = 1000

local function store_s(key, value, expkey, sid, score, ttl)
  if ttl < MIN_KEY_TTL_MS then ttl = MIN_KEY_TTL_MS end
  redis.call('SET', key, value, 'PX', fmt(ttl))
  redis.call('ZADD', expkey, score, sid)
end

-- A write that would make a session name user `u` needs an entry in u's index first, so that
-- delete_user finds every session of the user (the index is another key, in another slot on
-- Cluster, so the caller writes it before this script runs, and says so with `indexed`).
-- Not needed when the session already names u: its entry was written before that write.
local function needs_user_entry(kind, m, u, indexed)
  if u == '' or indexed == u then return false end
  return not (kind == 'meta' and m.u == u and not m.legacy)
end

-- The expiry of digit strings e and a (a = '0': none), as digits.
local function expires_at_s(e, a)
  if a ~= '0' and tonumber(a) < tonumber(e) then return a end
  return e
end

-- Settles expiry index entries the caller found due (`now` or earlier): KEYS[first..] are
-- their session keys and ARGV[first_arg..] their storage ids, in the same order, all in the
-- index's slot. Redis has usually deleted the key by then (its TTL), and the entry goes with
-- the session counted as purged. A key still there was extended by another writer (its EXPIRE
-- or SETEX: the entry moves to where the key's TTL now ends) or is past its absolute expiry
-- (deleted). An entry no longer due (written meanwhile) is left alone, so a batch read before
-- this runs can be stale. Returns removed, repaired.
local function settle(expkey, now, default_t, first_key, first_arg)
  local removed, repaired = 0, 0
  for i = first_key, #KEYS do
    local key, sid = KEYS[i], ARGV[first_arg + i - first_key]
    local score = redis.call('ZSCORE', expkey, sid)
    if score and tonumber(score) <= now then
      local kind, m = read_head(key)
      if kind == 'none' then
        redis.call('ZREM', expkey, sid)
        removed = removed + 1
      elseif kind == 'corrupt' then
        redis.call('ZREM', expkey, sid)
        repaired = repaired + 1
      elseif is_live(kind, m, now) then
        local t, own = default_t, nil
        if kind == 'meta' then t, own = m.t, m end
        redis.call('ZADD', expkey, fmt(expiry_of(key, expkey, sid, now, t, own)), sid)
        repaired = repaired + 1
      else
        redis.call('DEL', key)
        redis.call('ZREM', expkey, sid)
        removed = removed + 1
      end
    end
  end
  return removed, repaired
end
