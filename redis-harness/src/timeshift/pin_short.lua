-- After a write (wrapper.rs): pins the keys it just set whose TTL came out short. One round
-- trip, as a key written with 1 ms to live has little time.
-- KEYS: the keys. ARGV: PIN_MS. PERSISTs each key whose TTL is under PIN_MS (PTTL 0
-- included: the key lives until its millisecond is over).
-- Returns the number of keys pinned.
local pinned = 0
for _, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl >= 0 and ttl < tonumber(ARGV[1]) then
    redis.call('PERSIST', key)
    pinned = pinned + 1
  end
end
return pinned
