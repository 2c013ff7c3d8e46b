-- cleanup's repair pass over an expiry index: drops members whose session key no longer
-- exists (another writer, such as the existing service, deleted it with a plain DEL).
-- KEYS: the expiry index, then the members' session keys (one slot). ARGV: the storage ids
-- (in KEYS order). The check and the removal happen in one step, so a session written
-- meanwhile keeps its entry. Returns how many members were dropped.
local dropped = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return dropped
