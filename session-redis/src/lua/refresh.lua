-- refresh: slide the expiry without rewriting the value, as the existing service's EXPIRE
-- does: only the key's TTL and the expiry index move, so the version (a hash of the value)
-- stays. Reads just the head of the value for the metadata (a value of another writer,
-- without metadata, gets the default idle timeout).
-- KEYS: session key, expiry index. ARGV: now, sid, prefix, default idle timeout ms.
-- Returns {OK} | {GONE} | {CORRUPT}.
local now, sid, prefix, default_t = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])

local kind, m = read_head(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
if kind == 'none' or not is_live(kind, m, now) then return {GONE} end

local t, a, u = default_t, 0, ''
if kind == 'meta' then t, a, u = m.t, m.a, m.u end
local e = now + t
if a > 0 and a < e then e = a end
local ttl = e - now
if ttl < MIN_KEY_TTL_MS then ttl = MIN_KEY_TTL_MS end
redis.call('PEXPIRE', KEYS[1], fmt(ttl))
redis.call('ZADD', KEYS[2], fmt(e), sid)
if u ~= '' then
  -- The user index lives as long as its longest-lived member.
  local ukey = user_key(prefix, u)
  if redis.call('PTTL', ukey) < ttl then redis.call('PEXPIRE', ukey, fmt(ttl)) end
end
return {OK}
