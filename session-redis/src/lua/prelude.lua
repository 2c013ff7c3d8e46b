-- Shared by every script (scripts.rs prepends it). Time is the caller's clock (`now`, ms),
-- never Redis time, so tests with a manual clock decide exactly like the Rust model.
-- Numbers go back to Redis through fmt(): Lua's default conversion would print 1.7e+12.

local OK, GONE, STALE, TAKEN, CORRUPT, FOREIGN = 1, 0, -1, -3, -2, -4

-- The metadata member at the start of a value, with any JSON whitespace (the existing service
-- writes it back through json.dumps, which adds spaces). The last capture is the position
-- right after the member, where the data members continue.
-- The compact form this library writes is tried first: it matches several times faster.
local META_COMPACT = '^{"__session__":{"c":(%d+),"t":(%d+),"e":(%d+),"a":(%d+),"w":(%d+),"u":"(%x*)"}()'
local META = '^%s*{%s*"__session__"%s*:%s*{%s*"c"%s*:%s*(%d+)%s*,%s*"t"%s*:%s*(%d+)%s*,%s*"e"%s*:%s*(%d+)%s*,%s*"a"%s*:%s*(%d+)%s*,%s*"w"%s*:%s*(%d+)%s*,%s*"u"%s*:%s*"(%x*)"%s*}()'

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
  local c, t, e, a, w, u, rest = string.match(v, META_COMPACT)
  if not c then c, t, e, a, w, u, rest = string.match(v, META) end
  if c then
    -- cs, ts, as: the stored digits, so a rewrite can keep them without formatting them again.
    return 'meta', v, {c = tonumber(c), t = tonumber(t), e = tonumber(e), a = tonumber(a),
                       w = tonumber(w), u = u, rest = rest, cs = c, ts = t, as = a}
  end
  if string.find(v, '^%s*{') then
    local ok, obj = pcall(cjson.decode, v)
    if ok and type(obj) == 'table' and obj['__session__'] == nil then return 'foreign', v, obj end
  end
  return 'corrupt', v
end

local function expires_at(e, a)
  if a > 0 and a < e then return a end
  return e
end

local function is_live(kind, m, now)
  return kind == 'foreign' or (kind == 'meta' and now < expires_at(m.e, m.a))
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

local function meta_prefix_s(c, t, e, a, w, u)
  return '{"__session__":{"c":' .. c .. ',"t":' .. t .. ',"e":' .. e .. ',"a":' .. a ..
         ',"w":' .. w .. ',"u":"' .. u .. '"}'
end

-- codec.rs's encode: metadata first, then the data members. `tail` is the compact data
-- object without its opening brace (`}` when empty), so no copy of it is made here.
-- compose_s takes the numbers already as digit strings.
local function compose_s(c, t, e, a, w, u, tail)
  if tail == '}' then return meta_prefix_s(c, t, e, a, w, u) .. '}' end
  return meta_prefix_s(c, t, e, a, w, u) .. ',' .. tail
end

local function compose(c, t, e, a, w, u, tail)
  return compose_s(fmt(c), fmt(t), fmt(e), fmt(a), fmt(w), u, tail)
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

local function user_key(prefix, u)
  return prefix .. '~user:' .. u
end

-- Redis keeps a key this long past its session's expiry. Liveness is decided by the
-- metadata and the store's clock, never by the key's presence; the TTL only reclaims memory,
-- and the grace keeps a key from vanishing early when the store's clock runs ahead of
-- Redis's (other hosts, or a session imported with moments left).
local TTL_GRACE_MS = 1000

-- Writes a value with the TTL of its expiry and moves its index entries there. `score` is
-- the expiry as digits, `ttl` the key's time to live in ms (expiry - now + TTL_GRACE_MS).
local function store_s(key, value, prefix, expkey, sid, old_u, u, score, ttl)
  local ttl_s = fmt(ttl)
  redis.call('SET', key, value, 'PX', ttl_s)
  redis.call('ZADD', expkey, score, sid)
  if old_u ~= '' and old_u ~= u then redis.call('ZREM', user_key(prefix, old_u), sid) end
  if u ~= '' then
    local ukey = user_key(prefix, u)
    redis.call('ZADD', ukey, score, sid)
    -- The user index lives as long as its longest-lived member (PTTL -1: no TTL yet).
    if redis.call('PTTL', ukey) < ttl then redis.call('PEXPIRE', ukey, ttl_s) end
  end
end

local function store(key, value, prefix, expkey, sid, old_u, u, exp, now)
  store_s(key, value, prefix, expkey, sid, old_u, u, fmt(exp), exp - now + TTL_GRACE_MS)
end

-- The expiry of digit strings e and a (a = '0': none), as digits.
local function expires_at_s(e, a)
  if a ~= '0' and tonumber(a) < tonumber(e) then return a end
  return e
end

local function unindex(prefix, expkey, sid, u)
  redis.call('ZREM', expkey, sid)
  if u ~= '' then redis.call('ZREM', user_key(prefix, u), sid) end
end

