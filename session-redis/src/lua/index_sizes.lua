#!lua flags=allow-cross-slot-keys
-- count's and cleanup's walk over per-slot expiry indexes (store/shards.rs): the indexes of
-- many slots, all served by the node this runs on. A cluster lets a script with the flag
-- above touch keys of several slots of its node, but not declare them (declared keys must
-- share a slot), so this is the one script whose keys come as arguments.
-- ARGV: now, then the expiry indexes.
-- Returns a flat array: position among the indexes (1-based), entries, entries due by now, ... for each
-- non-empty index, and entries -1 for an index this node does not serve (its slot moved or is
-- moving: the caller asks the slot's owner).
local now, out = ARGV[1], {}
for i = 2, #ARGV do
  local key = ARGV[i]
  local n = redis.pcall('ZCARD', key)
  if type(n) == 'table' then
    out[#out + 1] = i - 1
    out[#out + 1] = -1
    out[#out + 1] = 0
  elseif n > 0 then
    out[#out + 1] = i - 1
    out[#out + 1] = n
    out[#out + 1] = redis.call('ZCOUNT', key, '-inf', now)
  end
end
return out
