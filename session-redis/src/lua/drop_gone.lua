-- cleanup's repair pass: drops index members whose session key no longer exists (another
-- writer, such as the existing service, deleted it with a plain DEL). KEYS: one index (the
-- expiry index or a user index). ARGV: prefix, then storage ids to check. The check and the
-- removal happen in one step, so a session written meanwhile keeps its entry.
-- Returns how many members were dropped.
local prefix, dropped = ARGV[1], 0
for i = 2, #ARGV do
  if redis.call('EXISTS', prefix .. ARGV[i]) == 0 then
    dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return dropped
