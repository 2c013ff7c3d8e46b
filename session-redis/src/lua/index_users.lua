-- index_users: the user index entries of one bulk-import page (store/import.rs), queued in
-- the page's MULTI after its SETs, so no session value ever passes through Lua (Redis's Lua
-- hashes every byte of every string it makes: a 900-byte value costs more there than
-- the SET itself). Sent with EVAL, not EVALSHA: a NOSCRIPT inside EXEC would leave the
-- page's sessions written and unindexed.
-- KEYS: user index keys. ARGV, per key in order: (unused), the number of sessions n, then n
-- pairs of (expiry score, storage id).
-- Entries are added with GT (created or moved later, never earlier; see store/import.rs).
-- User indexes have no TTL (keys.rs): PERSIST clears one an older layout gave it.
-- Returns the number of keys indexed.
local a = 1
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a + 1])
  local first, last = a + 2, a + 1 + 2 * n
  -- unpack() is bounded by the Lua stack: at most 500 members per ZADD.
  for from = first, last, 1000 do
    redis.call('ZADD', key, 'GT', unpack(ARGV, from, math.min(from + 999, last)))
  end
  redis.call('PERSIST', key)
  a = last + 1
end
return #KEYS
