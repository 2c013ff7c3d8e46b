-- import_batch: many sessions in one call, for bulk copies between stores (store/bulk.rs,
-- `sessionctl migrate`). KEYS: expiry index. ARGV: prefix, then five values per session:
-- storage id, complete value (metadata first, as codec.rs encodes it), expiry ms (the index
-- score), key TTL ms (expiry - now, computed by the caller from the same `now` as
-- store() uses), user tag ('' = no user). The caller leaves out expired sessions.
-- Each session is written only if its key does not exist (SET NX: a re-run skips what an
-- earlier run copied, and nothing live is ever overwritten), then indexed as store() indexes
-- it. Index writes are grouped: one ZADD for the expiry index, one ZADD and one TTL check per
-- user, which is what makes a batch cheap on the server.
-- Returns one code per session: OK (written) or TAKEN (the key exists; left alone).
local prefix = ARGV[1]
local out, members, users, order = {}, {}, {}, {}
for i = 2, #ARGV, 5 do
  local sid = ARGV[i]
  if redis.call('SET', prefix .. sid, ARGV[i + 1], 'PX', ARGV[i + 3], 'NX') then
    local score = ARGV[i + 2]
    members[#members + 1] = score
    members[#members + 1] = sid
    local u = ARGV[i + 4]
    if u ~= '' then
      local group = users[u]
      if not group then
        group = {ttl = 0, zadd = {}}
        users[u] = group
        order[#order + 1] = u
      end
      group.zadd[#group.zadd + 1] = score
      group.zadd[#group.zadd + 1] = sid
      local ttl = tonumber(ARGV[i + 3])
      if ttl > group.ttl then group.ttl = ttl end
    end
    out[#out + 1] = OK
  else
    out[#out + 1] = TAKEN
  end
end
-- unpack() is bounded by the Lua stack: add at most 500 members per ZADD.
local function zadd(key, args)
  for first = 1, #args, 1000 do
    redis.call('ZADD', key, unpack(args, first, math.min(first + 999, #args)))
  end
end
zadd(KEYS[1], members)
for _, u in ipairs(order) do
  local ukey = prefix .. '~user:' .. u
  zadd(ukey, users[u].zadd)
  -- User indexes have no TTL (keys.rs): clear one an older layout gave it.
  redis.call('PERSIST', ukey)
end
return out
