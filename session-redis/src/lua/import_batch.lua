-- import_batch: many sessions in one call, for bulk copies between stores (store/bulk.rs,
-- `sessionctl migrate`). KEYS: expiry index. ARGV: now, prefix, then four values per
-- session: storage id, complete value (metadata first, as codec.rs encodes it), expiry ms,
-- user hex ('' = no user).
-- Each session is written only if its key does not exist (SET NX: a re-run skips what an
-- earlier run copied, and nothing live is ever overwritten), with the TTL store() gives
-- (expiry - now + grace), and indexed as store() indexes it. User index TTLs are raised
-- once per user at the end, not once per session.
-- Returns one code per session: OK (written), TAKEN (the key exists), EXPIRED (not written).
local now, prefix = tonumber(ARGV[1]), ARGV[2]
local out, user_ttl = {}, {}
for i = 3, #ARGV, 4 do
  local sid, value, exp, u = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  if exp <= now then
    out[#out + 1] = EXPIRED
  else
    local ttl = exp - now + TTL_GRACE_MS
    if redis.call('SET', prefix .. sid, value, 'PX', fmt(ttl), 'NX') then
      local score = fmt(exp)
      redis.call('ZADD', KEYS[1], score, sid)
      if u ~= '' then
        local ukey = user_key(prefix, u)
        redis.call('ZADD', ukey, score, sid)
        if (user_ttl[ukey] or 0) < ttl then user_ttl[ukey] = ttl end
      end
      out[#out + 1] = OK
    else
      out[#out + 1] = TAKEN
    end
  end
end
for ukey, ttl in pairs(user_ttl) do
  if redis.call('PTTL', ukey) < ttl then redis.call('PEXPIRE', ukey, fmt(ttl)) end
end
return out
