-- refresh: slide the expiry without rewriting the value, as the existing service's EXPIRE
-- does: only the key's TTL and the expiry index move, so the version (a hash of the value)
-- stays. Reads just the head of the value for the metadata (a value of another writer,
-- without metadata, gets the default idle timeout). The user index needs nothing: its
-- entries are kept while their session lives (see keys.rs).
-- KEYS: session key, expiry index. ARGV: now, sid, default idle timeout ms.
-- Returns {OK} | {GONE} | {CORRUPT}.
local now, sid, default_t = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local kind, m = read_head(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
if kind == 'none' or not is_live(kind, m, now) then return {GONE} end

local t, a = default_t, 0
if kind == 'meta' then t, a = m.t, m.a end
local e = now + t
if a > 0 and a < e then e = a end
local ttl = e - now
if ttl < MIN_KEY_TTL_MS then ttl = MIN_KEY_TTL_MS end
redis.call('PEXPIRE', KEYS[1], fmt(ttl))
redis.call('ZADD', KEYS[2], fmt(e), sid)
return {OK}
